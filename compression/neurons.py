"""Dead neurons after pruning, and physically removing them (LWC section 3.4, "pruning neurons").

A unit (fc neuron or conv output channel) of layer i is *dead-in* when every incoming
connection is pruned, and *dead-out* when every connection from it to layer i+1 is pruned.
A dead-out unit never influences the output and can go. A dead-in unit outputs the
constant act(bias); it can go too when that constant is folded into layer i+1's bias,
which is exact when layer i+1 is fully connected or an unpadded convolution.

Layers are given as a chain in forward order with the activation between consecutive
layers ('relu' or 'identity'; max/avg pooling and flatten keep a constant a constant).
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn


def _unit_groups(layer: nn.Module, nxt: nn.Module) -> int:
    """How many inputs of ``nxt`` each output unit of ``layer`` feeds (flatten after conv)."""
    out_units = layer.weight.shape[0]
    n_in = nxt.weight.shape[1]
    if n_in % out_units:
        raise ValueError(f"cannot map {out_units} units onto {n_in} inputs of the next layer")
    return n_in // out_units if isinstance(nxt, nn.Linear) else 1


def _outgoing(layer: nn.Module, nxt: nn.Module) -> torch.Tensor:
    """Bool per output unit of ``layer``: has at least one connection into ``nxt``."""
    w = nxt.weight.detach() != 0
    if isinstance(nxt, nn.Conv2d):
        return w.any(dim=0).flatten(1).any(dim=1)
    g = _unit_groups(layer, nxt)
    return w.any(dim=0).view(-1, g).any(dim=1)


def _foldable(nxt: nn.Module) -> bool:
    """A constant input unit of ``nxt`` can be folded into its bias (fc, or an unpadded conv)."""
    return isinstance(nxt, nn.Linear) or (isinstance(nxt, nn.Conv2d) and _unpadded(nxt))


def _input_cols(layer: nn.Module, nxt: nn.Module, units: torch.Tensor) -> torch.Tensor:
    """Bool over ``nxt``'s input dimension: the inputs fed by ``units`` of ``layer``."""
    return units.repeat_interleave(_unit_groups(layer, nxt)) if isinstance(nxt, nn.Linear) else units


def _folded_bias(layer: nn.Module, nxt: nn.Module, activation: str, units: torch.Tensor) -> torch.Tensor:
    """What ``units`` of ``layer``, each outputting the constant act(bias), add to ``nxt``'s outputs."""
    w, nw = layer.weight.detach(), nxt.weight.detach()
    const = _act(activation, layer.bias.detach() if layer.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype))
    if isinstance(nxt, nn.Linear):
        per_unit = nw.view(nw.shape[0], -1, _unit_groups(layer, nxt)).sum(dim=2)  # [out, units]
    else:
        per_unit = nw.sum(dim=(2, 3))
    return per_unit[:, units] @ const[units]


def dead_units(chain: Sequence[nn.Module]) -> list[dict]:
    """Per layer: {'units', 'dead_in', 'dead_out'} counts (the last layer's outputs are never dead-out)."""
    out = []
    for i, layer in enumerate(chain):
        w = layer.weight.detach() != 0
        incoming = w.flatten(1).any(dim=1)
        outgoing = _outgoing(layer, chain[i + 1]) if i + 1 < len(chain) else torch.ones_like(incoming)
        out.append({"units": int(incoming.numel()), "dead_in": int((~incoming).sum()),
                    "dead_out": int((~outgoing).sum())})
    return out


