"""Which network a compressed file holds, and building it again (the file stores the weights only).

A file's ``meta["model"]`` names the network's class and its constructor arguments::

    {"_target_": "experiments.models.lenet.LeNet300", "num_classes": 10, "in_channels": 1, "image_size": 28}

Files of format 3 and earlier named the model by a short name with the shape beside it
(``{"model": "lenet300", "num_classes": 10, ...}``); ``LEGACY_TARGETS`` says which class each of
those four names meant. Only an ``nn.Module`` subclass is ever constructed from a file.
"""

from __future__ import annotations

import importlib
from typing import Any

from torch import nn

# The classes the model names of format-1..3 files meant (no file names a model this way any more).
LEGACY_TARGETS = {"lenet300": "experiments.models.lenet.LeNet300", "lenet5": "experiments.models.lenet.LeNet5",
                  "alexnet": "experiments.models.alexnet.AlexNet", "vgg16": "experiments.models.vgg.VGG16"}
SHAPE_KEYS = ("num_classes", "in_channels", "image_size")


class ArchitectureError(ValueError):
    """A file's model description names nothing we can build."""


def architecture(meta: dict) -> dict[str, Any]:
    """The ``{"_target_": ..., **kwargs}`` description of a file's network (any format)."""
    model = meta.get("model")
    if isinstance(model, dict) and isinstance(model.get("_target_"), str):
        return dict(model)
    if isinstance(model, str) and model in LEGACY_TARGETS:
        return {"_target_": LEGACY_TARGETS[model], **{k: meta[k] for k in SHAPE_KEYS if k in meta}}
    raise ArchitectureError(f"the file names no model class we know (meta['model'] = {model!r})")


def model_class(target: str) -> type[nn.Module]:
    module, _, name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise ArchitectureError(f"cannot import the model class {target!r} ({e}); run from the repository "
                                "that defines it, or put it on PYTHONPATH") from None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ArchitectureError(f"{target!r} is not a torch.nn.Module class")
    return cls


def build(arch: dict[str, Any]) -> nn.Module:
    """Construct the (untrained) network an architecture description names."""
    kwargs = {k: v for k, v in arch.items() if k != "_target_"}
    return model_class(arch["_target_"])(**kwargs)


def decode_model(path) -> nn.Module:
    """The network a compressed file describes, with its decoded weights loaded (strictly)."""
    from compression.container import CompressedFileError, read_compressed

    state, meta, _ = read_compressed(path)
    try:
        model = build(architecture(meta))
    except (ArchitectureError, TypeError) as e:
        raise CompressedFileError(f"{path}: {e}") from None
    model.load_state_dict(state, strict=True)
    return model
