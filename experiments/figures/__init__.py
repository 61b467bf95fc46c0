"""Regenerate the papers' figures (DC Figs. 4-8, LWC Figs. 5 and 7) from result rows.

    python -m experiments.figures [--results results] [--out results/figures] [--experiment lenet300 ...]

Reads experiment rows ``<results>/runs/<experiment>/<run_id>.json`` and sweep rows
``<results>/sweeps/<experiment>/<sweep>/<run_id>.json`` through the query layer
(``experiments.analysis.rows``; docs/results_row.md, docs/figures.md) and writes, per experiment and
figure, a PNG and a PDF (each atomically):

    <experiment>_fig7_bits         accuracy vs bits per weight, conv / fc / all layers  (sweep "bits", DC Fig. 7)
    <experiment>_fig8_init         accuracy vs bits per centroid initialization         (sweep "init", DC Fig. 8)
    <experiment>_fig6_tradeoff     accuracy loss vs model size, per method              (sweep "tradeoff", DC Fig. 6)
    <experiment>_lwc_fig5_prune    accuracy loss vs parameters pruned                   (sweep "prune", LWC Fig. 5)
    <experiment>_lwc_fig7_weights  weight histograms before / after pruning             (experiment row, LWC Fig. 7)
    <experiment>_fig4_codebook     codebook before / after fine-tuning over the weights (experiment row, DC Fig. 4)
    <experiment>_fig5_huffman      weight-index and index-gap symbol histograms, Huffman code lengths (DC Fig. 5)
    <experiment>_pruning_criteria  error vs density for magnitude, OBD and OBS, with / without retraining (sweep "criteria")
    <experiment>_frontier          compressed − dense error vs file bytes per method, published ratios marked (LeNets)

Shaping rows into points (``experiments.analysis.points``) and checking the paper's claims
(``experiments.analysis.claims``) live apart from the drawing here. Smoke rows are never used; a
figure whose inputs are missing is skipped with a printed line naming them; no placeholder data is
ever drawn. Every figure function takes the list of row dicts (``load_rows``) and an experiment
name and returns a matplotlib ``Figure`` or ``None``, so the tests and notebooks/analysis.ipynb call
them directly. Figures are built on ``matplotlib.figure.Figure`` (no pyplot state).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

from compression.atomic import atomic_write_bytes
from experiments.analysis import rows as R
from experiments.analysis.points import experiments_in
from experiments.figures.criteria import fig_criteria
from experiments.figures.frontier import fig_frontier
from experiments.figures.runs import fig_codebook, fig_huffman, fig_weights
from experiments.figures.style import PAPER, Note
from experiments.figures.sweeps import fig_bits, fig_init, fig_prune, fig_tradeoff


def load_rows(results_dir: str | Path) -> list[dict]:
    """Every parsable, non-smoke row under ``<results>/runs`` and ``<results>/sweeps``, as dicts.

    Each row gets ``_path`` (relative to results_dir), ``_kind`` ("run" for a row directly in
    ``runs/<experiment>/``, "sweep" for a sweep job -- its folder under ``sweeps/`` supplies the
    experiment and sweep when the row lacks them --, "other" for anything else) and ``_variant``
    (``rows.variant``: "" for the experiment file's own recipe).
    """
    df = R.usable(R.load(results_dir))
    out = []
    for _, line in df.iterrows():
        row = line["row"]
        row["_path"], row["_kind"] = line["path"], {"experiment": "run"}.get(line["kind"], line["kind"])
        row["_variant"] = line["variant"]
        out.append(row)
    return out


FIGURES: list[tuple[str, Callable]] = [
    ("fig7_bits", fig_bits), ("fig8_init", fig_init), ("fig6_tradeoff", fig_tradeoff),
    ("lwc_fig5_prune", fig_prune), ("lwc_fig7_weights", fig_weights), ("fig4_codebook", fig_codebook),
    ("fig5_huffman", fig_huffman), ("pruning_criteria", fig_criteria), ("frontier", fig_frontier),
]


def figure_bytes(fig, fmt: str, dpi: int = 150) -> bytes:
    buf = io.BytesIO()
    meta = {"CreationDate": None} if fmt == "pdf" else None  # reproducible PDFs
    fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
    return buf.getvalue()


def png_bytes(fig, dpi: int = 100) -> bytes:
    """PNG of a figure, for display in the notebook (IPython.display.Image)."""
    return figure_bytes(fig, "png", dpi)


def save_figure(fig, out_dir: str | Path, stem: str) -> list[Path]:
    paths = []
    for ext in ("png", "pdf"):
        p = Path(out_dir) / f"{stem}.{ext}"
        atomic_write_bytes(p, figure_bytes(fig, ext))
        paths.append(p)
    return paths


def write_figures(results_dir: str | Path, out_dir: str | Path, experiments: list[str] | None = None,
                  note: Note = print) -> list[Path]:
    rows = load_rows(results_dir)
    written = []
    for exp in experiments or experiments_in(rows):
        for stem, fn in FIGURES:
            fig = fn(rows, exp, note)
            if fig is not None:
                written += save_figure(fig, out_dir, f"{exp}_{stem}")
    return written


__all__ = ["FIGURES", "PAPER", "load_rows", "png_bytes", "save_figure", "write_figures"]
