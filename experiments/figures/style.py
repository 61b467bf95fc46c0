"""Drawing helpers shared by the figures: the paper's statements, titles and captions, empty panels."""

from __future__ import annotations

import textwrap
from typing import Callable

import numpy as np

from experiments import paper_values as pv
from experiments.analysis.points import _one_dataset, drawn_rows, run_rows, sweep_rows
from experiments.analysis.readings import P_ONLY, PQ, Q_ONLY, SVD
from experiments.tables.cells import DATASET_NAMES

Note = Callable[[str], None]

# The papers' figures: id, network and dataset, and what they show (paper.md section 4, DC v5 numbering).
PAPER = {
    "pruning_criteria": ("LWC Fig. 5 with OBD and OBS", "LWC: AlexNet on ImageNet; OBD / OBS: small networks",
                         "Optimal Brain Damage (LeCun et al. 1990) and Optimal Brain Surgeon (Hassibi & Stork "
                         "1993) rank weights by the loss increase a second-order expansion predicts, so without "
                         "retraining they should remove weights at less cost than magnitude (OBS >= OBD >= "
                         "magnitude); LWC prunes by magnitude and retrains, arguing that retraining makes the "
                         "cheap criterion enough (much smaller differences after retraining)."),
    "fig7_bits": ("DC Fig. 7", "AlexNet on ImageNet",
                  "top-1 accuracy vs bits per weight, three panels (conv layers, fc layers, all layers); dashed = "
                  "quantization only, solid = pruning + quantization. Conv layers degrade below 4 bits, fc layers "
                  "hold down to 2 bits; accuracy starts to drop at the same number of bits with or without pruning."),
    "fig8_init": ("DC Fig. 8", "AlexNet on ImageNet",
                  "top-1 accuracy vs bits (2-8) for linear, random (Forgy) and density-based centroid "
                  "initialization: linear initialization is best except at 3 bits (it keeps the rare large weights "
                  "represented)."),
    "fig6_tradeoff": ("DC Fig. 6", "AlexNet on ImageNet",
                      "accuracy loss vs model size for pruning + quantization, pruning only, quantization only and "
                      "SVD: alone, pruning or quantization degrade below about 8% of the original size; together "
                      "they keep accuracy down to about 3%. SVD is poor."),
    "lwc_fig5_prune": ("LWC Fig. 5", "AlexNet on ImageNet",
                       "accuracy loss vs parameters pruned away: without retraining accuracy collapses at about 1/3 "
                       "of the connections left; with retraining (L1 or L2 regularization) at about 1/10; iterative "
                       "prune and retrain (L2) is flat to 9x (about 89% pruned). L1 looks better right after "
                       "pruning, L2 is better once retraining is used."),
    "lwc_fig7_weights": ("LWC Fig. 7", "AlexNet on ImageNet",
                         "weight distribution before and after pruning + retraining: fc weights sit in about "
                         "±0.015 before pruning and are bimodal, spread to about ±0.025, after prune + retrain "
                         "(the weights near zero are gone)."),
    "fig4_codebook": ("DC Fig. 4 (right)", "AlexNet on ImageNet",
                      "distribution of the weights (blue) with the codebook before (green crosses, k-means with "
                      "linear initialization) and after fine-tuning (red dots); linear initialization keeps the rare "
                      "large weights represented."),
    "fig5_huffman": ("DC Fig. 5", "AlexNet on ImageNet",
                     "distribution of the quantized-weight indices and of the sparse-index gaps: both are biased "
                     "(the weight-index histogram is bimodal, gaps rarely exceed 20), so Huffman coding them saves "
                     "20-30% of the storage."),
    "frontier": ("DC Table 1 and later work", "LeNet-300-100 and LeNet-5 on MNIST",
                 "Deep Compression stores LeNet-300-100 40× and LeNet-5 39× smaller than dense fp32 at no loss of "
                 "accuracy; later work reports soft weight-sharing 64× and 162× (Ullrich et al. 2017), Choi et "
                 "al. 51.25× on DC's pruned LeNet-5 (2017) and DeepCABAC 115× on LeNet-5 (2020), each counting "
                 "bytes its own way."),
}


BITS_GROUPS = {"conv": "conv layers", "fc": "fc layers", "all": "all layers"}
INIT_COLORS = {"linear": "tab:blue", "density": "tab:green", "random": "tab:red"}
METHOD_STYLE = {PQ: ("tab:red", "o"), P_ONLY: ("tab:blue", "s"), Q_ONLY: ("tab:green", "^"), SVD: ("tab:gray", "D")}


def _run_ids(rows: list[dict], k: int = 3) -> str:
    ids = sorted(str(r.get("run_id")) for r in rows)
    if len(ids) <= k:
        return ", ".join(ids)
    return f"{ids[0]} … {ids[-1]}"


def _commits(rows: list[dict]) -> str:
    cs = sorted({(r.get("git_commit") or "unknown")[:7] for r in rows})
    return ", ".join(cs[:3]) + (f" +{len(cs) - 3} more" if len(cs) > 3 else "")



