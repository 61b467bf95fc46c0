"""The plug-ins a run uses, built once from their config nodes (``_target_`` + arguments).

Building them is also the check of their arguments: a misspelt or impossible argument of a
criterion, quantizer, coder or low-rank method fails here, naming the config key, before any
data is loaded or any epoch trained.
"""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate

from experiments.errors import UserError

# config key -> (the group switch that enables it, what it is)
PLUGINS = {"prune.criterion": "prune", "prune.allocation": "prune", "quantize.quantizer": "quantize",
           "encode.coder": "encode", "lowrank.method": "lowrank"}


def build(key: str, node: dict) -> Any:
    """Instantiate one plug-in node; a clear UserError naming ``key`` if its target or arguments are wrong."""
    target = node.get("_target_") if isinstance(node, dict) else None
    if not isinstance(target, str) or not target:
        raise UserError(f"{key} needs a _target_ (a class or function); see conf/{key.replace('.', '/')}/")
    try:
        return instantiate(node)
    except Exception as e:  # hydra wraps import errors and the target's own TypeError/ValueError
        cause = e.__cause__ or e
        if isinstance(cause, TypeError) and "unexpected keyword argument" in str(cause):
            bad = str(cause).split("'")[1] if "'" in str(cause) else "?"
            raise UserError(f"invalid config key {key}.{bad}: {target} takes {_params(target)}") from None
        raise UserError(f"{key} ({target}): {cause}") from None


def _params(target: str) -> str:
    from experiments.canonical import _arguments

    args = _arguments(target)
    return ", ".join(args) if args else "no arguments"


def build_all(conf) -> dict[str, Any]:
    """Every plug-in of the enabled stages, keyed by config key."""
    out = {}
    for key, switch in PLUGINS.items():
        if getattr(conf, switch).enabled:
            group, name = key.split(".")
            node = getattr(getattr(conf, group), name)
            if node is not None:  # an optional plug-in (prune.allocation) left out
                out[key] = build(key, node)
    return out


__all__ = ["PLUGINS", "build", "build_all"]
