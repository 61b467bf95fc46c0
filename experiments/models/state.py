"""A compressed model's plain state: what a freshly built model of the same class would load."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize, prune

from compression.specs import LayerSpec, module_of, tensor_of


def clean_state_dict(model: nn.Module, specs: list[LayerSpec]) -> dict[str, torch.Tensor]:
    """Effective tensors under their plain keys: no pruning masks, no parametrization internals."""
    hidden = {f"{s.key}_orig" for s in specs} | {f"{s.key}_mask" for s in specs}
    state = {k: v.detach() for k, v in model.state_dict().items()
             if ".parametrizations." not in k and k not in hidden}
    for s in specs:
        state[s.key] = tensor_of(model, s).detach().clone()
    return state


def clean_model_of(model: nn.Module, specs: list[LayerSpec]) -> nn.Module:
    """A plain copy of a pruned (not weight-shared) model: masks folded into the tensors."""
    if any(parametrize.is_parametrized(module_of(model, s), s.param) for s in specs):
        # deepcopy shares parametrize's generated classes, so removing them would break the original
        raise ValueError("clean_model_of: weight-shared model; use clean_state_dict")
    model = copy.deepcopy(model)
    for s in specs:
        module = module_of(model, s)
        if hasattr(module, s.param + "_orig"):
            prune.remove(module, s.param)
    return model


def param_counts(model: nn.Module, specs: list[LayerSpec]) -> dict:
    """Weights per layer (its compressible tensor) and every other stored number (biases, ...).

    ``layers[name]["biases"]`` is the ``bias`` of a layer whose tensor is its module's ``weight``;
    ``biases`` in total counts every other tensor of the plain state (biases, normalization
    parameters and statistics): the numbers a compressed file stores as they are.
    """
    layers = {}
    for s in specs:
        bias = getattr(module_of(model, s), "bias", None) if s.param == "weight" else None
        layers[s.name] = {"weights": int(tensor_of(model, s).numel()),
                          "biases": int(bias.numel()) if isinstance(bias, torch.Tensor) else 0}
    keys = {s.key for s in specs}
    weights = sum(v["weights"] for v in layers.values())
    other = sum(int(v.numel()) for k, v in clean_state_dict(model, specs).items()
                if k not in keys and v.is_floating_point())
    return {"layers": layers, "weights": weights, "biases": other, "total": weights + other}
