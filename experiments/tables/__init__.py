"""Regenerate the paper's tables (DC Table 1, Tables 2-5) from result rows, ours beside the paper's.

    python -m experiments.tables [--runs results/runs] [--out results/tables]

Reads ``<runs>/**/*.json`` through the query layer (``experiments.analysis.rows``; docs/results_row.md)
and writes, each file atomically, Markdown, CSV and LaTeX (rendered by pandas) for:

    table1.*            headline results, one line per network (DC Table 1)
    table2_lenet300.*   per-layer LeNet-300-100 (DC Table 2), with the paper's own format beside ours
    table3_lenet5.*     per-layer LeNet-5 (DC Table 3), likewise
    table4_alexnet.*    per-layer AlexNet (DC Table 4): the paper's Caffe AlexNet
    table5_vgg16.*      per-layer VGG-16 (DC Table 5)
    seeds.*             run-to-run spread over seeds of the recipe and of every variant run on two seeds or more
    criteria.*          magnitude, OBD and OBS through the full pipeline from the same dense models
    frontier.*          per LeNet and method, the highest ratio within +0.2 / +0.5 / +1.0 points on every seed
                        (also reads the sweep rows beside the runs folder; skipped, with a line, without rows)

Row choice (docs/tables.md): per network, the latest clean, complete row whose config is exactly its
experiment file's (``rows.paper_recipe``), else the latest such storage-only row, else "not run".

Units: sizes use decimal units, 1 KB = 1000 B and 1 MB = 10^6 B, because the paper's do.
"""

from __future__ import annotations

from pathlib import Path

from compression.atomic import atomic_write_bytes
from experiments import paper_values as pv
from experiments.analysis import rows as R
from experiments.tables.captioning import captioning_tables
from experiments.tables.choice import Choice, choose_rows, torchvision_alexnet
from experiments.tables.criteria import criteria_table
from experiments.tables.frontier import Note, frontier_rows, frontier_table
from experiments.tables.layers import layer_table
from experiments.tables.render import Table
from experiments.tables.seeds import seeds_table
from experiments.tables.table1 import table1


def build_tables(runs_dir: str | Path, note: Note = print) -> list[Table]:
    runs_dir = Path(runs_dir)
    df = R.load_runs(runs_dir)
    choices = choose_rows(df)
    tv = torchvision_alexnet(df)
    shown = str(runs_dir).rstrip("/")
    frontier = frontier_table(frontier_rows(df, runs_dir), note)
    return [table1(choices, shown, tv), *(layer_table(net, choices[net], runs_dir, tv) for net in pv.NETWORKS),
            seeds_table(df, choices), criteria_table(df), *captioning_tables(df, runs_dir),
            *([frontier] if frontier is not None else [])]


def write_tables(runs_dir: str | Path, out_dir: str | Path, note: Note = print) -> list[Path]:
    written = []
    for t in build_tables(runs_dir, note):
        for ext, text in (("md", t.markdown()), ("csv", t.csv()), ("tex", t.latex())):
            path = Path(out_dir) / f"{t.stem}.{ext}"
            atomic_write_bytes(path, text.encode("utf-8"))
            written.append(path)
    return written


__all__ = ["Choice", "Table", "build_tables", "choose_rows", "write_tables"]
