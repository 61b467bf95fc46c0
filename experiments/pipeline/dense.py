"""Dense stage: train (or, with dense.epochs=0, only evaluate) the uncompressed network."""

from __future__ import annotations

import torch

from experiments.checkpoints import is_rank_zero
from experiments.pipeline.report import weight_histograms


def dense_stage(run) -> None:
    d = run.conf.dense
    run.fit("dense", d.epochs, d.lr, d.weight_decay, d.momentum, d.schedule)
    if is_rank_zero():
        torch.save(run.model.state_dict(), run.out_dir / "dense.pt")  # reusable: model.checkpoint=..., sensitivity
    run.row["artifacts"]["dense_checkpoint"] = str(run.out_dir / "dense.pt")
    run.record("dense", run.evaluate(val=True))
    run.row.setdefault("histograms", {})["dense"] = weight_histograms(run, nonzero_only=False)
    for spec, module in run.modules():
        e = run.layer_entry(spec.name)
        e.update(kind=spec.kind, weights=int(getattr(module, spec.param).numel()), density=1.0)
