"""What the stages write about the layers: weight histograms, densities, dead units, pruned storage."""

from __future__ import annotations

import torch

from compression.accounting import pruned_ratio
from compression.neurons import dead_units, links
from compression.prune import current_mask
from experiments.models.state import clean_state_dict

HIST_BINS = 81


def weight_histograms(run, nonzero_only: bool) -> dict:
    """Per-layer weight histogram, symmetric bins over +-max|w| (LWC Fig. 7); pruned: survivors only."""
    out = {}
    for spec, module in run.modules():
        w = getattr(module, spec.param).detach()
        if hasattr(module, spec.param + "_mask"):  # torch prune: the tensor is refreshed only in forward
            w = getattr(module, spec.param + "_orig").detach() * getattr(module, spec.param + "_mask")
        w = w.flatten().double()
        if nonzero_only:
            w = w[w != 0]
        top = float(w.abs().max()) if w.numel() else 1.0
        counts = torch.histc(w, bins=HIST_BINS, min=-top, max=top) if w.numel() else torch.zeros(HIST_BINS)
        edges = torch.linspace(-top, top, HIST_BINS + 1)
        out[spec.name] = {"edges": [round(float(e), 7) for e in edges], "counts": [int(c) for c in counts]}
    return out


def overall_density(run) -> float:
    total = sum(getattr(m, s.param).numel() for s, m in run.modules())
    alive = sum(int(current_mask(m, s.param).sum()) for s, m in run.modules())
    return round(alive / total, 6)


def layer_report(run) -> None:
    """Per layer: weights, non-zeros, density and dead units; the row's pruning ratios."""
    safe, _ = links(run.model, run.specs)
    dead = dead_units(run.model, run.specs, safe)
    for spec, module in run.modules():
        w = getattr(module, spec.param)
        nz = int((w != 0).sum())
        e = run.layer_entry(spec.name)
        e.update(kind=spec.kind, weights=int(w.numel()), nonzeros=nz, density=nz / w.numel(), **dead[spec.name])
    total = sum(e["weights"] for e in run.row["layers"])
    remaining = sum(e["nonzeros"] for e in run.row["layers"])
    run.row.setdefault("ratio", {})["p"] = round(total / max(remaining, 1), 4)
    if not run.storage_only:
        keys = {s.key for s in run.specs}
        raw = sum(int(v.numel()) for k, v in clean_state_dict(run.model, run.specs).items() if k not in keys)
        masks = [(current_mask(m, s.param).numpy(), int(run.value("encode.index_bits", s))) for s, m in run.modules()]
        run.row["ratio"]["p_sparse"] = round(pruned_ratio(masks, raw), 4)
