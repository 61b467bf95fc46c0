"""Layer specs: what a model declares compressible, and the graph facts neuron pruning needs.

A model lists its compressible tensors as ``LayerSpec`` objects (``model.layer_specs()``).
Everything downstream -- pruning, quantization, the compressed file, accounting, config
validation, the tables -- iterates specs; nothing assumes a parameter called ``weight``, a
plain chain of layers or a fixed list of models::

    LayerSpec("ip1", module="ip1", kind="fc", next="ip2", via="relu", sole_consumer=True)
    LayerSpec("lstm_hh", module="lstm", param="weight_hh_l0", kind="recurrent")

The graph facts (``next``, ``via``, ``sole_consumer``) are what LWC section 3.4's neuron
pruning relies on: a unit of this layer whose every outgoing connection into ``next`` is
pruned cannot reach the output *only if* ``next`` is its sole consumer, and a unit with no
incoming connection outputs the constant act(bias) that can be folded into ``next``'s bias
*only if* what sits between is a known element-wise activation (``via``), possibly with
pooling or flattening (they keep a constant a constant). Where a spec does not state these
facts, neuron pruning leaves the layer alone (``compression.neurons.links``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import torch
from torch import nn

KINDS = ("conv", "fc", "recurrent", "embedding")
# Element-wise maps between a layer and its consumer that neuron pruning understands. Max/avg
# pooling and flattening may sit beside them: they keep a per-unit constant a constant.
VIAS = ("identity", "relu")


@dataclass(frozen=True)
class LayerSpec:
    """One compressible tensor of a model.

    name:          the paper's layer name (``ip1``, ``conv2``, ``fc6``): per-layer config keys, the
                   row's ``layers`` entries and the tables use it.
    module:        the owning module's path in the model (``net.classifier.1``; ``""`` = the model).
    param:         the parameter's name on that module (``weight``, ``weight_hh_l0``, ...).
    kind:          ``conv``, ``fc``, ``recurrent`` or ``embedding``: per-kind defaults (bits, gap widths).
    next:          the spec whose input is this layer's output units (None: not stated).
    via:           what maps this layer's output to ``next``'s input: ``relu`` or ``identity``
                   (pooling and flattening allowed beside it); None = anything else (BatchNorm,
                   LRN, a residual sum, ...), which neuron pruning does not touch.
    sole_consumer: ``next`` is the only consumer of this layer's output units.
    blocks:        the tensor stacks this many equal row blocks with roles of their own (an LSTM matrix:
                   its four gates, input, forget, cell, output); ``prune.per_block`` holds the density in
                   each block instead of over the whole tensor.
    """

    name: str
    module: str
    param: str = "weight"
    kind: str = "fc"
    next: str | None = None
    via: str | None = None
    sole_consumer: bool = False
    blocks: int = 1

    @property
    def key(self) -> str:
        """The tensor's state_dict key."""
        return f"{self.module}.{self.param}" if self.module else self.param


class SpecError(ValueError):
    """A model's layer specs do not describe the model."""


def specs_of(model: nn.Module) -> list[LayerSpec]:
    """The model's declared specs (``model.layer_specs()``), checked against the model."""
    get = getattr(model, "layer_specs", None)
    if get is None:
        raise SpecError(f"{type(model).__name__} declares no compressible tensors: give it a "
                        "layer_specs() method returning [LayerSpec(...), ...] (docs/extending.md)")
    specs = list(get() if callable(get) else get)
    check_specs(model, specs)
    return specs


def check_specs(model: nn.Module, specs: Iterable[LayerSpec]) -> None:
    specs = list(specs)
    names = [s.name for s in specs]
    where = type(model).__name__
    if len(set(names)) != len(names):
        raise SpecError(f"{where}: duplicate layer names in its specs: {names}")
    if len({s.key for s in specs}) != len(specs):
        raise SpecError(f"{where}: two specs name the same tensor")
    for s in specs:
        if s.kind not in KINDS:
            raise SpecError(f"{where}: spec {s.name!r} has kind {s.kind!r}; kinds are {KINDS}")
        try:
            module = model.get_submodule(s.module)
        except AttributeError:
            raise SpecError(f"{where}: spec {s.name!r} names module {s.module!r}, which the model lacks") from None
        if not isinstance(getattr(module, s.param, None), torch.Tensor):
            raise SpecError(f"{where}: spec {s.name!r}: module {s.module!r} has no parameter {s.param!r}")
        rows = getattr(module, s.param).shape[0] if getattr(module, s.param).dim() else 0
        if not isinstance(s.blocks, int) or s.blocks < 1 or rows % s.blocks:
            raise SpecError(f"{where}: spec {s.name!r} has blocks={s.blocks!r}, which does not split its "
                            f"{rows} rows into equal blocks")
        if s.next is not None and s.next not in names:
            raise SpecError(f"{where}: spec {s.name!r} names next={s.next!r}, which is not a spec")
        if s.via is not None and s.via not in VIAS:
            raise SpecError(f"{where}: spec {s.name!r} has via={s.via!r}; neuron pruning knows {VIAS} "
                            "(use None for anything else)")


def module_of(model: nn.Module, spec: LayerSpec) -> nn.Module:
    return model.get_submodule(spec.module)


def tensor_of(model: nn.Module, spec: LayerSpec):
    """The tensor's effective value (masks and codebooks applied)."""
    return getattr(module_of(model, spec), spec.param)


def per_layer(values: Mapping[str, Any], spec: LayerSpec, key: str) -> Any:
    """A layer's value from a per-layer dict: its name, then its kind, then ``'*'``."""
    for k in (spec.name, spec.kind, "*"):
        if k in values:
            return values[k]
    raise KeyError(f"{key} has no value for layer {spec.name} (kind {spec.kind}); add {key}.{spec.kind}=... "
                   f"or {key}.{spec.name}=... or {key}.'*'=...")


def unknown_keys(values: Mapping[str, Any], specs: Iterable[LayerSpec]) -> list[str]:
    """Keys of a per-layer dict that name no layer, no kind and are not ``'*'`` (typos)."""
    allowed = {s.name for s in specs} | set(KINDS) | {"*"}
    return sorted(set(values) - allowed)
