"""``load(path)``: the network a compressed file names, runnable without expanding its weights.

The file names its network class (``compression.architecture``); the runtime builds it, so its
non-linearities, pooling, normalization and dropout are the model's own, and replaces each module
that holds a compressed tensor:

* an ``nn.Linear`` weight -> :class:`CompressedLinear` (numba kernels on the compressed layout);
* an ``nn.Conv2d`` weight -> :class:`CompressedConv2d` (sparse over the unfolded input, or dense
  decoded per call: the measured rule of :mod:`compression.runtime.modules`);
* anything else (a recurrent or embedding tensor, ``Conv1d``, ...) has no kernel here: it is
  decoded to dense fp32 into the model's own parameter, and :class:`Runtime` lists it under
  ``fallbacks``, with the reason.

On a device other than the CPU (``device="cuda"``), or with ``backend="torch"``, every
``nn.Linear`` runs as torch's CSR tensor on that device (cuSPARSE on CUDA) and the other layers
as decoded dense: no compressed-format GPU kernel exists here.

The model is first built on torch's ``meta`` device, so the dense weights of the replaced layers
are never allocated; a model with non-persistent buffers (which a file cannot hold) is built
on the CPU instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from compression.architecture import ArchitectureError, architecture, build
from compression.container import CompressedFileError, read_layers
from compression.runtime.layouts import DEFAULT_BUDGET, LAYOUTS, parts_of, plan
from compression.runtime.modules import CompressedConv2d, CompressedLinear, CsrLinear


@dataclass
class Runtime:
    """What ``load`` did (``model.dcz_runtime``)."""

    path: str
    file_bytes: int
    dense_bytes: int
    backend: str
    layers: dict[str, str] = field(default_factory=dict)  # file key -> how it runs
    fallbacks: dict[str, str] = field(default_factory=dict)  # file key -> why it runs decoded dense
    names: dict[str, str] = field(default_factory=dict)  # file key -> the paper's layer name
    modules: dict[str, str] = field(default_factory=dict)  # file key -> the owning module's path
    kinds: dict[str, str] = field(default_factory=dict)
    file_layer_bytes: dict[str, int] = field(default_factory=dict)  # the layer's sections in the file


def _stored(layer) -> tuple[np.ndarray, np.ndarray]:
    """(labels, codebook) where label 0 means "no weight": a dense-quantized layer's labels
    (where index 0 is a real centroid) shift up by one behind an added 0.0."""
    labels, cb = np.asarray(layer.labels), np.asarray(layer.codebook, np.float32)
    if layer.sparse:
        return labels, cb
    dt = np.uint8 if cb.size + 1 <= 256 else np.uint16 if cb.size + 1 <= 65536 else np.uint32
    return labels.astype(dt) + dt(1), np.concatenate([[np.float32(0.0)], cb])


def _owner(model: nn.Module, key: str, specs: dict) -> tuple[str, str]:
    if key in specs:
        return specs[key].module, specs[key].param
    module, _, param = key.rpartition(".")
    return module, param


def _kernel_for(module: nn.Module, param: str, backend: str) -> str | None:
    """``"linear"``, ``"conv"`` or ``"csr"`` when the runtime has a module for this tensor; None else."""
    if param != "weight":
        return None
    if type(module) is nn.Linear:
        return "csr" if backend == "torch" else "linear"
    if type(module) is nn.Conv2d and backend == "numba":
        return "conv"
    return None


def _why_not(module: nn.Module, param: str, backend: str) -> str:
    what = f"{type(module).__name__}.{param}"
    if backend == "torch":
        return f"{what}: decoded dense (backend torch runs only nn.Linear weights as CSR)"
    return f"{what}: decoded dense (no compressed kernel for this layer type)"


def _has_nonpersistent_buffers(model: nn.Module) -> bool:
    return any(getattr(m, "_non_persistent_buffers_set", None) for m in model.modules())


def load(path, *, conv: str = "auto", threads: int | None = None, budget: float = DEFAULT_BUDGET,
         backend: str = "auto", device="cpu") -> nn.Module:
    """The network of a ``.dcz`` file, in eval mode, with its compressed layers replaced.

    ``conv``: ``auto`` (measured per layer and input shape), ``dense`` or ``sparse``.
    ``threads``: row chunks the kernels are built for (default: numba's thread count).
    ``budget``: resident weight bytes allowed, as a multiple of the file's bytes, when choosing
    each layer's layout (``compression.runtime.layouts.plan``; ``inf``: fastest everywhere).
    ``backend``: ``numba`` (the compressed kernels, CPU), ``torch`` (CSR on ``device``), or
    ``auto`` (numba on the CPU, torch elsewhere). Raises ``CompressedFileError`` for a bad file.
    """
    import numba

    device = torch.device(device)
    if backend == "auto":
        backend = "numba" if device.type == "cpu" else "torch"
    if backend not in ("numba", "torch") or (backend == "numba" and device.type != "cpu"):
        raise ValueError(f"backend {backend!r} on device {device} is not available (numba runs on the CPU)")
    if conv not in ("auto", "dense", "sparse"):
        raise ValueError(f"conv must be auto, dense or sparse, got {conv!r}")
    threads = int(threads or numba.get_num_threads())
    layers, raw, meta, report = read_layers(path)
    try:
        arch = architecture(meta)
        with torch.device("meta"):
            model = build(arch)
        if _has_nonpersistent_buffers(model):
            model = build(arch)
    except (ArchitectureError, TypeError) as e:
        raise CompressedFileError(f"{path}: {e}") from None
    on_meta = any(p.is_meta for p in model.parameters())
    get = getattr(model, "layer_specs", None)
    specs = {s.key: s for s in (get() if callable(get) else [])}
    info = Runtime(path=str(path), file_bytes=int(report["file_bytes"]), dense_bytes=int(report["dense_bytes"]),
                   backend=backend)
    rows = {r["key"]: r for r in report["layers"]}
    raw_bytes = {r["key"]: math.prod(r["shape"]) * np.dtype(r["dtype"]).itemsize for r in report["raw"]}
    owners, kernel_layers = {}, []
    state = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in raw.items()}
    for layer in layers:
        module_path, param = _owner(model, layer.key, specs)
        try:
            module = model.get_submodule(module_path)
        except AttributeError:
            raise CompressedFileError(f"{path}: layer {layer.key!r} names no module of {arch['_target_']}") from None
        info.names[layer.key], info.kinds[layer.key] = layer.name, layer.kind
        info.modules[layer.key] = module_path
        info.file_layer_bytes[layer.key] = math.ceil(rows[layer.key]["pqh_bits"] / 8) + raw_bytes.get(
            f"{module_path}.bias", 0)  # the layer's sections and its bias, as stored
        kind = _kernel_for(module, param, backend) if module_path else None
        owners[layer.key] = (module_path, param, module, kind)
        if kind is None:
            info.fallbacks[layer.key] = _why_not(module, param, backend)
            state[layer.key] = torch.from_numpy(np.asarray(layer.codebook, np.float32)[layer.labels])
        elif kind in ("linear", "conv"):
            labels, cb = _stored(layer)
            groups = module.groups if kind == "conv" else 1
            kernel_layers.append({"key": layer.key, "kind": layer.kind, "parts": parts_of(labels, groups),
                                  "codebook": cb, "codebook_size": cb.size, "module": module})
    extra = sum(4 * int(np.asarray(a).size) for a in raw.values()) + sum(4 * int(np.asarray(
        state[k]).size) for k in info.fallbacks)
    choice = plan(kernel_layers, info.file_bytes, budget, threads, extra)
    new = {}
    for L in kernel_layers:
        module, key = L["module"], L["key"]
        parts = [LAYOUTS[choice[key]](p, L["codebook"], threads) for p in L["parts"]]
        bias = _bias(raw, owners[key][0], module)
        if isinstance(module, nn.Conv2d):
            new[key] = CompressedConv2d(parts, bias, module, name=info.names[key], mode=conv)
            info.layers[key] = f"conv {choice[key]} ({conv})"
        else:
            new[key] = CompressedLinear(parts[0], bias, name=info.names[key])
            info.layers[key] = f"linear {choice[key]}"
    for layer in layers:
        module_path, param, module, kind = owners[layer.key]
        if kind == "csr":
            labels, cb = _stored(layer)
            new[layer.key] = CsrLinear(labels, cb, _bias(raw, module_path, module), name=layer.name, device=device)
            info.layers[layer.key] = "linear csr (torch)"
        elif kind is None:
            info.layers[layer.key] = "dense (decoded)"
    del layers, kernel_layers
    for key, m in new.items():
        parent, _, attr = owners[key][0].rpartition(".")
        setattr(model.get_submodule(parent), attr, m)
    if on_meta:
        _materialize(model, device)
    elif device.type != "cpu":  # built on the CPU (non-persistent buffers): the torch backend's device
        model.to(device)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CompressedFileError(f"{path}: the file's tensors do not match {arch['_target_']} "
                                  f"(missing {sorted(missing)}, unexpected {sorted(unexpected)})")
    model.eval()
    model.dcz_runtime = info
    return model


def _materialize(model: nn.Module, device) -> None:
    """Allocate (uninitialized) every parameter and buffer still on the meta device; the state dict
    fills them next. Unlike ``Module.to_empty`` this leaves the runtime's modules as they are."""
    for m in model.modules():
        for name, p in list(m._parameters.items()):
            if p is not None and p.is_meta:
                m._parameters[name] = nn.Parameter(torch.empty_like(p, device=device), requires_grad=p.requires_grad)
        for name, b in list(m._buffers.items()):
            if b is not None and b.is_meta:
                m._buffers[name] = torch.empty_like(b, device=device)


def _bias(raw: dict, module_path: str, module: nn.Module) -> torch.Tensor | None:
    if getattr(module, "bias", None) is None:
        return None
    b = raw.get(f"{module_path}.bias")
    return None if b is None else torch.from_numpy(np.asarray(b, np.float32))
