"""The sweep figures: DC Figs. 6-8 and LWC Fig. 5, from the rows of the sweeps in conf/sweep/."""

from __future__ import annotations

import numpy as np

from experiments.analysis.points import _reference, bits_points, init_points, prune_points, tradeoff_points
from experiments.analysis.readings import P_ONLY, PQ, Q_ONLY, SVD, _acc, model_has_conv
from experiments.figures.style import (BITS_GROUPS, INIT_COLORS, METHOD_STYLE, Note, _empty, _finish, _new_figure,
                                       _seed_note, _sweep_input)


def fig_bits(rows: list[dict], experiment: str, note: Note = print):
    """DC Fig. 7: top-1 accuracy vs bits per weight; panels conv / fc / all layers."""
    stem = "fig7_bits"
    got = _sweep_input(rows, experiment, stem, "bits", lambda sr: bits_points(sr, experiment, note, reference_rows=rows),
                       "metrics 'quantized/top1_err' or 'quantized_init/top1_err' with a quantized layer kind", note)
    if got is None:
        return None
    srows, pts = got
    has_conv = model_has_conv(srows[-1])
    groups = ["conv", "fc", "all"] if has_conv else ["fc"]
    fig, axes = _new_figure(len(groups), 1, 4.6, 3.8)
    dense = _acc(_reference(srows, experiment, rows))
    for ax, g in zip(axes[0], groups):
        sel = [p for p in pts if p["group"] == g]
        title = BITS_GROUPS[g] if has_conv else "fc layers (= all layers: the model has no conv layers)"
        ax.set_title(title, fontsize=9)
        if not sel:
            _empty(ax, f"not run: no rows quantizing only {BITS_GROUPS[g]}" if g != "all"
                   else "not run: no rows quantizing all layers")
            continue
        for m, ls in ((PQ, "-"), (Q_ONLY, "--")):
            mp = [p for p in sel if p["method"] == m]
            for key, color, marker, stage in (("acc_final", "tab:blue", "o", "after fine-tuning"),
                                              ("acc_init", "tab:orange", "x", "before fine-tuning")):
                xy = [(p["bits"], p[key]) for p in mp if p[key] is not None]
                if xy:
                    ax.plot(*zip(*xy), ls=ls, color=color, marker=marker, ms=4, label=f"{m}, {stage}")
        pruned = [p["pruned_acc"] for p in sel if p["method"] == PQ and p["pruned_acc"] is not None]
        if pruned:
            ax.axhline(float(np.mean(pruned)), color="0.5", ls=":", lw=1, label="pruned, not quantized")
        if dense is not None:
            ax.axhline(dense, color="black", lw=1, label="dense baseline")
        ax.set_xlabel("bits per weight")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_xticks(sorted({p["bits"] for p in sel}))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="lower right")
    ours = ("Solid: pruning + quantization, dashed: quantization only (config.prune.enabled); blue: after "
            "centroid fine-tuning, orange: after k-means, before fine-tuning; black: dense baseline. "
            "A panel quantizes only that kind of layer (the other kind has bits 0 and stays fp32)."
            + _seed_note(pts))
    _finish(fig, stem, "top-1 accuracy vs bits per weight", srows[-1], srows, ours, pts)
    return fig


def fig_init(rows: list[dict], experiment: str, note: Note = print):
    """DC Fig. 8: top-1 accuracy vs bits, one line per centroid initialization."""
    stem = "fig8_init"
    got = _sweep_input(rows, experiment, stem, "init", lambda sr: init_points(sr, experiment, note, reference_rows=rows),
                       "a k-means init (config.quantize.quantizer.init), equal conv/fc bits and metrics 'quantized/top1_err' or "
                       "'quantized_init/top1_err'", note)
    if got is None:
        return None
    srows, pts = got
    fig, axes = _new_figure(1, 1, 6.4, 4.2)
    ax = axes[0][0]
    found = {p["init"] for p in pts}
    inits = [i for i in INIT_COLORS if i in found] + sorted(found - set(INIT_COLORS))
    for i, init in enumerate(inits):
        color = INIT_COLORS.get(init, f"C{i + 3}")
        sel = [p for p in pts if p["init"] == init]
        for key, ls, alpha, marker, stage in (("acc_final", "-", 1.0, "o", "after fine-tuning"),
                                              ("acc_init", "--", 0.5, "x", "before fine-tuning")):
            xy = [(p["bits"], p[key]) for p in sel if p[key] is not None]
            if xy:
                ax.plot(*zip(*xy), ls=ls, color=color, alpha=alpha, marker=marker, ms=4, label=f"{init}, {stage}")
    dense = _acc(_reference(srows, experiment, rows))
    if dense is not None:
        ax.axhline(dense, color="black", lw=1, label="dense baseline")
    ax.set_xlabel("bits per weight (conv and fc)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_xticks(sorted({p["bits"] for p in pts}))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ours = ("One colour per k-means initialization (config.quantize.quantizer.init); solid: after centroid fine-tuning, dashed (light): after k-means, "
            "before fine-tuning; black: dense baseline." + _seed_note(pts))
    _finish(fig, stem, "top-1 accuracy vs bits per centroid initialization", srows[-1], srows, ours, pts)
    return fig


