"""The figures of one experiment row: LWC Fig. 7 (weights), DC Fig. 4 (codebook), DC Fig. 5 (Huffman)."""

from __future__ import annotations

import math

import numpy as np

from experiments.analysis.readings import centroid_init, codebook_centroids, layer_pruned, pick_layers
from experiments.analysis.points import _latest_run_with
from experiments.figures.style import Note, _finish, _hist, _missing_run, _new_figure, hist_range


def fig_weights(rows: list[dict], experiment: str, note: Note = print):
    """LWC Fig. 7: per-layer weight histograms before pruning and after pruning + retraining."""
    stem = "lwc_fig7_weights"

    def ok(r):
        h = r.get("histograms") or {}
        return any(_hist((h.get("dense") or {}).get(n)) and _hist((h.get("pruned") or {}).get(n))
                   for n in (h.get("dense") or {}))

    row = _latest_run_with(rows, experiment, ok)
    if row is None:
        _missing_run(note, stem, rows, experiment, "'histograms' with 'dense' and 'pruned' entries")
        return None
    from matplotlib.ticker import MaxNLocator

    h = row["histograms"]
    names = [n for n in h["dense"] if _hist(h["dense"].get(n)) and _hist((h.get("pruned") or {}).get(n))]
    layers = pick_layers(row, names)
    fig, axes = _new_figure(2, len(layers), 4.4, 2.6)
    spans = []
    for (a0, a1), n in zip(axes, layers):
        for ax, which, label in ((a0, "dense", "before pruning (dense)"),
                                 (a1, "pruned", "after pruning + retraining (non-zero weights)")):
            e, c = _hist(h[which][n])
            ax.stairs(c, e, fill=True, color="tab:blue" if which == "dense" else "tab:red", alpha=0.8)
            lo, hi = hist_range(e, c)
            spans.append(f"{n} {which} [{lo:+.3f}, {hi:+.3f}]")
            ax.set_title(f"{n}: {label}", fontsize=8.5)
            ax.set_xlabel("weight value")
            ax.set_ylabel("count (weights per bin)")
            ax.text(0.02, 0.95, f"98% of weights in\n[{lo:+.3f}, {hi:+.3f}]", transform=ax.transAxes,
                    fontsize=7, va="top")
            ax.grid(alpha=0.3)
        lim = max(abs(v) for ax in (a0, a1) for v in ax.get_xlim())
        for ax in (a0, a1):
            ax.set_xlim(-lim, lim)
            ax.xaxis.set_major_locator(MaxNLocator(5, symmetric=True))
    ours = (f"Run {row.get('run_id')}: histograms of every weight before pruning and of the surviving (non-zero) "
            f"weights after the last retraining; the boxes give the central 98% range. Layers: {', '.join(layers)}.")
    _finish(fig, stem, "weight distribution before and after pruning", row, [row], ours)
    return fig


