"""The paper's claims, checked on our rows (printed by the notebook): each returns its verdict and lines."""

from __future__ import annotations

import math

from experiments.analysis.points import bits_points, init_points, sweep_rows, tradeoff_points
from experiments.analysis.readings import P_ONLY, PQ, Q_ONLY, model_has_conv

BITS_GROUPS = {"conv": "conv layers", "fc": "fc layers", "all": "all layers"}


def min_bits_within(points: list[dict], tol: float = 1.0):
    """Smallest bits b such that b and every larger tested width lose at most ``tol`` points of top-1
    accuracy after fine-tuning against the dense baseline (points: bits, acc_final, dense_acc)."""
    pts = sorted((p for p in points if p.get("acc_final") is not None and p.get("dense_acc") is not None),
                 key=lambda p: -p["bits"])
    best = None
    for p in pts:
        if p["dense_acc"] - p["acc_final"] > tol:
            break
        best = p["bits"]
    return best


def check_bits(rows: list[dict], experiment: str, tol: float = 1.0) -> dict | None:
    """(a) fc layers tolerate fewer bits than conv: smallest bits within ``tol`` points, per group."""
    pts = bits_points(rows, experiment)
    if not pts:
        return None
    srows = sweep_rows(rows, experiment, "bits")
    has_conv = model_has_conv(srows[0]) if srows else True
    mins = {}
    for g in ("conv", "fc", "all"):
        for m in (PQ, Q_ONLY):
            sel = [p for p in pts if p["group"] == g and p["method"] == m]
            if sel:
                mins[(g, m)] = (min_bits_within(sel, tol), sorted(p["bits"] for p in sel))
    lines = []
    for (g, m), (b, tested) in mins.items():
        label = BITS_GROUPS[g] + ("" if has_conv or g != "fc" else " (= all layers)")
        lines.append(f"{label}, {m}: smallest bits within {tol:g} point of dense = "
                     f"{b if b is not None else 'none'} (tested {', '.join(map(str, tested))})")
    verdict = None
    if not has_conv:
        lines.append("conv vs fc: not applicable (the model has no conv layers)")
    else:
        compared = False
        for m in (PQ, Q_ONLY):
            if ("conv", m) not in mins or ("fc", m) not in mins:
                continue
            compared = True
            c, f = mins[("conv", m)][0], mins[("fc", m)][0]
            if c is None or f is None:
                lines.append(f"conv vs fc ({m}): undecided: a group never gets within {tol:g} point of dense")
                continue
            ok = f < c
            verdict = ok if verdict is None else verdict
            lines.append(f"conv vs fc ({m}): fc needs {f} bits, conv {c} bits → fc tolerates fewer bits "
                         f"than conv: {'yes' if ok else 'no'} (paper: yes, fc 2 bits vs conv 4)")
        if not compared:
            lines.append("conv vs fc: not run (needs conv-only and fc-only rows of one method)")
    return {"experiment": experiment, "min_bits": mins, "fc_fewer_than_conv": verdict, "lines": lines}


def check_init(rows: list[dict], experiment: str, bits: tuple[int, ...] = (2, 3, 4)) -> dict | None:
    """(b) linear initialization at least as good as the others at low bits (after fine-tuning)."""
    pts = [p for p in init_points(rows, experiment) if p["acc_final"] is not None]
    by_bits: dict[int, dict[str, float]] = {}
    for p in pts:
        by_bits.setdefault(p["bits"], {})[p["init"]] = p["acc_final"]
    lines, wins, n = [], 0, 0
    for b in bits:
        accs = by_bits.get(b, {})
        if "linear" not in accs or len(accs) < 2:
            continue
        others = {k: v for k, v in accs.items() if k != "linear"}
        margin = accs["linear"] - max(others.values())
        ok = margin >= 0
        wins, n = wins + ok, n + 1
        cells = ", ".join(f"{k} {v:.2f}%" for k, v in sorted(accs.items()))
        lines.append(f"{b} bits: {cells} → linear at least as good: {'yes' if ok else 'no'} "
                     f"(margin over the best other {margin:+.2f} points)")
    if not n:
        return None
    lines.append(f"linear at least as good as the others at {wins} of {n} bit widths in "
                 f"{min(bits)}-{max(bits)} (paper: linear best except at 3 bits)")
    return {"experiment": experiment, "wins": wins, "n": n, "lines": lines}


def check_tradeoff(rows: list[dict], experiment: str, far: float = 1.5) -> dict | None:
    """(c) pruning + quantization beats either alone at equal compression: each P+Q point against
    the nearest-size point (in log size) of pruning only and of quantization only."""
    pts = tradeoff_points(rows, experiment)
    pq = [p for p in pts if p["method"] == PQ]
    if not pq:
        return None
    lines, wins, n = [], 0, 0
    for alone in (P_ONLY, Q_ONLY):
        others = [p for p in pts if p["method"] == alone]
        if not others:
            lines.append(f"{PQ} vs {alone}: not run")
            continue
        for p in pq:
            o = min(others, key=lambda q: abs(math.log(q["size_pct"] / p["size_pct"])))
            better = p["loss"] < o["loss"]
            wins, n = wins + better, n + 1
            ratio = max(o["size_pct"], p["size_pct"]) / min(o["size_pct"], p["size_pct"])
            lines.append(f"{PQ} at {p['size_pct']:.2f}% of the size: loss {p['loss']:+.2f} points; {alone} at "
                         f"{o['size_pct']:.2f}% (nearest): {o['loss']:+.2f} points → {PQ} better: "
                         f"{'yes' if better else 'no'}" + (f" (sizes differ {ratio:.1f}×)" if ratio > far else ""))
    if not n:
        return None
    lines.append(f"{PQ} has the smaller loss in {wins} of {n} comparisons (paper: yes, it holds down to about 3% "
                 f"of the size while either alone degrades below about 8%)")
    return {"experiment": experiment, "wins": wins, "n": n, "lines": lines}
