"""What a results row means for the figures: which curve, panel and x value it belongs to.

Small pure functions of one row (a dict, docs/results_row.md), each tested against hand values.
"""

from __future__ import annotations

PQ, P_ONLY, Q_ONLY, SVD = "pruning + quantization", "pruning only", "quantization only", "SVD"
FINAL_STAGES = ("compressed", "quantized", "lowrank", "pruned")
MAX_ALL_LAYERS = 4  # per-layer figures show every layer up to this many, else the largest conv + largest fc


def _get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or d.get(k) is None:
            return None
        d = d[k]
    return d


def _cfg(row: dict, *keys):
    return _get(row.get("config") or {}, *keys)



def _metric(row: dict, stage: str, k: str = "top1"):
    v = _get(row, "metrics", f"{stage}/{k}_err")
    return None if v is None else float(v)


def _acc(err):
    return None if err is None else 100.0 - err



def model_has_conv(row: dict) -> bool:
    """True if the row's model has conv layers (from ``layers[].kind``; LeNet-300-100 has none)."""
    layers = row.get("layers") or []
    if layers:
        return any(l.get("kind") == "conv" for l in layers)
    return row.get("model") != "lenet300"


def kind_bits(row: dict, kind: str):
    """Bits per weight of the layers of one kind (``quantize.bits[kind]``, else ``["*"]``; 0 = not quantized)."""
    bits = _cfg(row, "quantize", "bits")
    if isinstance(bits, (int, float)) and not isinstance(bits, bool):
        return int(bits)
    if not isinstance(bits, dict):
        return None
    v = bits.get(kind, bits.get("*"))
    return None if v is None else int(v)


def bits_group(row: dict) -> str | None:
    """DC Fig. 7 panel of a bits-sweep row: "conv" (fc not quantized), "fc" (conv not quantized),
    "all" (both); a model without conv layers has only "fc" (= all its layers); None if nothing is
    quantized."""
    c, f = kind_bits(row, "conv") or 0, kind_bits(row, "fc") or 0
    if not model_has_conv(row):
        return "fc" if f > 0 else None
    if c > 0 and f > 0:
        return "all"
    if c > 0:
        return "conv"
    if f > 0:
        return "fc"
    return None


def bits_x(row: dict, group: str):
    """x of a bits-sweep row in its panel: the quantized kind's bits; for "all", the common bits
    (None if conv and fc bits differ)."""
    c, f = kind_bits(row, "conv"), kind_bits(row, "fc")
    if group == "conv":
        return c
    if group == "fc":
        return f
    return c if c == f else None


def uniform_bits(row: dict):
    """The bits of every kind of layer the model has, if they agree (DC Fig. 8's x), else None."""
    kinds = ["conv", "fc"] if model_has_conv(row) else ["fc"]
    vals = {kind_bits(row, k) for k in kinds}
    if len(vals) != 1:
        return None
    v = vals.pop()
    return v if v else None


def centroid_init(row: dict):
    """The k-means centroid initialization of a row: ``quantize.quantizer.init`` (rows from before
    quantizers were plug-ins: ``quantize.init``)."""
    return _cfg(row, "quantize", "quantizer", "init") or _cfg(row, "quantize", "init")


def pq_method(row: dict) -> str:
    """DC Fig. 7 line style: pruning + quantization (solid) or quantization only (dashed)."""
    return PQ if _cfg(row, "prune", "enabled") else Q_ONLY


def tradeoff_method(row: dict) -> str | None:
    """DC Fig. 6 curve of a row: SVD, pruning + quantization, pruning only, quantization only."""
    if _cfg(row, "lowrank", "enabled"):
        return SVD
    p, q = bool(_cfg(row, "prune", "enabled")), bool(_cfg(row, "quantize", "enabled"))
    if p and q:
        return PQ
    if p:
        return P_ONLY
    if q:
        return Q_ONLY
    return None


