"""The history of pruning, measured: error vs density for magnitude, OBD and OBS, with and without retraining."""

from __future__ import annotations

from experiments.analysis.criteria import ORDER, retraining_lr_scales, sweep_points
from experiments.figures.style import Note, _empty, _finish, _new_figure

COLORS = {"Magnitude": "tab:blue", "OBD": "tab:orange", "OBS": "tab:green"}
PANELS = (("without retraining", "one step, no retraining"), ("with retraining", "one step + 8 epochs of retraining"))


def _lr_note(scales: dict[str, list]) -> str:
    """The retraining learning rate (``prune.lr_scale`` × the dense one) of the drawn curves; when the schedules
    were run at different values, each one's, so the figure never compares them silently."""
    values = {v for vs in scales.values() for v in vs}
    if not values:
        return ""
    if len(values) == 1:
        return f" Retraining at prune.lr_scale {values.pop()}."
    return (" Retraining at different learning rates, so the schedules are not compared at equal settings: "
            + "; ".join(f"{s} at prune.lr_scale {', '.join(map(str, vs))}" for s, vs in scales.items()) + ".")


def fig_criteria(rows: list[dict], experiment: str, note: Note = print):
    """Test error against the fraction of weights removed, one line per criterion (mean over seeds, min-max
    band); left without retraining, right with retraining (dashed: the iterative schedule)."""
    stem = "pruning_criteria"
    pts = sweep_points(rows, experiment)
    if not pts:
        note(f"{experiment}_{stem}: skipped: no rows of sweep 'criteria' (sweeps/{experiment}/criteria/*.json)")
        return None
    srows = [r for r in rows if r.get("experiment") == experiment and r.get("sweep") == "criteria"]
    fig, axes = _new_figure(2, 1, 5.0, 4.0)
    dense = [r["metrics"]["dense/top1_err"] for r in srows if (r.get("metrics") or {}).get("dense/top1_err")]
    for ax, (sched, title) in zip(axes[0], PANELS):
        shown = False
        for crit in [c for c in ORDER if any(p["criterion"] == c for p in pts)]:
            for s, ls in ((sched, "-"), ("iterative", "--")) if sched == "with retraining" else ((sched, "-"),):
                sel = sorted((p for p in pts if p["criterion"] == crit and p["schedule"] == s),
                             key=lambda p: -p["density"])
                if not sel:
                    continue
                x = [100 * (1 - p["density"]) for p in sel]
                ax.plot(x, [p["err"] for p in sel], ls=ls, marker="o", ms=3.5, color=COLORS.get(crit),
                        label=f"{crit}" + (", iterative (3 rounds)" if s == "iterative" else ""))
                ax.fill_between(x, [p["err_min"] for p in sel], [p["err_max"] for p in sel], color=COLORS.get(crit),
                                alpha=0.15, lw=0)
                shown = True
        if not shown:
            _empty(ax, f"not run: no rows {sched}")
            continue
        if dense:
            ax.axhline(sum(dense) / len(dense), color="black", lw=1, label="dense (mean over seeds)")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("weights removed (%, every layer alike)")
        ax.set_ylabel("test error (%), log scale")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    seeds = max(len(p["seeds"]) for p in pts)
    ours = (f"Mean over up to {seeds} seeds, band = min to max; every seed prunes its own dense model with each "
            "criterion (same densities, same retraining). Error after pruning (and retraining), before "
            "quantization. LWC 3.4's dead connections, dropped after each step, remove up to a few points more, "
            "and more for OBS than for magnitude (the rows' layers[].nonzeros). Per-seed paired confidence intervals "
            "against magnitude: the notebook." + _lr_note(retraining_lr_scales(srows, pts)))
    _finish(fig, stem, "error vs density per pruning criterion", srows[-1], srows, ours, pts)
    return fig
