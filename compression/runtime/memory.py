"""Resident bytes of a loaded network's weights, against its file, its dense form and the caches.

DC's point (section 1, Fig. 1) is that a compressed network's weights can sit in on-chip memory
(SRAM, or a CPU's caches) where the dense ones cannot. ``memory_report(model)`` counts, per
layer of the file, what the runtime keeps between calls -- the compressed layout (arrays and
fp32 codebook) or, for a layer it runs decoded, its fp32 tensor -- plus its bias, and over the
whole network every parameter and buffer the model holds. The cache sizes are read from the
machine (sysfs, ``compression.kernels.cache_sizes``): the per-core L2 and the last-level cache.
"""

from __future__ import annotations

import math

from torch import nn

from compression.kernels import cache_sizes


def caches() -> dict[str, int]:
    """``{"l2_bytes": ..., "llc_bytes": ...}`` of cpu0 (0 where sysfs does not say)."""
    sizes = cache_sizes()
    l2 = max((b for level, kind, b in sizes if level == 2), default=0)
    llc = max((b for _, kind, b in sizes if kind != "Instruction"), default=0)
    return {"l2_bytes": int(l2), "llc_bytes": int(llc)}


def _tensor_bytes(module: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))


def memory_report(model: nn.Module) -> dict:
    """Per layer and in total: resident bytes, bytes in the file, dense fp32 bytes, and whether the
    resident and the dense weights fit the L2 and the last-level cache. ``classifier`` sums the fc
    layers (the paper's fc6-fc8 for AlexNet and VGG-16)."""
    info = model.dcz_runtime
    rows = []
    for key, path in info.modules.items():
        module = model.get_submodule(path)
        shape_n = getattr(module, "weight_nbytes", None)
        bias = getattr(module, "bias", None)
        bias_bytes = 0 if bias is None else bias.numel() * 4
        if shape_n is not None:
            resident = shape_n + bias_bytes
            weights = math.prod(module.weight_shape) if hasattr(module, "weight_shape") else \
                module.out_features * module.in_features
        else:  # decoded dense into the model's own parameter
            t = module.get_parameter(key.rpartition(".")[2]) if key.rpartition(".")[0] == path else None
            weights = t.numel() if t is not None else 0
            resident = 4 * weights + bias_bytes
        rows.append({"key": key, "layer": info.names[key], "kind": info.kinds[key], "runs_as": info.layers[key],
                     "resident_bytes": int(resident), "file_bytes": info.file_layer_bytes[key],
                     "dense_bytes": int(4 * weights + bias_bytes)})
    resident = _tensor_bytes(model) + sum(getattr(m, "weight_nbytes", 0) for m in model.modules())
    c = caches()
    out = {"layers": rows, "caches": c,
           "network": _fits({"resident_bytes": int(resident), "file_bytes": info.file_bytes,
                             "dense_bytes": info.dense_bytes}, c)}
    fc = [r for r in rows if r["kind"] == "fc"]
    if fc:
        out["classifier"] = _fits({k: sum(r[k] for r in fc) for k in ("resident_bytes", "file_bytes", "dense_bytes")}, c)
        out["classifier"]["layers"] = "+".join(r["layer"] for r in fc)
    out["network"]["resident_over_file"] = out["network"]["resident_bytes"] / max(1, info.file_bytes)
    return out


def _fits(d: dict, c: dict) -> dict:
    for what in ("resident", "dense"):
        for cache in ("l2", "llc"):
            d[f"{what}_fits_{cache}"] = bool(c[f"{cache}_bytes"]) and d[f"{what}_bytes"] <= c[f"{cache}_bytes"]
    return d


def format_report(rep: dict) -> str:
    """The report as a few lines of text (the command line prints it)."""
    c = rep["caches"]
    lines = [f"caches (this machine): L2 {c['l2_bytes']:,} B per core, last level {c['llc_bytes']:,} B"]
    for name in ("network", "classifier"):
        d = rep.get(name)
        if d is None:
            continue
        fit = ", ".join(f"{w} {'fits' if d[f'{w}_fits_{k}'] else 'does not fit'} {k.upper()}"
                        for w in ("resident", "dense") for k in ("l2", "llc"))
        label = name if name == "network" else f"classifier ({d['layers']})"
        lines.append(f"{label}: resident {d['resident_bytes']:,} B | file {d['file_bytes']:,} B | "
                     f"dense {d['dense_bytes']:,} B; {fit}")
    lines.append(f"resident / file bytes: {rep['network']['resident_over_file']:.2f}")
    return "\n".join(lines)
