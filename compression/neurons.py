"""Dead neurons after pruning, and removing them (LWC section 3.4, "pruning neurons").

A unit (fc neuron or conv output channel) of a layer is *dead-in* when every incoming
connection is pruned, and *dead-out* when every connection from it to the next layer is
pruned. A dead-out unit never influences the output and can go. A dead-in unit outputs the
constant act(bias); it can go too when that constant is folded into the next layer's bias,
which is exact when the next layer is fully connected or an unpadded convolution.

Both facts hold only where the model's layer specs prove them (``compression.specs``): the
next layer is the *sole consumer* of the layer's units, and what lies between is a known
element-wise activation (``relu`` or ``identity``; max/avg pooling and flattening keep a
constant a constant). ``links(model, specs)`` returns those safe (layer -> next) links and,
for every other layer, why it is left alone -- a residual sum, a BatchNorm or an LRN between
two layers, a grouped convolution, a recurrent matrix. Everything below works on links only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from compression.specs import LayerSpec


@dataclass(frozen=True)
class Link:
    """Layer ``name`` (module ``module``) feeds only ``next_name`` (module ``next_module``) through ``activation``."""

    name: str
    module: str
    next_name: str
    next_module: str
    activation: str


def _plain(module: nn.Module) -> str | None:
    """Why neuron pruning cannot treat ``module`` as a plain fc/conv layer (None: it can)."""
    if isinstance(module, nn.Linear):
        return None
    if isinstance(module, nn.Conv2d):
        return None if module.groups == 1 else "a grouped convolution"
    return f"a {type(module).__name__}, not a Linear or Conv2d layer"


def links(model: nn.Module, specs: Sequence[LayerSpec]) -> tuple[list[Link], dict[str, str]]:
    """The links the specs prove safe, in spec order, and the reason each other layer is skipped."""
    by_name = {s.name: s for s in specs}
    out, skipped = [], {}
    for s in specs:
        if s.next is None:
            skipped[s.name] = "no next layer declared (an output layer, or its consumer is not stated)"
            continue
        n = by_name[s.next]
        reason = None
        if not s.sole_consumer:
            reason = f"its output has consumers other than {n.name} (sole_consumer=False)"
        elif s.via is None:
            reason = f"what lies between it and {n.name} is not an activation neuron pruning knows (via=None)"
        elif s.param != "weight" or n.param != "weight":
            reason = "its tensor or the next layer's is not a module's weight"
        else:
            layer, nxt = model.get_submodule(s.module), model.get_submodule(n.module)
            reason = _plain(layer) or (_plain(nxt) and f"{n.name} is {_plain(nxt)}")
            if reason is None and _unit_groups_or_none(layer, nxt) is None:
                reason = f"its {layer.weight.shape[0]} units do not map onto {n.name}'s inputs"
        if reason is None:
            out.append(Link(s.name, s.module, n.name, n.module, s.via))
        else:
            skipped[s.name] = reason
    return out, skipped


def _unit_groups_or_none(layer: nn.Module, nxt: nn.Module) -> int | None:
    out_units = layer.weight.shape[0]
    n_in = nxt.weight.shape[1]
    if isinstance(nxt, nn.Conv2d):
        return 1 if n_in == out_units else None
    return n_in // out_units if n_in % out_units == 0 else None


def _unit_groups(layer: nn.Module, nxt: nn.Module) -> int:
    """How many inputs of ``nxt`` each output unit of ``layer`` feeds (flatten after conv)."""
    g = _unit_groups_or_none(layer, nxt)
    if g is None:
        raise ValueError(f"cannot map {layer.weight.shape[0]} units onto {nxt.weight.shape[1]} inputs of the next layer")
    return g


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


def dead_units(model: nn.Module, specs: Sequence[LayerSpec], safe: Sequence[Link]) -> dict[str, dict]:
    """Per layer: {'units', 'dead_in'} and, for a layer with a safe link, 'dead_out'.

    Units are output rows of the tensor (fc neurons, conv channels, gate rows of a recurrent
    matrix); 'dead_out' exists only where the next layer is the sole consumer.
    """
    link = {l.name: l for l in safe}
    out = {}
    for s in specs:
        w = getattr(model.get_submodule(s.module), s.param).detach() != 0
        incoming = w.flatten(1).any(dim=1) if w.dim() > 1 else w
        d = {"units": int(incoming.numel()), "dead_in": int((~incoming).sum())}
        if s.name in link:
            l = link[s.name]
            d["dead_out"] = int((~_outgoing(model.get_submodule(l.module), model.get_submodule(l.next_module))).sum())
        out[s.name] = d
    return out


def _act(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "relu":
        return torch.relu(x)
    if name == "identity":
        return x
    raise ValueError(f"unknown activation {name!r}")


def remove_dead_units(model: nn.Module, safe: Sequence[Link]) -> tuple[nn.Module, dict[str, int]]:
    """A copy of ``model`` with dead units physically removed; returns (model, units removed per layer).

    Links are processed in forward order; outputs are unchanged (up to float rounding).
    """
    model = copy.deepcopy(model)
    removed = {}
    for l in safe:
        layer, nxt = model.get_submodule(l.module), model.get_submodule(l.next_module)
        w = layer.weight.detach()
        incoming = (w != 0).flatten(1).any(dim=1)
        outgoing = _outgoing(layer, nxt)
        drop = ~outgoing | (~incoming & _foldable(nxt))
        removed[l.name] = int(drop.sum())
        if not drop.any():
            continue
        keep = ~drop
        nw = nxt.weight.detach()
        nb = nxt.bias.detach().clone() if nxt.bias is not None else torch.zeros(nw.shape[0])
        # Fold the constant output act(bias_j) of each dropped dead-in unit into nxt's bias.
        nb += _folded_bias(layer, nxt, l.activation, drop & ~incoming & outgoing)
        nw = nw[:, _input_cols(layer, nxt, keep)].clone()
        model.set_submodule(l.module, _shrink_out(layer, keep))
        model.set_submodule(l.next_module, _replace_in(nxt, nw, nb))
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


def drop_dead_connections(model: nn.Module, safe: Sequence[Link]) -> dict[str, int]:
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

    Only along ``safe`` links (``links(model, specs)``); repeated to a fixed point (dropping a
    unit's inputs can kill the unit before it). The masks go through
    ``torch.nn.utils.prune.custom_from_mask``, so they compose with earlier pruning and later
    rounds never revive a dropped connection.
    """
    from torch.nn.utils import prune

    dropped = {n: 0 for l in safe for n in (l.name, l.next_name)}
    changed = True
    while changed:
        changed = False
        for l in safe:
            layer, nxt = model.get_submodule(l.module), model.get_submodule(l.next_module)
            w = layer.weight.detach()
            incoming = (w != 0).flatten(1).any(dim=1)
            outgoing = _outgoing(layer, nxt)
            into_dead = (w != 0) & ~outgoing.view(-1, *([1] * (w.dim() - 1)))
            if into_dead.any():
                dropped[l.name] += int(into_dead.sum())
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
                nxt.bias += _folded_bias(layer, nxt, l.activation, fold)
            dropped[l.next_name] += int(out_of_dead.sum())
            prune.custom_from_mask(nxt, "weight", ~out_of_dead)
            changed = True
    return dropped
