"""Networks and what they declare compressible.

A model is a ``torch.nn.Module`` class named by ``_target_`` in ``conf/model/<name>.yaml``. Its
constructor takes the data's shape (``num_classes``, ``in_channels``, ``image_size``) plus any
keys of its YAML; ``layer_specs()`` returns its compressible tensors (``compression.specs``);
``dropout_inputs`` (optional) maps a dropout module's path to the layer whose input it drops
(LWC's dropout rescaling); ``load_pretrained()`` (optional) loads published weights for
``model.pretrained=true``. Adding a network is one such file and one YAML (docs/extending.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from compression.architecture import build, model_class
from experiments.errors import UserError

# Keys of the model config that the pipeline reads; every other key goes to the constructor.
RESERVED = ("name", "pretrained", "checkpoint")


def architecture_of(model_cfg: Mapping[str, Any], shape: Mapping[str, int]) -> dict[str, Any]:
    """``{"_target_": ..., **constructor kwargs}``: what a compressed file records to rebuild the net."""
    kwargs = {k: v for k, v in model_cfg.items() if k not in RESERVED}
    return {**kwargs, **shape}


def build_model(model_cfg: Mapping[str, Any], shape: Mapping[str, int]) -> nn.Module:
    """Instantiate ``model_cfg`` for data of ``shape``; then torchvision's or a local checkpoint's weights."""
    arch = architecture_of(model_cfg, shape)
    model = build(arch)
    if model_cfg.get("pretrained"):
        if not hasattr(model, "load_pretrained"):
            raise UserError(f"model.pretrained=true: {arch['_target_']} has no published weights "
                            "(no load_pretrained()); use model.checkpoint=PATH")
        model.load_pretrained()
    if model_cfg.get("checkpoint"):
        load_checkpoint(model, model_cfg["checkpoint"])
    return model


def load_checkpoint(model: nn.Module, path: str) -> None:
    """Load a state_dict (or a Lightning checkpoint holding one) into ``model``."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"model.checkpoint={path} does not exist; give the path of a saved state_dict")
    state = torch.load(p, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and "state_dict" in state:
        state = {k.removeprefix("model."): v for k, v in state["state_dict"].items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UserError(f"checkpoint {path} does not match the model: missing {missing[:5]}, "
                        f"unexpected {unexpected[:5]}")


__all__ = ["RESERVED", "architecture_of", "build_model", "load_checkpoint", "model_class"]
