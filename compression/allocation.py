"""Per-layer densities chosen by the data: one global budget of weights, allocated across layers.

Han et al. chose each layer's density by hand, guided by the sensitivity analysis: "the most sensitive
layers" keep more (LWC section 4 and Fig. 6; DC Table 1's densities for LeNet-300-100 are 8%, 9%, 26%).
This makes that choice a computation on the validation split.

Given, per layer l, its weight count n_l and its sensitivity curve e_l(d) (the validation error with
only that layer pruned to density d, without retraining: ``experiments/sensitivity.py``), choose the
densities d_l that minimize sum_l e_l(d_l) subject to sum_l n_l d_l = B, the budget (a fraction of
all the layers' weights). Two assumptions, both the usual first-order ones: the layers' errors add up
(pruning several layers hurts as the sum of pruning each alone), and each curve is linear between its
measured densities.

Solved exactly for the convex relaxation: each curve is replaced by its lower convex hull, every layer
starts at its lowest density, and weights are bought segment by segment, best error drop per weight
first (the fractional knapsack; a layer's hull segments come in order of decreasing gain, so the
greedy order respects each curve). The last segment is bought in part, so the kept weights meet the
budget exactly (to the rounding of each layer's count).
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path


def lower_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The lower convex hull of (density, error) points, in increasing density (Andrew's monotone chain)."""
    hull: list[tuple[float, float]] = []
    for p in sorted(points):
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) <= 0:  # hull[-1] lies on or above p's chord
                hull.pop()
            else:
                break
        if hull and hull[-1][0] == p[0]:  # same density twice: the lower error (sorted puts it first)
            continue
        hull.append(p)
    return hull


def allocate(curves: dict[str, list[tuple[float, float]]], sizes: dict[str, int], budget: float,
             min_density: float = 0.0) -> dict[str, float]:
    """Each layer's density for a total of ``budget * sum(sizes)`` weights (see the module docstring).

    ``curves[name]``: (density, error) points, density in (0, 1]; ``min_density``: no layer goes below it
    (nor below its curve's lowest measured density: the curve says nothing under it).
    """
    missing = sorted(set(sizes) - set(curves))
    if missing:
        raise ValueError(f"no sensitivity curve for layer(s) {missing} (curves cover {sorted(curves)})")
    if not 0 < budget <= 1:
        raise ValueError(f"budget {budget} must be a fraction of the weights in (0, 1]")
    total = sum(sizes.values())
    hulls, start = {}, {}
    for name in sizes:
        pts = [(float(d), float(e)) for d, e in curves[name] if float(d) >= min_density]
        if not pts or max(d for d, _ in pts) < 1.0:
            raise ValueError(f"the sensitivity curve of {name} needs points from {min_density} up to density 1.0")
        hulls[name] = lower_hull(pts)
        start[name] = hulls[name][0][0]
    need = budget * total
    floor = sum(sizes[n] * start[n] for n in sizes)
    if need < floor - 1e-9:
        raise ValueError(f"budget {budget} is below what the curves' lowest densities keep "
                         f"({floor / total:.4f} of the weights); raise the budget or measure lower densities")
    # every hull segment as (error drop per weight, layer, from density, to density); best first
    segments = []
    for name, h in hulls.items():
        for (d0, e0), (d1, e1) in zip(h, h[1:]):
            segments.append(((e0 - e1) / (sizes[name] * (d1 - d0)), name, d0, d1))
    segments.sort(key=lambda s: -s[0])
    out, left = dict(start), need - floor
    for _, name, d0, d1 in segments:
        if left <= 0:
            break
        step = min(d1 - d0, left / sizes[name])
        out[name] = d0 + step
        left -= step * sizes[name]
    return {n: min(1.0, round(d, 6)) for n, d in out.items()}


def predicted_error(curves: dict[str, list[tuple[float, float]]], densities: dict[str, float]) -> dict[str, float]:
    """Each layer's curve read at its density (linear between points): the error the allocation expects."""
    out = {}
    for name, d in densities.items():
        pts = sorted(curves[name])
        for (d0, e0), (d1, e1) in zip(pts, pts[1:]):
            if d0 <= d <= d1:
                out[name] = round(e0 + (e1 - e0) * (d - d0) / (d1 - d0) if d1 > d0 else e0, 4)
                break
    return out


class FromSensitivity:
    """Allocation plug-in (``prune.allocation``, conf/prune/allocation/sensitivity.yaml): densities for
    ``budget`` from a sensitivity CSV (``experiments.sensitivity`` writes it: columns layer, density and
    ``column``, measured on the validation split)."""

    def __init__(self, budget: float, curves: str, min_density: float = 0.0, column: str = "val_top1_err"):
        if not 0 < budget <= 1:
            raise ValueError(f"budget {budget} must be a fraction of the weights in (0, 1]")
        path = Path(curves)
        if not path.is_file():
            raise ValueError(f"no sensitivity curves at {curves}: write them with `python -m experiments.sensitivity "
                             f"+experiment=<name>` (validation split), or point prune.allocation.curves at a CSV")
        text = path.read_text()
        rows = list(csv.DictReader(text.splitlines()))
        if not rows or not {"layer", "density", column} <= set(rows[0]):
            raise ValueError(f"{curves} needs the columns layer, density and {column}")
        self.curves: dict[str, list[tuple[float, float]]] = {}
        for r in rows:
            self.curves.setdefault(r["layer"], []).append((float(r["density"]), float(r[column])))
        self.budget, self.min_density, self.column = float(budget), float(min_density), column
        self.source = {"curves": str(curves), "sha256": hashlib.sha256(text.encode()).hexdigest()}
        self.chosen: dict[str, float] = {}

    def densities(self, sizes: dict[str, int]) -> dict[str, float]:
        self.chosen = allocate(self.curves, sizes, self.budget, self.min_density)
        self.sizes = dict(sizes)
        return self.chosen

    def report(self) -> dict:
        """What the row records: the budget, the chosen densities, and the curves' error at them."""
        kept = sum(self.sizes[n] * d for n, d in self.chosen.items()) / max(1, sum(self.sizes.values()))
        return {"budget": self.budget, "density": self.chosen, "kept_fraction": round(kept, 6),
                "curve_error": predicted_error(self.curves, self.chosen), "column": self.column, **self.source}


__all__ = ["FromSensitivity", "allocate", "lower_hull", "predicted_error"]
