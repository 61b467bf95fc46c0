"""The rate–error frontier: compressed − dense error against the compressed file's bytes, one line per method,
with the published ratios of Deep Compression and later work on MNIST as reference marks."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

from experiments import paper_values as pv
from experiments.analysis.frontier import DATASET, EXPERIMENTS, MIN_SEEDS, THRESHOLDS, frontier_points, methods_in
from experiments.figures.style import Note, _finish, _new_figure

RATIO_TICKS = (5, 10, 20, 30, 40, 50, 64, 80, 100, 150, 200, 300, 500, 1000)
OFF_SCALE = 20.0  # points: a recipe that costs more (e.g. a collapsed network) is named in the caption, not drawn
LINTHRESH = 1.0  # the y axis is linear up to +1 point (the thresholds), logarithmic beyond (soft weight-sharing)


def _marks(ax, experiment: str, dense_bytes: float) -> list[float]:
    """The published ratios as labelled vertical dotted lines at our dense fp32 bytes / ratio; their x."""
    xs = []
    for s in pv.SUCCESSORS.get(experiment, []):
        x = dense_bytes / s["ratio"]
        ax.axvline(x, ls=":", color="0.35", lw=1, zorder=1.5)
        ax.text(x, 0.02, f"{s['label']} {s['ratio']:g}× (MNIST)", transform=ax.get_xaxis_transform(), rotation=90,
                rotation_mode="anchor", ha="left", va="bottom", fontsize=6.5, color="0.3",
                bbox={"fc": "white", "ec": "none", "alpha": 0.7, "pad": 0.5}, zorder=1.5)  # under the data
        xs.append(x)
    return xs


def _ratio_axis(ax, dense_bytes: float) -> None:
    """A top axis giving the compression ratio, dense fp32 bytes / file bytes."""
    def conv(v):
        v = np.asarray(v, dtype=float)
        return dense_bytes / np.where(v > 0, v, np.nan)

    top = ax.secondary_xaxis("top", functions=(conv, conv))
    lo, hi = sorted(dense_bytes / np.asarray(ax.get_xlim()))
    top.set_xticks([r for r in RATIO_TICKS if lo <= r <= hi])
    top.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    top.xaxis.set_minor_locator(NullLocator())
    top.set_xlabel("compression ratio (our dense fp32 bytes / file bytes)", fontsize=8)


def fig_frontier(rows: list[dict], experiment: str, note: Note = print):
    """Compressed − dense error (points, paired per seed) against the file's bytes (log scale), one line per
    method through its points; marker at the mean over seeds, error bars from the lowest seed's 95% CI low to
    the highest seed's CI high (and the file bytes' range over seeds); dashed: +0.2, +0.5 and +1.0 points;
    dotted: the published MNIST ratios."""
    stem = "frontier"
    if experiment not in EXPERIMENTS:
        note(f"{experiment}_{stem}: skipped: drawn for {' and '.join(EXPERIMENTS)} only")
        return None
    pts = frontier_points(rows, experiment, note)
    if not pts:
        note(f"{experiment}_{stem}: skipped: no full-pipeline row of {experiment} on {DATASET} (not storage-only) has "
             "'dense/top1_err', 'compressed/top1_err', size 'file_bytes' and the correctness bitsets "
             "correct['dense'] and correct['compressed']")
        return None
    ids = {i for p in pts for i in p["run_ids"]}
    off = [p for p in pts if p["delta"] > OFF_SCALE]
    if len(off) < len(pts):
        pts = [p for p in pts if p["delta"] <= OFF_SCALE]
    else:  # all off the scale: draw them, the scale follows
        off = []
    for p in off:
        note(f"{experiment}_{stem}: off the scale, not drawn: {p['method']}, {p['ratio']:.0f}x at +{p['delta']:.1f} points "
             f"(runs {', '.join(p['run_ids'])})")
    used = sorted((r for r in rows if r.get("experiment") == experiment and str(r.get("run_id")) in ids),
                  key=lambda r: str(r.get("run_id")))
    fig, axes = _new_figure(1, 1, 9.6, 4.6)  # wide: the legend sits right of the axes, clear of the data
    ax = axes[0][0]
    for i, m in enumerate(methods_in(pts)):
        sel = [p for p in pts if p["method"] == m]  # sorted by bytes
        full = [p for p in sel if len(p["seeds"]) >= MIN_SEEDS]  # a curve through the recipes run on every seed
        pilots = [p for p in sel if len(p["seeds"]) < MIN_SEEDS]  # the trials a choice was made from: hollow
        for group, fmt, face in ((full, "-o", f"C{i}"), (pilots, "o", "none")):
            if not group:
                continue
            x = np.array([p["file_bytes"] for p in group])
            y = np.array([p["delta"] for p in group])
            yerr = [y - [p["band_low"] for p in group], [p["band_high"] for p in group] - y]
            xerr = [x - [p["file_bytes_min"] for p in group], [p["file_bytes_max"] for p in group] - x]
            what = (f"{len(group)} recipe{'s' if len(group) > 1 else ''}, {MIN_SEEDS}+ seeds" if group is full
                    else f"{len(group)} trial{'s' if len(group) > 1 else ''} on fewer seeds")
            ax.errorbar(x, y, yerr=yerr, xerr=xerr, fmt=fmt, ms=4, lw=1.2, capsize=2, color=f"C{i}", mfc=face,
                        alpha=1.0 if group is full else 0.6, label=f"{m} ({what})")
    for t in THRESHOLDS:
        ax.axhline(t, ls="--", color="0.75", lw=0.8)
        ax.text(1.0, t, f" +{t:g}", transform=ax.get_yaxis_transform(), ha="left", va="center", fontsize=7,
                color="0.5")
    ax.axhline(0.0, color="black", lw=0.8)
    dense = float(np.mean([p["dense_bytes"] for p in pts]))
    xs = [p["file_bytes_min"] for p in pts] + [p["file_bytes_max"] for p in pts] + _marks(ax, experiment, dense)
    ax.set_xscale("log")
    ax.set_xlim(min(xs) / 1.25, max(xs) * 1.25)
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g} KB"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    _ratio_axis(ax, dense)
    ax.set_xlabel("compressed file on disk (1 KB = 1000 B), log scale")
    ax.set_ylabel("compressed − dense test error (points)\nsymmetric log scale beyond 1 point")
    ax.set_yscale("symlog", linthresh=LINTHRESH)
    ax.grid(alpha=0.3, which="both")
    lows = [p["band_low"] for p in pts]
    highs = [p["band_high"] for p in pts]
    ax.set_ylim(min(-0.3, 1.15 * min(lows)), max(1.5, 1.3 * max(highs)))  # no empty decade below zero
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.05, 1.0), borderaxespad=0.0)
    seeds = max(len(p["seeds"]) for p in pts)
    ours = (f"Full-pipeline rows on {DATASET}: the error of the model decoded from the file minus the run's own dense "
            f"model, paired over the test examples, mean over up to {seeds} seed{'s' if seeds > 1 else ''} (one point "
            "per recipe: config without seed; the latest row per seed; a line joins the recipes run on at least "
            f"{MIN_SEEDS} seeds, hollow markers are trials on fewer, from which choices were made on validation); error "
            "bars from the lowest seed's 95% "
            "bootstrap CI low to the highest seed's CI high. Dashed: +0.2, +0.5 and +1.0 points; the error axis is "
            f"linear up to {LINTHRESH:g} point and logarithmic beyond. Dotted: published "
            "ratios on MNIST, drawn at our dense fp32 bytes / ratio: other data and other byte counts, so marks "
            "of size only, never errors. Top axis: dense fp32 bytes / file bytes."
            + _off_scale(off))
    _finish(fig, stem, "compressed − dense error vs file size per method", used[-1], used, ours)
    return fig


def _off_scale(off: list[dict]) -> str:
    """The caption's sentence on the recipes not drawn, one clause per method: ratio, points and runs of each."""
    by: dict[str, list[dict]] = {}
    for p in off:
        by.setdefault(p["method"], []).append(p)
    return "".join(
        f" Off the scale, not drawn: {method} at " + "; ".join(
            f"{p['ratio']:.0f}×, +{p['delta']:.1f} points ({', '.join(p['run_ids'])})" for p in ps) + "."
        for method, ps in by.items())
