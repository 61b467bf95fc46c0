"""Quantize stage: weight sharing per layer (DC section 3), then centroid fine-tuning (DC Eq. 3)."""

from __future__ import annotations

import torch
from torch.nn.utils import parametrize

from compression.prune import make_permanent
from compression.quantize import apply_weight_sharing, codebook_and_labels
from experiments.errors import UserError


def storage_quantize_stage(run) -> None:
    """Per-layer weight sharing (``quantize.quantizer``, no fine-tuning): the whole stage in storage-only runs."""
    quantizer = run.plugins["quantize.quantizer"]
    if getattr(quantizer, "needs_data", False):  # e.g. a Hessian-weighted quantizer: once, before any layer
        from experiments.pipeline.context import _has_val_split
        from experiments.pipeline.prune import _batches

        # one that also measures itself while it trains (soft weight-sharing) gets the validation split only
        kw = {"validate": run.validation_headline} if (getattr(quantizer, "uses_validation", False)
                                                       and _has_val_split(run.dm)) else {}
        with torch.random.fork_rng(devices=[]):
            quantizer.prepare(run.model, run.specs, _batches(run), **kw)
    for i, (spec, module) in enumerate(run.modules()):
        bits = int(run.value("quantize.bits", spec))
        weights = int(getattr(module, spec.param).numel())
        if bits == 0:  # this layer stays float (and keeps its pruning mask, if any)
            run.layer_entry(spec.name).update(kind=spec.kind, weights=weights, weight_bits_pq=32)
            continue
        mask = make_permanent(module, spec.param) if run.conf.prune.enabled else None
        apply_weight_sharing(module, bits, mask=mask, seed=run.conf.seed + i, name=spec.param, quantizer=quantizer)
        run.layer_entry(spec.name).update(kind=spec.kind, weights=weights, weight_bits_pq=bits)
    if callable(getattr(quantizer, "report", None)):  # what a quantizer learned beyond the codebooks
        run.row["quantizer"] = quantizer.report()


def quantize_stage(run) -> None:
    c = run.conf.quantize
    storage_quantize_stage(run)  # the same per-layer weight sharing; then centroid fine-tuning
    run.record("quantized_init", run.evaluate(val=True))  # before centroid fine-tuning
    _record_codebooks(run, "codebook_init")
    run.fit("quantize", c.epochs, c.lr, c.weight_decay, c.momentum, c.schedule, distill=run.distill("quantize", c.epochs))
    bad = [s.name for s, m in run.modules() if parametrize.is_parametrized(m, s.param)
           and not bool(torch.isfinite(m.parametrizations[s.param].original).all())]
    if bad:  # DC Eq. 3 sums the gradients of every weight sharing a centroid: large steps can diverge
        raise UserError(f"centroid fine-tuning diverged: non-finite centroids in {bad}; lower quantize.lr "
                        f"(now {c.lr}) or set quantize.epochs=0")
    run.record("quantized", run.evaluate(val=True))
    _record_codebooks(run, "codebook")


def _record_codebooks(run, key: str) -> None:
    """Each weight-shared layer's centroids in the row (DC Fig. 4: codebook over the weight histogram)."""
    for spec, module in run.modules():
        if parametrize.is_parametrized(module, spec.param):
            codebook, _, _ = codebook_and_labels(module, spec.param)
            run.layer_entry(spec.name)[key] = [round(float(v), 7) for v in codebook]
