"""Reading a composed config against the schema's dataclasses (``experiments/config.py``): its groups,
its per-layer dicts, and the keys a config has that the schema lacks, however they got there (Hydra's
``+key=...`` bypasses the struct check). Functions take the schema's root class (``RunConf``)."""

from __future__ import annotations

import dataclasses
import difflib
import typing

from omegaconf import DictConfig, ListConfig, OmegaConf

from experiments.errors import UserError


def groups(root, prefix: str = ""):
    """(dotted key, schema class) of every group (a dataclass field) of schema ``root``, the root first."""
    yield prefix, root
    for f in dataclasses.fields(root):
        t = typing.get_type_hints(root)[f.name]
        if dataclasses.is_dataclass(t):
            yield from groups(t, f"{prefix}{f.name}.")


def per_layer_keys(root) -> list[str]:
    """The per-layer dicts (``per_layer=True``): ``prune.density``, ``quantize.bits``, ..."""
    return [f"{prefix}{f.name}" for prefix, cls in groups(root) for f in dataclasses.fields(cls)
            if f.metadata.get("per_layer")]


def schema_class(root, key: str):
    """The schema class of the group at dotted ``key`` ('' = the root), or None if it is not a group."""
    return dict((p.rstrip("."), c) for p, c in groups(root)).get(key)


def unknown_keys(root, cfg: DictConfig) -> list[tuple[str, list[str]]]:
    """Keys of ``cfg`` that the schema does not have, however they got there (``+key=...`` bypasses
    Hydra's struct check): (dotted key, the group's keys closest to it). Open nodes (plug-ins) and
    per-layer dicts are not schema groups: their keys are checked against their target or the model."""
    out = []
    for prefix, cls in groups(root):
        node = OmegaConf.select(cfg, prefix.rstrip("."), default=None) if prefix else cfg
        if not isinstance(node, DictConfig):
            continue
        names = [f.name for f in dataclasses.fields(cls)]
        for k in node.keys():
            if k not in names and not (not prefix and k == "hydra"):
                out.append((f"{prefix}{k}", [prefix + m for m in difflib.get_close_matches(str(k), names, n=3)]))
    return out


def unknown_key_error(root, cfg: DictConfig) -> UserError | None:
    """The first key of ``cfg`` that schema ``root`` lacks, as a UserError that names it and the fix."""
    bad = unknown_keys(root, cfg)
    if not bad:
        return None
    key, close = bad[0]
    value = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
    shown = OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value
    group = key.rpartition(".")[0]
    names = ", ".join(f.name for f in dataclasses.fields(schema_class(root, group)))
    hint = UNKNOWN_KEY_HINTS.get(key) or (f"did you mean {' or '.join(close)}?" if close else
                                          f"{group or 'the top level'} has no such key (its keys: {names})")
    return UserError(f"unknown config key {key} (value {shown!r}): {hint}")


# Keys users reach for that the schema deliberately lacks, and what to write instead.
UNKNOWN_KEY_HINTS = {
    "trainer.max_epochs": "each stage sets its own epochs (dense.epochs, prune.epochs_per_round, quantize.epochs, "
                          "lowrank.epochs); trainer.epochs_cap=N caps them all",
    "trainer.max_steps": "each stage sets its own epochs; trainer.limit_train_batches=N caps the batches per epoch",
}


def omegaconf_message(e: Exception) -> str:
    """OmegaConf's multi-line error as one line that names the key."""
    msg = str(getattr(e, "msg", None) or e).strip().splitlines()[0]
    key = getattr(e, "full_key", None)
    return f"{key}: {msg}" if key and key not in msg else msg
