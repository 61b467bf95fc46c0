"""Pruned LSTMs: the task's metric (BLEU-4 for the captioner, top-1 error for the row-LSTM classifier) against
the LSTM's density, pruned in one step without and with retraining (sweep ``lstm_density``), with the full
pipeline's experiment rows (pruning and retraining as each row's config says, weight sharing,
Huffman-coded file) beside them.

    python -m experiments.figures.captioning [--results results] [--out results/figures]

writes ``<experiment>_lstm_density.png`` and ``.pdf`` for ``neuraltalk`` and ``lstm_fmnist`` (each atomically);
``fig_lstm_density(rows, experiment, note)`` has the signature of the figures in ``experiments.figures.FIGURES``.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from experiments.analysis import lstm as L
from experiments.analysis.readings import _cfg
from experiments.figures.style import Note, _commits, _run_ids

PAPER = ("Paper: Han et al. (NIPS 2015; the lecture's NeuralTalk slide), NeuralTalk on Flickr8k: with retraining, "
         "90% of the LSTM's weights pruned leaves the captions nearly unchanged, 95% degrades them; no curve is "
         "published.")
LABELS = {"bleu4": "test BLEU-4 (higher is better)", "top1_err": "test top-1 error, % (lower is better)"}


def _retraining(rows: list[dict]) -> str:
    """How the experiment rows pruned and retrained, read from their configs (the recipe changed over time:
    LWC's iterative schedule, then one step and learning-rate rewinding; docs/captioning.md)."""
    def recipe(r: dict) -> str:
        n, e = int(_cfg(r, "prune", "rounds") or 1), int(_cfg(r, "prune", "epochs_per_round") or 0)
        return f"one step + {e} epochs of retraining" if n == 1 else f"{n} prune + retrain rounds x {e} epochs"
    return " / ".join(dict.fromkeys(map(recipe, rows))) or "prune + retrain"


def fig_lstm_density(rows: list[dict], experiment: str, note: Note = print):
    stem = "lstm_density"
    pts = L.sweep_points(rows, experiment)
    runs = L.density_runs(rows, experiment)
    if not pts:
        if experiment in L.EXPERIMENTS:
            note(f"{experiment}_{stem}: skipped: no rows of sweep 'lstm_density' "
                 f"(sweeps/{experiment}/lstm_density/*.json)")
        return None
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    metric = pts[0]["metric"]
    fig = Figure(figsize=(7.0, 4.6), layout="constrained")
    ax = fig.subplots()
    for retrained, color, label in ((False, "tab:blue", "one step, without retraining"),
                                    (True, "tab:red", "one step + {e} epochs of retraining")):
        sel = sorted((p for p in pts if p["retrained"] == retrained), key=lambda p: p["density"])
        if not sel:
            continue
        x = [100 * p["density"] for p in sel]
        ax.plot(x, [p["value"] for p in sel], marker="o", ms=4, color=color,
                label=label.format(e=sel[0]["epochs"]))
        ax.fill_between(x, [p["min"] for p in sel], [p["max"] for p in sel], color=color, alpha=0.15, lw=0)
    dense = [p["dense"] for p in pts if p["dense"] is not None]
    if dense:
        ax.axhline(sum(dense) / len(dense), color="black", lw=1, label="dense (mean over seeds)")
    for d, rs in runs.items():
        ys = [r["metrics"].get(f"compressed/{metric}") for r in rs]
        ys = [y for y in ys if y is not None]
        if ys:
            ax.errorbar([100 * d], [sum(ys) / len(ys)], yerr=[[sum(ys) / len(ys) - min(ys)], [max(ys) - sum(ys) / len(ys)]],
                        fmt="D", color="tab:green", ms=6, capsize=3,
                        label=f"full pipeline: {_retraining([r for v in runs.values() for r in v])}, "
                              "weight sharing, Huffman file" if d == next(iter(runs)) else None)
    ax.set_xscale("log")
    ticks = sorted({100 * p["density"] for p in pts} | {100 * d for d in runs})
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("LSTM density, % of the input and recurrent weights kept (log scale)")
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.invert_xaxis()
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7.5)
    seeds = max(len(p["seeds"]) for p in pts)
    srows = [r for r in rows if r.get("experiment") == experiment and r.get("sweep") == "lstm_density"]
    name = {"neuraltalk": "NeuralTalk-style captioner on fashion_captions (real images, synthetic captions)",
            "lstm_fmnist": "row-LSTM classifier on sequential Fashion-MNIST"}.get(experiment, experiment)
    fig.suptitle("\n".join(textwrap.wrap(f"{name}: pruning the LSTM (ours)", 90)), fontsize=10)
    over = f"{seeds} seeds" if seeds != 1 else "1 seed"
    ours = (f"Ours: every LSTM matrix pruned by magnitude to the density shown, other layers dense, from each "
            f"seed's dense model; mean over up to {over}, band = min to max; metric after pruning (and "
            f"retraining), before quantization. Diamonds: the experiment's rows (compressed file), min to max over "
            f"seeds. Rows: {len(srows)} ({_run_ids(srows)}), commit {_commits(srows)}.")
    wrapped = [line for para in (PAPER, ours) for line in textwrap.wrap(para, 120)]
    fig.set_size_inches(7.0, 4.6 + 0.14 * len(wrapped))
    fig.supxlabel("\n".join(wrapped), x=0.01, ha="left", fontsize=7)
    return fig


def write(results_dir: str | Path, out_dir: str | Path, note: Note = print) -> list[Path]:
    from experiments.figures import load_rows, save_figure

    rows = load_rows(results_dir)
    written = []
    for exp in L.EXPERIMENTS:
        fig = fig_lstm_density(rows, exp, note)
        if fig is not None:
            written += save_figure(fig, out_dir, f"{exp}_lstm_density")
    return written


def main(argv: list[str] | None = None) -> int:
    import argparse

    import matplotlib

    matplotlib.use("Agg")
    ap = argparse.ArgumentParser(prog="python -m experiments.figures.captioning", description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default="results", help="folder holding runs/ and sweeps/ (default: results)")
    ap.add_argument("--out", default="results/figures", help="output folder (default: results/figures)")
    args = ap.parse_args(argv)
    if not Path(args.results).is_dir():
        print(f"figures: no such folder: {args.results}", file=sys.stderr)
        return 2
    for p in write(args.results, args.out):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
