"""Reading a row's config against the schema: what it means, whatever code version wrote it.

``canonical(config, layers)`` turns a row's resolved config into the settings that could change
its results, by the rules each field of ``experiments.config`` declares in its metadata:

1. a key the row lacks takes the value that reproduces what that row's code did: the field's
   ``absent`` (a value, or a function of the row's group), else the field's default;
2. keys that cannot change a result go (``result=False``; ``ignore_keys`` of an open node), and
   so do keys the schema no longer has (an ``absent`` rule has read them); a plug-in node (an
   open node with a ``_target_``) keeps the pipeline's own keys and its target's arguments, each
   missing argument taking the target's default (a key the target does not take did nothing);
3. a key whose ``meaningful`` predicate is false for its group goes (a distillation temperature
   while distillation is off); a group whose ``enabled`` is false keeps only that;
4. a per-layer dict (``per_layer``) becomes its value for each of the row's layers, so
   ``{'*': 8}`` and ``{'conv': 8, 'fc': 8}`` are the same setting for a network of conv and fc layers.

Two rows with equal canonical configs (seed aside) are runs of one recipe; ``differences``
names, key by key, how a row departs from another config -- the variant label of the tables.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import json
import typing
from typing import Any, Iterable

from experiments.config import RunConf

Layers = Iterable[tuple[str, str]]  # (layer name, kind)


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _absent(f: dataclasses.Field, group: dict) -> Any:
    rule = f.metadata.get("absent", dataclasses.MISSING)
    if rule is dataclasses.MISSING:
        return _default(f)
    return rule(group) if callable(rule) else rule


def _resolve(values: Any, layers: list[tuple[str, str]] | None) -> Any:
    if not isinstance(values, dict) or not layers:
        return values
    out = {}
    for name, kind in layers:
        for k in (name, kind, "*"):
            if k in values:
                out[name] = values[k]
                break
        else:
            return values  # not resolvable for these layers: compare as written
    return out


@functools.lru_cache(maxsize=None)
def _arguments(target: str) -> dict[str, Any] | None:
    """The keyword arguments ``target`` takes, with their defaults (``inspect.Parameter.empty`` if
    none); the ``__init__`` chain is followed through ``**kwargs``. None if it cannot be imported."""
    module, _, name = target.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None
    chain = [c.__init__ for c in obj.__mro__ if "__init__" in vars(c) and c is not object] \
        if isinstance(obj, type) else [obj]
    out: dict[str, Any] = {}
    for fn in chain:
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            break
        for p in params:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ("self", "seed"):
                out.setdefault(p.name, p.default)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return out


def _open_node(f: dataclasses.Field, node: Any) -> Any:
    """A plug-in node: own keys kept, the target's arguments filled with their defaults, the rest dropped."""
    if not isinstance(node, dict):
        return node
    node = {k: v for k, v in node.items() if k not in f.metadata.get("ignore_keys", ())}
    for k, rule in f.metadata.get("absent_keys", {}).items():
        if k not in node:
            v = rule(node) if callable(rule) else rule
            if v is not None:
                node[k] = v
    args = _arguments(node["_target_"]) if isinstance(node.get("_target_"), str) else None
    if args is None:
        return node
    own = set(f.metadata.get("own_keys", ())) | {"_target_", "_partial_"}
    out = {k: v for k, v in node.items() if k in own or k in args}
    for k, default in args.items():
        if k not in out and default is not inspect.Parameter.empty and k not in f.metadata.get("ignore_keys", ()):
            out[k] = default
    return out


def _group(cls, given: dict, layers, root: dict) -> dict:
    given = given if isinstance(given, dict) else {}
    hints = _hints(cls)
    fields = dataclasses.fields(cls)
    filled = {f.name: (given[f.name] if f.name in given else _absent(f, given)) for f in fields}
    out = {}
    for f in fields:
        if f.metadata.get("result", True) is False:
            continue
        if "meaningful" in f.metadata and not f.metadata["meaningful"](filled, root):
            continue
        v = filled[f.name]
        if dataclasses.is_dataclass(hints[f.name]):
            v = _group(hints[f.name], v, layers, root)
        elif f.metadata.get("per_layer"):
            v = _resolve(v, layers)
        else:
            v = _open_node(f, v)
        out[f.name] = v
    if "enabled" in out and not out["enabled"]:
        return {"enabled": False}
    return out


def canonical(config: dict, layers: Layers | None = None) -> dict:
    """The settings of ``config`` that can change a result (module docstring); ``seed`` included."""
    config = config or {}
    return _group(RunConf, config, list(layers) if layers is not None else None, config)


def _key(c: dict) -> str:
    return json.dumps(c, sort_keys=True, default=str)


def same_result_config(a: dict, b: dict) -> bool:
    """Would runs with these two configs produce the same results (the same command, resumed)?"""
    return _key(canonical(a)) == _key(canonical(b))


def recipe_key(config: dict, layers: Layers | None = None) -> str:
    """A key equal for runs of one recipe on different seeds."""
    c = canonical(config, layers)
    c.pop("seed", None)
    return _key(c)


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))
    return str(v)


def _plugin_name(node: dict) -> str:
    return str(node.get("name") or str(node.get("_target_", "?")).rsplit(".", 1)[-1])


def differences(ours: dict, base: dict, prefix: str = "") -> list[str]:
    """``key=value`` for every setting of canonical config ``ours`` that differs from ``base``.

    A plug-in node (data, model, criterion, ...) whose class or name differs is named once
    (``prune.criterion=OBS``), not key by key.
    """
    out = []
    for k in sorted(set(ours) | set(base)):
        a, b, path = ours.get(k), base.get(k), f"{prefix}{k}"
        if a == b or k == "seed" and not prefix:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            plugin = any(x in a or x in b for x in ("_target_", "name"))
            if plugin and (a.get("_target_") != b.get("_target_") or a.get("name") != b.get("name")):
                out.append(f"{path}={_plugin_name(a)}")
            else:
                out += differences(a, b, path + ".")
        else:
            out.append(f"{path}={_fmt(a)}")
    return out