def _network(row: dict) -> str:
    m = row.get("model") or row.get("experiment")
    return pv.NETWORKS.get(m, {}).get("name", str(m))


def _dataset_phrase(row: dict) -> str:
    ds = row.get("dataset")
    name = DATASET_NAMES.get(ds, str(ds))
    paper_ds = pv.NETWORKS.get(row.get("model"), {}).get("dataset")
    if paper_ds and name != paper_ds:
        return f"{name} (not the paper's {paper_ds})"
    return name


def _new_figure(ncols: int, nrows: int, w: float, h: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(w * ncols, 6.4), h * nrows), layout="constrained")  # room for the title
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _finish(fig, key: str, what: str, row: dict, rows: list[dict], ours: str,
            points: list[dict] | None = None) -> None:
    """Title naming the model and dataset; a caption stating the paper's figure, then ours. With ``points``
    the caption counts only the rows drawn and says how many earlier runs their reruns replaced."""
    fig_id, paper_net, statement = PAPER[key]
    if points is not None:
        drawn = drawn_rows(rows, points)
        if drawn and len(drawn) < len(rows):  # no run_ids on the points: nothing to tell apart, all rows counted
            ours += f" {len(rows) - len(drawn)} earlier rows of these settings were replaced by reruns and are not drawn."
            rows = drawn
    title = f"{_network(row)} on {_dataset_phrase(row)}: {what}\n(ours; cf. {fig_id}, {paper_net})"
    caption = [f"Paper, {fig_id}, {paper_net}: {statement}",
               f"Ours: {_network(row)} on {_dataset_phrase(row)}, so absolute accuracies are not comparable with "
               f"the paper's, only trends. {ours} Rows: {len(rows)} ({_run_ids(rows)}), commit {_commits(rows)}."]
    w, h = fig.get_size_inches()
    wrapped = []
    for para in caption:
        wrapped += textwrap.wrap(para, width=max(40, int(w * 17)))
    fig.set_size_inches(w, h + 0.135 * len(wrapped) + 0.5)
    fig.suptitle("\n".join(l for part in title.split("\n") for l in textwrap.wrap(part, int(w * 12.5))), fontsize=10)
    # the caption is the figure's x label, so the constrained layout makes room for it
    fig.supxlabel("\n".join(wrapped), x=0.01, ha="left", fontsize=7.5, linespacing=1.3)


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _seed_note(points: list[dict]) -> str:
    n = max((p["n"] for p in points), default=1)
    return f" Points with several seeds show the mean (up to {n} seeds)." if n > 1 else ""


def _hist(h) -> tuple[np.ndarray, np.ndarray] | None:
    if not isinstance(h, dict) or h.get("edges") is None or h.get("counts") is None:
        return None
    e, c = np.asarray(h["edges"], float), np.asarray(h["counts"], float)
    if e.ndim != 1 or c.ndim != 1 or e.size != c.size + 1 or c.size == 0:
        return None
    return e, c


def hist_range(edges: np.ndarray, counts: np.ndarray, q: float = 0.98) -> tuple[float, float]:
    """Central interval holding a fraction ``q`` of the histogram's mass (linear within bins)."""
    counts = np.asarray(counts, float)
    cum = np.concatenate([[0.0], np.cumsum(counts)])
    out = []
    for t in ((1 - q) / 2 * cum[-1], (1 + q) / 2 * cum[-1]):
        i = int(np.clip(np.searchsorted(cum, t, side="left"), 1, counts.size)) - 1  # cum[i] < t <= cum[i + 1]
        frac = (t - cum[i]) / counts[i] if counts[i] else 0.0
        out.append(float(edges[i] + frac * (edges[i + 1] - edges[i])))
    return out[0], out[1]


def _missing_run(note: Note, stem: str, rows: list[dict], experiment: str, keys: str) -> None:
    runs = run_rows(rows, experiment)
    have = (f"{len(runs)} experiment row{'s' if len(runs) > 1 else ''} ({_run_ids(runs)})" if runs
            else "no experiment rows")
    so = sum(bool(r.get("storage_only")) for r in runs)
    have += f", {so} of them storage-only (never used here)" if so else ""
    note(f"{experiment}_{stem}: skipped: no trained row in runs/{experiment}/ has {keys}; {have}")


# ----------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------
def _sweep_input(rows: list[dict], experiment: str, stem: str, sweep: str, points, missing: str, note: Note):
    """The rows of one sweep (one dataset) and their figure points, or None after saying what is missing."""
    srows = sweep_rows(rows, experiment, sweep)
    if not srows:
        note(f"{experiment}_{stem}: skipped: no rows of sweep '{sweep}' (sweeps/{experiment}/{sweep}/*.json)")
        return None
    srows = _one_dataset(srows, note, f"{experiment}_{stem}")
    pts = points(srows)
    if not pts:
        note(f"{experiment}_{stem}: skipped: {len(srows)} rows of sweep '{sweep}' but none has {missing}")
        return None
    return srows, pts


