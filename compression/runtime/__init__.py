"""Running a network straight from its compressed file (``.dcz``), without expanding its weights.

    from compression.runtime import load
    model = load("model.dcz")      # the network the file names; its fc layers run the compressed kernels
    y = model(x)

See :mod:`compression.runtime.loader` (what is replaced, what falls back), :mod:`.layouts` (how
each weight matrix is held), :mod:`.modules` (the conv layers' measured rule) and
:mod:`.memory` (resident bytes against the file's and the caches).
"""

from compression.runtime.loader import Runtime, load

__all__ = ["load", "Runtime"]
