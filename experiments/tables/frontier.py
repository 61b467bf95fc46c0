"""The frontier table (ours): per network and method, the highest compression ratio whose compressed − dense
error stays within +0.2, +0.5 and +1.0 points on every seed -- chosen on the validation split, its test
delta reported -- beside the published MNIST ratio of the method.

Rows: the full-pipeline rows on Fashion-MNIST with per-example correctness (``experiments.analysis.frontier``),
experiment rows and sweep rows alike; where no point qualifies, the cell names the point closest to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from experiments import paper_values as pv
from experiments.analysis import rows as R
from experiments.analysis.frontier import (DATASET, EXPERIMENTS, MIN_SEEDS, THRESHOLDS, best_ratio,
                                           frontier_points, methods_in)
from experiments.tables.cells import rate
from experiments.tables.render import Table

Note = Callable[[str], None]


def frontier_rows(df: pd.DataFrame, runs_dir: str | Path) -> list[dict]:
    """The rows of ``df`` (a runs folder) and the sweep rows beside it (``<runs_dir>/../sweeps``), not smoke."""
    rows = R.records(R.usable(df))
    sweeps = Path(runs_dir).parent / "sweeps"
    if sweeps.is_dir():
        every = R.usable(R.load(Path(runs_dir).parent))
        rows += R.records(every[every["kind"] == "sweep"]) if len(every) else []
    return rows


def published(experiment: str, method: str) -> list[dict]:
    """The SUCCESSORS entries of ``experiment`` that our method reproduces (its quantizer's label)."""
    base = method.split(" + ")[0]
    return [s for s in pv.SUCCESSORS.get(experiment, []) if base in s["methods"]]


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _cell(entry: dict) -> str:
    """Chosen on validation: ``41.0× (3 seeds; worst: val +0.30, test +0.42)``; none: ``– (closest 39.7×: worst
    val +0.46, 1 seed)``, or ``– (no row with validation errors)``."""
    if entry["point"] is not None:
        p = entry["point"]
        return (f"{rate(p['ratio'])} ({_seeds(len(p['seeds']))}; worst: val {p['worst_val_delta']:+.2f}, "
                f"test {p['worst_delta']:+.2f})")
    c = entry["closest"]
    if c is None:
        return "– (no row with validation errors)"
    p = c["point"]
    return f"– (closest {rate(p['ratio'])}: worst val {p['worst_val_delta']:+.2f}, {_seeds(len(p['seeds']))})"


def frontier_table(rows: list[dict], note: Note = print) -> Table | None:
    """The frontier table, or None (after a ``note``) when no row of either LeNet qualifies for the frontier."""
    lines, csv_lines, notes = [], [], []
    for exp in EXPERIMENTS:
        name = pv.NETWORKS[exp]["name"]
        pts = frontier_points(rows, exp, note)
        if not pts:
            notes.append(f"{name}: not run — no full-pipeline row on {DATASET} with per-example correctness.")
            continue
        best = best_ratio(pts, THRESHOLDS, MIN_SEEDS)
        for m in methods_in(pts):
            mine = [p for p in pts if p["method"] == m]
            seeds = sorted({s for p in mine for s in p["seeds"]}, key=lambda s: str(s).zfill(20))
            pub = published(exp, m)
            lines.append([name, m, str(len(mine)), ", ".join(str(s) for s in seeds),
                          *(_cell(best[m][t]) for t in THRESHOLDS),
                          "; ".join(f"{s['label']} {s['ratio']:g}×" for s in pub) or "–"])
            rec = [exp, m, len(mine), len(seeds)]
            for t in THRESHOLDS:
                e = best[m][t]
                c = (e["closest"] or {}).get("point")
                rec += [e["ratio"], len(e["point"]["seeds"]) if e["point"] else None,
                        e["point"]["worst_val_delta"] if e["point"] else None,
                        e["point"]["worst_delta"] if e["point"] else None,
                        None if c is None else c["ratio"], None if c is None else c["worst_val_delta"],
                        None if c is None else len(c["seeds"])]
            csv_lines.append(rec + [pub[0]["ratio"] if pub else None])
            notes.append(f"{name}, {m}: runs " + "; ".join(", ".join(f"`{i}`" for i in p["run_ids"]) for p in mine)
                         + ".")
    if not lines:
        note("frontier: skipped: no full-pipeline row of lenet300 or lenet5 on fashion_mnist (not storage-only) "
             "has the dense and compressed errors, the file's size and the correctness bitsets of both stages")
        return None
    notes.insert(0, f"Ratio = our dense fp32 bytes / the compressed file's bytes on disk (`size.dense_bytes / "
                    f"size.file_bytes`), mean over the seeds of one recipe (config without the seed; the latest row "
                    f"per seed). A cell is the highest such ratio among the recipes whose compressed − dense top-1 "
                    f"error on the VALIDATION split is within the column's points on every seed, counting only "
                    f"recipes run on at least {MIN_SEEDS} seeds: chosen on validation, it then reports the worst "
                    f"seed's test delta (the model decoded from the file against the run's own dense model, paired "
                    f"over the {DATASET} test examples in the figure). Where none qualifies, \"–\" and the recipe "
                    f"closest to it on validation (least excess of its worst seed, then fewest seeds missing); rows "
                    f"from before validation errors were recorded cannot be chosen.")
    notes.insert(1, "Published: the method's ratio on MNIST (experiments/paper_values.py `SUCCESSORS`); other data and "
                    "other byte counts (some leave out indices or codebooks; ours counts the whole file), so a mark "
                    "of size only.")
    cols = ["network", "method", "recipes", "seeds", "ratio within +0.2 (every seed)",
            "ratio within +0.5 (every seed)", "ratio within +1.0 (every seed)", "published (MNIST)"]
    csv_cols = ["network", "method", "recipes", "seeds"]
    for t in THRESHOLDS:
        csv_cols += [f"best_ratio_{t:.1f}", f"best_seeds_{t:.1f}", f"best_worst_val_delta_{t:.1f}",
                     f"best_worst_test_delta_{t:.1f}", f"closest_ratio_{t:.1f}", f"closest_worst_val_delta_{t:.1f}",
                     f"closest_seeds_{t:.1f}"]
    return Table("frontier", "The rate–error frontier (ours): the highest compression ratio within +0.2, +0.5 and "
                             "+1.0 points of the dense model on every seed", cols, lines, notes,
                 csv_cols + ["published_mnist_ratio"], csv_lines)
