"""Low-rank baseline (DC Fig. 6 "SVD"): every fc tensor factored within lowrank.keep of its storage,
then the factors fine-tuned; instead of pruning and quantization."""

from __future__ import annotations


from compression.accounting import lowrank_ratio
from experiments.models.state import clean_state_dict


def lowrank_stage(run) -> None:
    c, d = run.conf.lowrank, run.conf.dense
    method = run.plugins["lowrank.method"]
    stored = weights = 0
    keys = {s.key for s in run.specs}
    raw = sum(int(v.numel()) for k, v in clean_state_dict(run.model, run.specs).items() if k not in keys)
    for spec, module in run.modules():
        n = int(getattr(module, spec.param).numel())
        weights += n
        if spec.kind != "fc":
            stored += n  # stored as it is
            continue
        rank, numbers = method(module, spec.param, c.keep)
        stored += numbers
        run.layer_entry(spec.name).update(kind=spec.kind, weights=n, rank=rank, lowrank_numbers=int(numbers))
    run.record("lowrank_init", run.evaluate(val=True))
    run.fit("lowrank", c.epochs, d.lr * c.lr_scale, d.weight_decay, d.momentum, d.schedule)
    run.record("lowrank", run.evaluate(val=True))
    run.row.setdefault("ratio", {})["svd"] = round(lowrank_ratio(weights, raw, stored), 4)