def _act(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "relu":
        return torch.relu(x)
    if name == "identity":
        return x
    raise ValueError(f"unknown activation {name!r}")


def remove_dead_units(model: nn.Module, paths: Sequence[str], activations: Sequence[str]) -> tuple[nn.Module, list[int]]:
    """A copy of ``model`` with dead units physically removed; returns (model, units removed per layer).

    ``paths`` are the chain's module paths in forward order; ``activations[i]`` is what
    sits between layer i and i+1. Outputs are unchanged (up to float rounding).
    """
    model = copy.deepcopy(model)
    chain = [model.get_submodule(p) for p in paths]
    removed = [0] * len(chain)
    for i in range(len(chain) - 1):
        layer, nxt = chain[i], chain[i + 1]
        w = layer.weight.detach()
        incoming = (w != 0).flatten(1).any(dim=1)
        outgoing = _outgoing(layer, nxt)
        drop = ~outgoing | (~incoming & _foldable(nxt))
        if not drop.any():
            continue
        keep = ~drop
        nw = nxt.weight.detach()
        nb = nxt.bias.detach().clone() if nxt.bias is not None else torch.zeros(nw.shape[0])
        # Fold the constant output act(bias_j) of each dropped dead-in unit into nxt's bias.
        nb += _folded_bias(layer, nxt, activations[i], drop & ~incoming & outgoing)
        nw = nw[:, _input_cols(layer, nxt, keep)].clone()
        chain[i] = _shrink_out(layer, keep)
        chain[i + 1] = _replace_in(nxt, nw, nb)
        model.set_submodule(paths[i], chain[i])
        model.set_submodule(paths[i + 1], chain[i + 1])
        removed[i] = int(drop.sum())
    return model, removed


def _unpadded(conv: nn.Conv2d) -> bool:
    return all(p == 0 for p in conv.padding) if isinstance(conv.padding, tuple) else conv.padding == "valid"


def _shrink_out(layer: nn.Module, keep: torch.Tensor) -> nn.Module:
    w = layer.weight.detach()[keep].clone()
    b = layer.bias.detach()[keep].clone() if layer.bias is not None else None
    if isinstance(layer, nn.Linear):
        new = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    else:
        new = nn.Conv2d(w.shape[1], w.shape[0], layer.kernel_size, layer.stride, layer.padding,
                        layer.dilation, bias=b is not None)
    with torch.no_grad():
        new.weight.copy_(w)
        if b is not None:
            new.bias.copy_(b)
    return new


def _replace_in(layer: nn.Module, w: torch.Tensor, b: torch.Tensor) -> nn.Module:
    if isinstance(layer, nn.Linear):
        new = nn.Linear(w.shape[1], w.shape[0])
    else:
        new = nn.Conv2d(w.shape[1], w.shape[0], layer.kernel_size, layer.stride, layer.padding, layer.dilation)
    with torch.no_grad():
        new.weight.copy_(w)
        new.bias.copy_(b)
    return new


def drop_dead_connections(chain: Sequence[nn.Module], activations: Sequence[str]) -> list[int]:
    """Prune every connection to or from a dead unit, in place; returns connections dropped per layer.

    LWC section 3.4: "neurons with zero input connections or zero output connections may be
    safely pruned. This pruning is furthered by removing all connections to or from a pruned
    neuron." The papers leave it to retraining and regularization to drive those weights to
    zero; with an exact keep count (``prune.method=density``) they would instead keep their
    place in the layer's budget, and in the compressed file.

    - into a dead-out unit: its incoming weights cannot reach the output (exact);
    - out of a dead-in unit whose constant output act(bias) can be folded into the next
      layer's bias (next layer fully connected, or an unpadded convolution): the weights go
      and the bias absorbs them (exact up to float rounding).

    Repeated to a fixed point (dropping a unit's inputs can kill the unit before it). The
    masks go through ``torch.nn.utils.prune.custom_from_mask``, so they compose with earlier
    pruning and later rounds never revive a dropped connection.
    """
    from torch.nn.utils import prune

    dropped = [0] * len(chain)
    changed = True
    while changed:
        changed = False
        for i in range(len(chain) - 1):
            layer, nxt = chain[i], chain[i + 1]
            w = layer.weight.detach()
            incoming = (w != 0).flatten(1).any(dim=1)
            outgoing = _outgoing(layer, nxt)
            into_dead = (w != 0) & ~outgoing.view(-1, *([1] * (w.dim() - 1)))
            if into_dead.any():
                dropped[i] += int(into_dead.sum())
                prune.custom_from_mask(layer, "weight", ~into_dead)
                changed = True
            fold = ~incoming & outgoing
            if not (_foldable(nxt) and fold.any()):
                continue
            if nxt.bias is None:
                raise ValueError("folding a dead unit's constant output needs a bias in the next layer")
            nw = nxt.weight.detach()
            cols = _input_cols(layer, nxt, fold)
            out_of_dead = torch.zeros_like(nw, dtype=torch.bool)
            out_of_dead[:, cols] = nw[:, cols] != 0
            with torch.no_grad():
                nxt.bias += _folded_bias(layer, nxt, activations[i], fold)
            dropped[i + 1] += int(out_of_dead.sum())
            prune.custom_from_mask(nxt, "weight", ~out_of_dead)
            changed = True
    return dropped