def fig_tradeoff(rows: list[dict], experiment: str, note: Note = print):
    """DC Fig. 6: accuracy loss vs model size (% of the original) per compression method."""
    stem = "fig6_tradeoff"
    got = _sweep_input(rows, experiment, stem, "tradeoff",
                       lambda sr: tradeoff_points(sr, experiment, note, reference_rows=rows),
                       "a method, its ratio (ratio.svd / ratio.p_sparse / ratio.pqh) and metrics 'dense/top1_err' "
                       "+ a final top-1 error", note)
    if got is None:
        return None
    srows, pts = got
    fig, axes = _new_figure(1, 1, 6.8, 4.2)
    ax = axes[0][0]
    for m in (PQ, P_ONLY, Q_ONLY, SVD):
        xy = sorted((p["size_pct"], p["loss"]) for p in pts if p["method"] == m)
        if xy:
            color, marker = METHOD_STYLE[m]
            ax.plot(*zip(*xy), color=color, marker=marker, ms=4, label=m)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("model size after compression (% of the dense fp32 model, log scale)")
    ax.set_ylabel("top-1 accuracy loss (points; final − dense error)\nsymmetric log scale above 1 point")
    ax.set_yscale("symlog", linthresh=1.0)  # collapses reach tens of points; the differences that matter are < 1
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ours = ("Size = 100 / rate: SVD ratio.svd, pruning only ratio.p_sparse (sparse format), quantization only and "
            "pruning + quantization ratio.pqh (with Huffman coding). Final error: compressed, else quantized, "
            "lowrank, pruned. Up = worse." + _seed_note(pts))
    _finish(fig, stem, "accuracy loss vs compressed model size", srows[-1], srows, ours, pts)
    return fig


def fig_prune(rows: list[dict], experiment: str, note: Note = print):
    """LWC Fig. 5: accuracy loss vs fraction of parameters pruned, per pruning schedule."""
    stem = "lwc_fig5_prune"
    got = _sweep_input(rows, experiment, stem, "prune", lambda sr: prune_points(sr, experiment, note),
                       "pruning enabled, layers[].nonzeros/density and metrics 'pruned/top1_err' + 'dense/top1_err'",
                       note)
    if got is None:
        return None
    srows, pts = got
    fig, axes = _new_figure(1, 1, 6.8, 4.2)
    ax = axes[0][0]
    curves = sorted({p["curve"] for p in pts}, key=lambda c: ("without" not in c, "iterative" in c, c))
    for i, c in enumerate(curves):
        xy = sorted((p["pruned_pct"], p["loss"]) for p in pts if p["curve"] == c)
        ax.plot(*zip(*xy), color=f"C{i}", marker="os^Dv<>"[i % 7], ms=4,
                ls="--" if "without" in c else "-", label=c)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("parameters pruned away (% of weights; 1 − Σ non-zeros / Σ weights)")
    ax.set_ylabel("top-1 accuracy loss (points; pruned − dense error)\nsymmetric log scale above 1 point")
    ax.set_yscale("symlog", linthresh=1.0)  # no-retraining losses reach tens of points; retraining stays < 1
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(0.0, 0.8))
    ours = ("Curves from config.prune: epochs_per_round 0 = without retraining; rounds > 1 = iterative; "
            "regularization L1/L2. Error after the last pruning (and retraining) stage, before quantization. "
            "Up = worse." + _seed_note(pts))
    _finish(fig, stem, "accuracy loss vs parameters pruned", srows[-1], srows, ours, pts)
    return fig
