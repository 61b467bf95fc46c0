"""Run-to-run spread over seeds (ours): the recipe and each variant run on at least two seeds."""

from __future__ import annotations

import statistics

import pandas as pd

from experiments import paper_values as pv
from experiments.analysis import rows as R
from experiments.analysis.stats import stage_delta
from experiments.results import machine_label
from experiments.tables.cells import NA, get
from experiments.tables.choice import Choice
from experiments.tables.render import Table


def _diff(row: dict, stage: str):
    a, b = get(row, "metrics", f"{stage}/top1_err"), get(row, "metrics", "dense/top1_err")
    return None if a is None or b is None else float(a) - float(b)


QUANTITIES = [
    ("dense top-1 err %", lambda r: get(r, "metrics", "dense/top1_err"), lambda v: f"{v:.2f}"),
    ("pruned − dense, points", lambda r: _diff(r, "pruned"), lambda v: f"{v:+.2f}"),
    ("compressed − dense, points", lambda r: _diff(r, "compressed"), lambda v: f"{v:+.2f}"),
    ("P+Q+H rate (×)", lambda r: get(r, "ratio", "pqh"), lambda v: f"{v:.1f}"),
]


def _stat(xs, fmt):
    if not xs:
        return NA, [None] * 4
    m = statistics.fmean(xs)
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    text = f"{fmt(m)} ± {fmt(sd).lstrip('+')} ({fmt(min(xs))} to {fmt(max(xs))})" if len(xs) > 1 else fmt(m)
    return text, [m, sd, min(xs), max(xs)]


def _hardware(row: dict) -> str:
    """Which hardware a row came from (its ``machine``), for rows that record it: thread count, CPU and
    its vector instructions change the trajectory of one seed."""
    label = machine_label(row.get("machine"))
    return f" ({label})" if label else ""


def seeds_table(df: pd.DataFrame, choices: dict[str, Choice]) -> Table:
    lines, csv_lines, notes = [], [], []
    for net, info in pv.NETWORKS.items():
        groups = R.seed_groups(df, info["experiment"])
        chosen = choices[net].row
        anchor = [g for g in groups if chosen is not None and chosen.get("run_id") in set(g["run_id"])]
        # the recipe's group first, then every other variant run on at least two seeds, latest first
        # (a variant run once is an earlier config the later rows supersede)
        for g in anchor + [g for g in groups if len(g) >= 2 and not any(g is a for a in anchor)]:
            rs = R.records(g)
            cells, nums = [], []
            for _, fn, fmt in QUANTITIES:
                c, n = _stat([float(v) for v in (fn(r) for r in rs) if v is not None], fmt)
                cells.append(c)
                nums += n
            seeds = ", ".join(str(r.get("seed")) for r in rs)
            paired = "; ".join(f"seed {r.get('seed')}: {d.text()}" for r in rs if (d := stage_delta(r)) is not None)
            cells.append(paired or "n/a (rows predate per-example records)")
            label = g["variant"].iloc[0]
            name = info["name"] + (f": {label}" if label else "")
            lines.append([name, f"{len(rs)} (seeds {seeds})", *cells])
            csv_lines.append([net + (f" {label}" if label else ""), len(rs), seeds, *nums, paired])
            notes.append(f"{name}: runs " + ", ".join(f"`{r['run_id']}`" + _hardware(r) for r in rs) + ".")
    notes.append("Each line: the clean, complete rows of the network's experiment whose settings are the same except "
                 "for the seed (the latest row per seed); the first line of a network is the Table 1 row's recipe, "
                 "the others every variant run on at least two seeds, latest first, labelled by how their config "
                 "departs from the experiment file (`key=value`, derived from the rows: docs/results_row.md). "
                 "Mean ± sample standard deviation (min to max); the last column gives each seed's compressed − "
                 "dense delta with its paired 95% bootstrap CI over the test examples and McNemar's exact p "
                 "(experiments/analysis/stats.py). Distillation (`prune.distill`, `quantize.distill`) "
                 "is ours, not in the papers; `prune.drop_dead_connections=false` marks rows from before LWC section "
                 "3.4's dropping was added. Thread count and hardware also change the trajectory, so one seed is not "
                 "bit-reproducible across machines.")
    return Table(
        stem="seeds", title="Run-to-run spread over seeds (ours)",
        columns=["network", "runs", *[q[0] for q in QUANTITIES],
                 "compressed − dense per seed, paired 95% CI, McNemar p"], lines=lines, notes=notes,
        csv_columns=["network", "runs", "seeds", *[f"{a}_{b}" for a in ("dense_err", "pruned_minus_dense",
                                                                            "compressed_minus_dense", "ratio_pqh")
                                                   for b in ("mean", "std", "min", "max")],
                     "compressed_minus_dense_paired"],
        csv_lines=csv_lines)
