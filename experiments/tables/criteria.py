"""The criteria table: magnitude, OBD and OBS through the full pipeline at the paper's densities (ours)."""

from __future__ import annotations

import pandas as pd

from experiments import paper_values as pv
from experiments.analysis.criteria import pipeline_rows
from experiments.analysis.stats import across_seeds, correct_of, paired_delta
from experiments.tables.cells import NA, get
from experiments.tables.render import Table

NETS = ("lenet300", "lenet5")


def _range(v: dict, fmt) -> str:
    if not v["n"]:
        return NA
    return fmt(v["mean"]) + (f" ({fmt(v['min'])} to {fmt(v['max'])})" if v["n"] > 1 else "")


def criteria_table(df: pd.DataFrame) -> Table:
    rows = [r for r in df["row"]] if len(df) else []
    lines, records, notes = [], [], []
    for net in NETS:
        exp = pv.NETWORKS[net]["experiment"]
        groups = pipeline_rows(rows, exp)
        base = {r.get("seed"): r for r in groups.get("Magnitude", [])}
        for crit, rs in groups.items():
            pruned = across_seeds([get(r, "metrics", "pruned/top1_err") - get(r, "metrics", "dense/top1_err")
                                   for r in rs])
            comp = across_seeds([get(r, "metrics", "compressed/top1_err") - get(r, "metrics", "dense/top1_err")
                                 for r in rs])
            rate = across_seeds([get(r, "ratio", "pqh") for r in rs])
            secs = across_seeds([get(r, "time_s", "prune_criterion") for r in rs])
            paired = []
            for r in rs:
                b = base.get(r.get("seed"))
                if crit != "Magnitude" and b is not None and correct_of(r, "compressed") is not None \
                        and correct_of(b, "compressed") is not None:
                    paired.append(f"seed {r.get('seed')}: "
                                  + paired_delta(correct_of(b, "compressed"), correct_of(r, "compressed")).text())
            seeds = ", ".join(str(r.get("seed")) for r in rs)
            lines.append([pv.NETWORKS[net]["name"], crit, seeds, _range(pruned, lambda v: f"{v:+.2f}"),
                          _range(comp, lambda v: f"{v:+.2f}"), "; ".join(paired) or ("–" if crit == "Magnitude" else NA),
                          _range(rate, lambda v: f"{v:.1f}×"), _range(secs, lambda v: f"{v:.1f}")])
            records.append({"network": net, "criterion": crit, "runs": len(rs), "seeds": seeds,
                            "pruned_minus_dense_mean": pruned["mean"], "pruned_minus_dense_min": pruned["min"],
                            "pruned_minus_dense_max": pruned["max"], "compressed_minus_dense_mean": comp["mean"],
                            "compressed_minus_dense_min": comp["min"], "compressed_minus_dense_max": comp["max"],
                            "compressed_vs_magnitude_paired": "; ".join(paired), "ratio_pqh_mean": rate["mean"],
                            "criterion_s_mean": secs["mean"]})
            lrs = sorted({str(get(r, "config", "prune", "lr_scale")) for r in rs} - {"None"})
            notes.append(f"{pv.NETWORKS[net]['name']}, {crit}: runs " + ", ".join(f"`{r['run_id']}`" for r in rs)
                         + (f", retrained at `prune.lr_scale` {' and '.join(lrs)}" if lrs else "") + ".")
    notes.insert(0, "Each run prunes its seed's dense model (`model.checkpoint`, `dense.epochs=0`) with one criterion "
                    "through the experiment's recipe otherwise: the paper's per-layer densities, the same iterative "
                    "schedule and retraining, k-means quantization and the same file; LeNet-5's runs train a quarter "
                    "epoch per epoch (`trainer.limit_train_batches=0.25`), as its sweeps. Deltas in points against "
                    "the run's own dense model, mean (min to max) over seeds; the paired column compares each "
                    "criterion's compressed model with magnitude's on the same seed, example by example (95% "
                    "bootstrap CI, McNemar's exact p). Criterion time: seconds the criterion itself took over all "
                    "rounds (`time_s.prune_criterion`).")
    if not lines:
        notes.insert(0, "Not run: no full-pipeline rows started from a dense checkpoint (`make criteria`).")
    cols = ["network", "criterion", "seeds", "pruned − dense, points", "compressed − dense, points",
            "compressed − magnitude's, paired per seed", "P+Q+H rate", "criterion time (s)"]
    return Table("criteria", "Pruning criteria through the full pipeline (ours): magnitude, OBD, OBS", cols, lines,
                 notes, list(records[0]) if records else ["network", "criterion"],
                 [list(r.values()) for r in records])