def tradeoff_rate(row: dict, method: str):
    """Compression rate (dense / compressed) of a DC Fig. 6 row: ratio.svd, .p_sparse or .pqh."""
    key = {SVD: "svd", P_ONLY: "p_sparse", Q_ONLY: "pqh", PQ: "pqh"}.get(method)
    v = _get(row, "ratio", key) if key else None
    return None if v is None else float(v)


def final_top1_err(row: dict):
    """Top-1 error of the final model: first present of compressed, quantized, lowrank, pruned."""
    for stage in FINAL_STAGES:
        v = _metric(row, stage)
        if v is not None:
            return v
    return None


def _nonzeros(layer: dict):
    if layer.get("nonzeros") is not None:
        return layer["nonzeros"]
    if layer.get("density") is None or layer.get("weights") is None:
        return None
    return round(layer["density"] * layer["weights"])


def fraction_pruned(row: dict):
    """1 - sum(nonzeros) / sum(weights) over ``layers`` (non-zeros, else round(density × weights))."""
    layers = row.get("layers") or []
    w = sum(l.get("weights") or 0 for l in layers)
    nzs = [_nonzeros(l) for l in layers]
    if not w or any(n is None for n in nzs):
        return None
    return 1.0 - sum(nzs) / w


def sweep_setting(row: dict) -> str | None:
    """What a sweep job was set to, from its config: the pruning target (uniform density, else the
    per-layer densities), the quantization bits and the low-rank share kept, each when its stage runs;
    None when a running stage's setting is missing from the config. Figures key their points by it,
    not by the measured size, so a rerun of a job replaces the earlier run even when its measured
    size moved (e.g. dead connections dropped in the rerun)."""
    parts = []
    for stage, keys in (("prune", ("uniform_density", "density")), ("quantize", ("bits",)), ("lowrank", ("keep",))):
        if not _cfg(row, stage, "enabled"):
            continue
        value = next((v for v in (_cfg(row, stage, k) for k in keys) if v is not None), None)
        if value is None:
            return None
        parts.append(f"{stage}={value}")
    return " ".join(parts)


def prune_curve(row: dict) -> str | None:
    """LWC Fig. 5 curve: without retraining / with retraining / iterative, with the regularizer."""
    if not _cfg(row, "prune", "enabled"):
        return None
    reg = str(_cfg(row, "prune", "regularization") or "l2").upper()
    if not _cfg(row, "prune", "epochs_per_round"):
        return f"{reg} regularization, without retraining"
    if (_cfg(row, "prune", "rounds") or 1) > 1:
        return f"iterative prune and retrain ({reg})"
    return f"{reg} regularization with retraining"


def codebook_centroids(layer: dict, key: str, pruned: bool) -> list[float] | None:
    """Centroids of ``layer[key]`` (codebook_init or codebook); a pruned layer's entry 0 (the reserved
    0.0 of pruned weights) is dropped when codebook_init[0] is 0.0."""
    cb = layer.get(key)
    if cb is None:
        return None
    cb = [float(c) for c in cb]
    init = layer.get("codebook_init") or []
    if pruned and init and float(init[0]) == 0.0:
        cb = cb[1:]
    return cb


def layer_pruned(layer: dict) -> bool:
    nz, w = _nonzeros(layer), layer.get("weights")
    return nz is not None and w is not None and nz < w


def pick_layers(row: dict, names: list[str]) -> list[str]:
    """Layers shown by the per-layer figures: all of ``names`` (model order) up to MAX_ALL_LAYERS,
    else the largest conv and the largest fc layer (by weights)."""
    info = {l.get("name"): l for l in row.get("layers") or []}
    order = [l.get("name") for l in row.get("layers") or [] if l.get("name") in names]
    order += [n for n in names if n not in order]
    if len(order) <= MAX_ALL_LAYERS:
        return order
    keep = []
    for kind in ("conv", "fc"):
        cands = [n for n in order if (info.get(n) or {}).get("kind") == kind]
        if cands:
            keep.append(max(cands, key=lambda n: (info[n].get("weights") or 0)))
    return [n for n in order if n in keep] or order[:MAX_ALL_LAYERS]