def fig_codebook(rows: list[dict], experiment: str, note: Note = print):
    """DC Fig. 4 (right): the codebook before and after fine-tuning over the pruned weights' histogram."""
    stem = "fig4_codebook"

    def usable(r):
        hp = (r.get("histograms") or {}).get("pruned") or {}
        return [l.get("name") for l in r.get("layers") or []
                if l.get("codebook_init") is not None and l.get("codebook") is not None
                and _hist(hp.get(l.get("name")))]

    row = _latest_run_with(rows, experiment, lambda r: bool(usable(r)))
    if row is None:
        _missing_run(note, stem, rows, experiment,
                     "layers[].codebook_init + layers[].codebook with a histograms.pruned entry")
        return None
    from matplotlib.ticker import MaxNLocator

    names = pick_layers(row, usable(row))
    info = {l.get("name"): l for l in row["layers"]}
    fig, axes = _new_figure(min(2, len(names)), math.ceil(len(names) / 2), 5.2, 3.0)
    flat = list(axes.ravel())
    for ax, n in zip(flat, names):
        e, c = _hist(row["histograms"]["pruned"][n])
        layer = info[n]
        pr = layer_pruned(layer)
        ax.stairs(c, e, fill=True, color="tab:blue", alpha=0.45, label="weights (non-zero)")
        for key, marker, color, label, kw in (
                ("codebook_init", "x", "tab:green", "codebook before fine-tuning", {}),
                ("codebook", "o", "tab:red", "codebook after fine-tuning", {"mfc": "none"})):
            cb = np.asarray(codebook_centroids(layer, key, pr), float)
            idx = np.clip(np.searchsorted(e, cb, side="right") - 1, 0, c.size - 1)
            ax.plot(cb, c[idx], ls="none", marker=marker, color=color, ms=5, label=f"{label} ({cb.size})", **kw)
        ax.xaxis.set_major_locator(MaxNLocator(6))
        bits = layer.get("weight_bits_pq")
        ax.set_title(f"{n}" + (f" ({bits}-bit codebook)" if bits else ""), fontsize=9)
        ax.set_xlabel("weight value")
        ax.set_ylabel("count (weights per bin)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5)
    for ax in flat[len(names):]:
        ax.set_visible(False)
    init = centroid_init(row)
    ours = (f"Run {row.get('run_id')}, centroid init {init}: histogram of the surviving weights after pruning; "
            "each centroid is drawn at the height of the histogram bin it falls in (crosses: after k-means, before "
            "fine-tuning; circles: after fine-tuning). The reserved 0.0 entry of a pruned layer's codebook is "
            "not drawn.")
    _finish(fig, stem, "codebook before and after fine-tuning", row, [row], ours)
    return fig


def mean_code_length(counts, lengths) -> float | None:
    counts = np.asarray(counts, dtype=np.int64)
    tot = int(counts.sum())
    return float((counts * np.asarray(lengths, dtype=np.int64)).sum() / tot) if tot else None


def fig_huffman(rows: list[dict], experiment: str, note: Note = print):
    """DC Fig. 5: histograms of the stored weight indices and index gaps, with Huffman code lengths."""
    from compression.huffman import code_lengths

    stem = "fig5_huffman"

    def usable(r):
        return [l.get("name") for l in r.get("layers") or []
                if l.get("weight_symbol_counts") is not None and l.get("gap_symbol_counts") is not None]

    row = _latest_run_with(rows, experiment, lambda r: bool(usable(r)))
    if row is None:
        _missing_run(note, stem, rows, experiment, "layers[].weight_symbol_counts + layers[].gap_symbol_counts")
        return None
    names = pick_layers(row, usable(row))
    info = {l.get("name"): l for l in row["layers"]}
    fig, axes = _new_figure(2, len(names), 4.6, 2.7)
    for (a0, a1), n in zip(axes, names):
        for ax, key, what, color in (
                (a0, "weight_symbol_counts", "quantized-weight index (codebook entry)", "tab:blue"),
                (a1, "gap_symbol_counts", "stored index gap (distance − 1; the top value also marks fillers)",
                 "tab:green")):
            counts = np.asarray(info[n][key], dtype=np.int64)
            lens = code_lengths(counts)
            xs = np.arange(counts.size)
            ax.bar(xs, counts, width=1.0, color=color, alpha=0.7)
            ax.set_xlabel(what, fontsize=7.5)
            ax.set_ylabel("count (stored entries)")
            tw = ax.twinx()
            present = lens > 0
            tw.plot(xs[present], lens[present], ls="none", marker=".", color="black", ms=4)
            tw.set_ylabel("Huffman code length (bits)")
            tw.set_ylim(0, max(int(lens.max()) + 1, 2))
            avg = mean_code_length(counts, lens)
            fixed = math.log2(counts.size) if counts.size > 1 else 1
            ax.set_title(f"{n}: {'weight indices' if key.startswith('weight') else 'index gaps'} "
                         f"({counts.size} symbols)", fontsize=8.5)
            if avg is not None:
                ax.text(0.98, 0.95, f"Huffman {avg:.2f} bits/symbol\nfixed {fixed:g} bits", transform=ax.transAxes,
                        ha="right", va="top", fontsize=7, bbox={"fc": "white", "alpha": 0.8, "lw": 0})
            ax.grid(alpha=0.3)
    ours = (f"Run {row.get('run_id')}: bars = how often each symbol occurs in the stored stream (fillers included); "
            "dots (right axis) = its Huffman code length from compression.huffman.code_lengths (absent symbols "
            "have none). The box compares the mean code length with the fixed-width field.")
    _finish(fig, stem, "symbol histograms and Huffman code lengths", row, [row], ours)
    return fig
