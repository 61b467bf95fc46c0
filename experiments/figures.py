"""Regenerate the papers' figures (DC Figs. 4-8, LWC Figs. 5 and 7) from result rows.

    python -m experiments.figures [--results results] [--out results/figures] [--experiment lenet300 ...]

Reads experiment rows ``<results>/runs/<experiment>/<run_id>.json`` and sweep rows
``<results>/sweeps/<experiment>/<sweep>/<run_id>.json`` (top-level ``"sweep"`` = the sweep name;
docs/results_row.md, docs/figures.md) and writes, per experiment and figure, a PNG and a PDF
(each atomically: temp file in the same folder, then ``os.replace``):

    <experiment>_fig7_bits         accuracy vs bits per weight, conv / fc / all layers  (sweep "bits", DC Fig. 7)
    <experiment>_fig8_init         accuracy vs bits per centroid initialization         (sweep "init", DC Fig. 8)
    <experiment>_fig6_tradeoff     accuracy loss vs model size, per method              (sweep "tradeoff", DC Fig. 6)
    <experiment>_lwc_fig5_prune    accuracy loss vs parameters pruned                   (sweep "prune", LWC Fig. 5)
    <experiment>_lwc_fig7_weights  weight histograms before / after pruning             (experiment row, LWC Fig. 7)
    <experiment>_fig4_codebook     codebook before / after fine-tuning over the weights (experiment row, DC Fig. 4)
    <experiment>_fig5_huffman      weight-index and index-gap symbol histograms, Huffman code lengths (DC Fig. 5)

Smoke rows (``config.trainer.epochs_cap`` set, or fake ImageNet data) are never used. A figure
whose inputs are missing is skipped with a printed line naming the missing rows or keys; no
placeholder data is ever drawn. Every figure function is pure: it takes the list of row dicts
(``load_rows``) and an experiment name and returns a matplotlib ``Figure`` or ``None``, so the
tests and notebooks/analysis.ipynb call them directly. Figures are built on
``matplotlib.figure.Figure`` (no pyplot state); the command line selects the Agg backend.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import textwrap
from pathlib import Path
from typing import Callable

import numpy as np

from experiments import paper_values as pv
from experiments.results import atomic_write_bytes
from experiments.tables import DATASET_NAMES, is_smoke
from experiments.tables import load_rows as load_row_files

Note = Callable[[str], None]

# The papers' figures: id, network and dataset, and what they show (paper.md section 4, DC v5 numbering).
PAPER = {
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
}

BITS_GROUPS = {"conv": "conv layers", "fc": "fc layers", "all": "all layers"}
PQ, P_ONLY, Q_ONLY, SVD = "pruning + quantization", "pruning only", "quantization only", "SVD"
INIT_COLORS = {"linear": "tab:blue", "density": "tab:green", "random": "tab:red"}
METHOD_STYLE = {PQ: ("tab:red", "o"), P_ONLY: ("tab:blue", "s"), Q_ONLY: ("tab:green", "^"), SVD: ("tab:gray", "D")}
FINAL_STAGES = ("compressed", "quantized", "lowrank", "pruned")
MAX_ALL_LAYERS = 4  # per-layer figures show every layer up to this many, else the largest conv + largest fc


# ----------------------------------------------------------------------------------------------
# Rows
# ----------------------------------------------------------------------------------------------
def load_rows(results_dir: str | Path) -> list[dict]:
    """Every parsable, non-smoke row under ``<results>/runs`` and ``<results>/sweeps``.

    Each row gets ``_path`` (relative to results_dir) and ``_kind``: "run" for a row directly in
    ``runs/<experiment>/``, "sweep" for a row with a ``sweep`` name (its folder under ``sweeps/``
    supplies the experiment and sweep when the row lacks them), "other" for anything else.
    """
    results_dir = Path(results_dir)
    rows = []
    for top in ("runs", "sweeps"):
        base = results_dir / top
        if not base.is_dir():
            continue
        for sub, row in load_row_files(base):
            if is_smoke(row):
                continue
            rel = Path(top) / sub
            parts = rel.parts
            if top == "sweeps" and len(parts) == 4:
                row.setdefault("experiment", parts[1])
                if not row.get("sweep"):
                    row["sweep"] = parts[2]
            if row.get("sweep"):
                kind = "sweep"
            elif top == "runs" and len(parts) == 3:
                kind = "run"
            else:
                kind = "other"
            row["_path"], row["_kind"] = str(rel), kind
            rows.append(row)
    return rows


def _get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or d.get(k) is None:
            return None
        d = d[k]
    return d


def _cfg(row: dict, *keys):
    return _get(row.get("config") or {}, *keys)


def _usable(row: dict) -> bool:
    return not is_smoke(row)


def sweep_rows(rows: list[dict], experiment: str, sweep: str) -> list[dict]:
    return [r for r in rows if r.get("sweep") == sweep and r.get("experiment") == experiment and _usable(r)]


def run_rows(rows: list[dict], experiment: str) -> list[dict]:
    """Experiment rows (not sweep jobs) of one experiment, oldest first."""
    out = [r for r in rows if r.get("experiment") == experiment and not r.get("sweep")
           and r.get("_kind", "run") == "run" and _usable(r)]
    return sorted(out, key=lambda r: str(r.get("run_id")))


def experiments_in(rows: list[dict]) -> list[str]:
    return sorted({str(r["experiment"]) for r in rows if r.get("experiment") and _usable(r)})


def _metric(row: dict, stage: str, k: str = "top1"):
    v = _get(row, "metrics", f"{stage}/{k}_err")
    return None if v is None else float(v)


def _acc(err):
    return None if err is None else 100.0 - err


def _one_dataset(rows: list[dict], note: Note, what: str) -> list[dict]:
    """Keep the rows of the latest row's dataset (a figure never mixes datasets)."""
    if not rows:
        return rows
    latest = max(rows, key=lambda r: str(r.get("run_id")))
    ds = latest.get("dataset")
    keep = [r for r in rows if r.get("dataset") == ds]
    if len(keep) < len(rows):
        note(f"{what}: using the {len(keep)} rows on {ds}; ignoring {len(rows) - len(keep)} rows on other datasets")
    return keep


def _run_ids(rows: list[dict], k: int = 3) -> str:
    ids = sorted(str(r.get("run_id")) for r in rows)
    if len(ids) <= k:
        return ", ".join(ids)
    return f"{ids[0]} … {ids[-1]}"


def _commits(rows: list[dict]) -> str:
    cs = sorted({(r.get("git_commit") or "unknown")[:7] for r in rows})
    return ", ".join(cs[:3]) + (f" +{len(cs) - 3} more" if len(cs) > 3 else "")


# ----------------------------------------------------------------------------------------------
# Grouping rules (small, tested helpers)
# ----------------------------------------------------------------------------------------------
def model_has_conv(row: dict) -> bool:
    """True if the row's model has conv layers (from ``layers[].kind``; LeNet-300-100 has none)."""
    layers = row.get("layers") or []
    if layers:
        return any(l.get("kind") == "conv" for l in layers)
    return row.get("model") != "lenet300"


def kind_bits(row: dict, kind: str):
    """Bits per weight of the layers of one kind (``quantize.bits[kind]``, else ``["*"]``; 0 = not quantized)."""
    bits = _cfg(row, "quantize", "bits")
    if isinstance(bits, (int, float)) and not isinstance(bits, bool):
        return int(bits)
    if not isinstance(bits, dict):
        return None
    v = bits.get(kind, bits.get("*"))
    return None if v is None else int(v)


def bits_group(row: dict) -> str | None:
    """DC Fig. 7 panel of a bits-sweep row: "conv" (fc not quantized), "fc" (conv not quantized),
    "all" (both); a model without conv layers has only "fc" (= all its layers); None if nothing is
    quantized."""
    c, f = kind_bits(row, "conv") or 0, kind_bits(row, "fc") or 0
    if not model_has_conv(row):
        return "fc" if f > 0 else None
    if c > 0 and f > 0:
        return "all"
    if c > 0:
        return "conv"
    if f > 0:
        return "fc"
    return None


def bits_x(row: dict, group: str):
    """x of a bits-sweep row in its panel: the quantized kind's bits; for "all", the common bits
    (None if conv and fc bits differ)."""
    c, f = kind_bits(row, "conv"), kind_bits(row, "fc")
    if group == "conv":
        return c
    if group == "fc":
        return f
    return c if c == f else None


def uniform_bits(row: dict):
    """The bits of every kind of layer the model has, if they agree (DC Fig. 8's x), else None."""
    kinds = ["conv", "fc"] if model_has_conv(row) else ["fc"]
    vals = {kind_bits(row, k) for k in kinds}
    if len(vals) != 1:
        return None
    v = vals.pop()
    return v if v else None


def pq_method(row: dict) -> str:
    """DC Fig. 7 line style: pruning + quantization (solid) or quantization only (dashed)."""
    return PQ if _cfg(row, "prune", "enabled") else Q_ONLY


def tradeoff_method(row: dict) -> str | None:
    """DC Fig. 6 curve of a row: SVD, pruning + quantization, pruning only, quantization only."""
    if _cfg(row, "lowrank", "enabled"):
        return SVD
    p, q = bool(_cfg(row, "prune", "enabled")), bool(_cfg(row, "quantize", "enabled"))
    if p and q:
        return PQ
    if p:
        return P_ONLY
    if q:
        return Q_ONLY
    return None


def tradeoff_rate(row: dict, method: str):
    """Compression rate (dense / compressed) of a DC Fig. 6 row: ratio.svd, .p_sparse or .pqh."""
    key = {SVD: "svd", P_ONLY: "p_sparse", Q_ONLY: "pqh", PQ: "pqh"}.get(method)
    v = _get(row, "ratio", key) if key else None
    return None if v is None else float(v)


def final_top1_err(row: dict):
    """Top-1 error of the final model: first present of compressed, quantized, lowrank, pruned."""
    for stage in FINAL_STAGES:
        v = _metric(row, stage)
        if v is not None:
            return v
    return None


def _nonzeros(layer: dict):
    if layer.get("nonzeros") is not None:
        return layer["nonzeros"]
    if layer.get("density") is None or layer.get("weights") is None:
        return None
    return round(layer["density"] * layer["weights"])


def fraction_pruned(row: dict):
    """1 - sum(nonzeros) / sum(weights) over ``layers`` (non-zeros, else round(density × weights))."""
    layers = row.get("layers") or []
    w = sum(l.get("weights") or 0 for l in layers)
    nzs = [_nonzeros(l) for l in layers]
    if not w or any(n is None for n in nzs):
        return None
    return 1.0 - sum(nzs) / w


def prune_curve(row: dict) -> str | None:
    """LWC Fig. 5 curve: without retraining / with retraining / iterative, with the regularizer."""
    if not _cfg(row, "prune", "enabled"):
        return None
    reg = str(_cfg(row, "prune", "regularization") or "l2").upper()
    if not _cfg(row, "prune", "epochs_per_round"):
        return f"{reg} regularization, without retraining"
    if (_cfg(row, "prune", "rounds") or 1) > 1:
        return f"iterative prune and retrain ({reg})"
    return f"{reg} regularization with retraining"


def codebook_centroids(layer: dict, key: str, pruned: bool) -> list[float] | None:
    """Centroids of ``layer[key]`` (codebook_init or codebook); a pruned layer's entry 0 (the reserved
    0.0 of pruned weights) is dropped when codebook_init[0] is 0.0."""
    cb = layer.get(key)
    if cb is None:
        return None
    cb = [float(c) for c in cb]
    init = layer.get("codebook_init") or []
    if pruned and init and float(init[0]) == 0.0:
        cb = cb[1:]
    return cb


def layer_pruned(layer: dict) -> bool:
    nz, w = _nonzeros(layer), layer.get("weights")
    return nz is not None and w is not None and nz < w


def pick_layers(row: dict, names: list[str]) -> list[str]:
    """Layers shown by the per-layer figures: all of ``names`` (model order) up to MAX_ALL_LAYERS,
    else the largest conv and the largest fc layer (by weights)."""
    info = {l.get("name"): l for l in row.get("layers") or []}
    order = [l.get("name") for l in row.get("layers") or [] if l.get("name") in names]
    order += [n for n in names if n not in order]
    if len(order) <= MAX_ALL_LAYERS:
        return order
    keep = []
    for kind in ("conv", "fc"):
        cands = [n for n in order if (info.get(n) or {}).get("kind") == kind]
        if cands:
            keep.append(max(cands, key=lambda n: (info[n].get("weights") or 0)))
    return [n for n in order if n in keep] or order[:MAX_ALL_LAYERS]


# ----------------------------------------------------------------------------------------------
# Points (sweeps -> plotted values): deduplicated, averaged over seeds
# ----------------------------------------------------------------------------------------------
def _aggregate(items: list[dict], keys: tuple[str, ...], vals: tuple[str, ...]) -> list[dict]:
    """Per key: the latest row per seed (a rerun replaces a run), then the mean over seeds."""
    latest = {}
    for it in items:
        k = tuple(it[f] for f in keys) + (it.get("seed"),)
        if k not in latest or str(it["run_id"]) > str(latest[k]["run_id"]):
            latest[k] = it
    groups: dict[tuple, list[dict]] = {}
    for k, it in latest.items():
        groups.setdefault(k[:-1], []).append(it)
    out = []
    for k in sorted(groups, key=lambda t: tuple((0, x) if isinstance(x, (int, float)) else (1, str(x)) for x in t)):
        its = groups[k]
        d = dict(zip(keys, k))
        d["n"] = len(its)
        d["run_ids"] = sorted(str(it["run_id"]) for it in its)
        for v in vals:
            xs = [it[v] for it in its if it.get(v) is not None]
            d[v] = float(np.mean(xs)) if xs else None
        out.append(d)
    return out


def dense_reference_err(rows: list[dict], experiment: str, dataset: str | None = None):
    """Top-1 error of the dense model an experiment's sweeps start from.

    A job started from ``pruned.pt`` (conf/start/pruned.yaml) evaluates the loaded, already pruned
    weights in its dense stage, so its own ``dense/top1_err`` is not the dense reference. The
    reference is the ``dense/top1_err`` of the jobs that load a checkpoint with pruning disabled
    (they start from ``dense.pt``), or else that of the latest trained experiment row.
    """
    if dataset is not None:
        rows = [r for r in rows if r.get("dataset") == dataset]
    errs = [_metric(r, "dense") for r in rows
            if r.get("experiment") == experiment and r.get("sweep") and _usable(r)
            and r.get("weights_source") == "checkpoint" and not _cfg(r, "prune", "enabled")
            and _metric(r, "dense") is not None]
    if errs:
        return float(np.median(errs))
    run = _latest_run_with(rows, experiment, lambda r: _metric(r, "dense") is not None)
    return None if run is None else _metric(run, "dense")


def _reference(rows: list[dict], experiment: str, reference_rows: list[dict] | None):
    """The dense reference from all rows of the sweep rows' dataset (``reference_rows``, else ``rows``)."""
    ds = {r.get("dataset") for r in rows}
    pool = rows if reference_rows is None else reference_rows
    return dense_reference_err(pool, experiment, ds.pop() if len(ds) == 1 else None)


def bits_points(rows: list[dict], experiment: str, note: Note = lambda s: None,
                reference_rows: list[dict] | None = None) -> list[dict]:
    """DC Fig. 7 points: group, method, bits, acc_init / acc_final (top-1 %, before / after fine-tuning)."""
    items, ref = [], _acc(_reference(rows, experiment, reference_rows))
    for r in sweep_rows(rows, experiment, "bits"):
        g = bits_group(r)
        if g is None:
            note(f"{experiment} bits sweep: row {r.get('run_id')} quantizes no layer; not plotted")
            continue
        x = bits_x(r, g)
        if x is None:
            note(f"{experiment} bits sweep: row {r.get('run_id')} has different conv and fc bits; "
                 "not plotted in 'all layers'")
            continue
        a0, a1 = _acc(_metric(r, "quantized_init")), _acc(_metric(r, "quantized"))
        if a0 is None and a1 is None:
            continue
        items.append({"group": g, "method": pq_method(r), "bits": x, "acc_init": a0, "acc_final": a1,
                      "dense_acc": ref if ref is not None else _acc(_metric(r, "dense")),
                      "pruned_acc": _acc(_metric(r, "pruned")),
                      "seed": r.get("seed"), "run_id": r.get("run_id")})
    return _aggregate(items, ("group", "method", "bits"), ("acc_init", "acc_final", "dense_acc", "pruned_acc"))


def init_points(rows: list[dict], experiment: str, note: Note = lambda s: None,
                reference_rows: list[dict] | None = None) -> list[dict]:
    """DC Fig. 8 points: init, bits, acc_init / acc_final."""
    items, ref = [], _acc(_reference(rows, experiment, reference_rows))
    for r in sweep_rows(rows, experiment, "init"):
        init, b = _cfg(r, "quantize", "init"), uniform_bits(r)
        if init is None or b is None:
            note(f"{experiment} init sweep: row {r.get('run_id')} has no quantize.init or unequal bits; not plotted")
            continue
        a0, a1 = _acc(_metric(r, "quantized_init")), _acc(_metric(r, "quantized"))
        if a0 is None and a1 is None:
            continue
        items.append({"init": str(init), "bits": b, "acc_init": a0, "acc_final": a1,
                      "dense_acc": ref if ref is not None else _acc(_metric(r, "dense")), "seed": r.get("seed"),
                      "run_id": r.get("run_id")})
    return _aggregate(items, ("init", "bits"), ("acc_init", "acc_final", "dense_acc"))


def tradeoff_points(rows: list[dict], experiment: str, note: Note = lambda s: None,
                    reference_rows: list[dict] | None = None) -> list[dict]:
    """DC Fig. 6 points: method, size_pct (100 / rate), loss (final − dense top-1 error, points)."""
    items, ref = [], _reference(rows, experiment, reference_rows)
    for r in sweep_rows(rows, experiment, "tradeoff"):
        m = tradeoff_method(r)
        rate = tradeoff_rate(r, m) if m else None
        fin, dense = final_top1_err(r), (ref if ref is not None else _metric(r, "dense"))
        if m is None or not rate or fin is None or dense is None:
            note(f"{experiment} tradeoff sweep: row {r.get('run_id')} lacks a method, its ratio or top-1 errors; "
                 "not plotted")
            continue
        items.append({"method": m, "size_pct": 100.0 / rate, "loss": fin - dense, "seed": r.get("seed"),
                      "run_id": r.get("run_id")})
    return _aggregate(items, ("method", "size_pct"), ("loss",))


def prune_points(rows: list[dict], experiment: str, note: Note = lambda s: None) -> list[dict]:
    """LWC Fig. 5 points: curve, pruned_pct (100 × fraction pruned), loss (pruned − dense top-1 error)."""
    items = []
    for r in sweep_rows(rows, experiment, "prune"):
        c, f = prune_curve(r), fraction_pruned(r)
        p, d = _metric(r, "pruned"), _metric(r, "dense")
        if c is None or f is None or p is None or d is None:
            note(f"{experiment} prune sweep: row {r.get('run_id')} lacks pruning, layer non-zeros or top-1 errors; "
                 "not plotted")
            continue
        items.append({"curve": c, "pruned_pct": 100.0 * f, "loss": p - d, "seed": r.get("seed"),
                      "run_id": r.get("run_id")})
    return _aggregate(items, ("curve", "pruned_pct"), ("loss",))


# ----------------------------------------------------------------------------------------------
# Checks the paper makes (printed by the notebook)
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# Drawing helpers
# ----------------------------------------------------------------------------------------------
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


def _finish(fig, key: str, what: str, row: dict, rows: list[dict], ours: str) -> None:
    """Title naming the model and dataset; a caption stating the paper's figure, then ours."""
    fig_id, paper_net, statement = PAPER[key]
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


def _latest_run_with(rows: list[dict], experiment: str, pred) -> dict | None:
    """The latest trained experiment row (storage-only rows have no training) satisfying ``pred``."""
    cands = [r for r in run_rows(rows, experiment) if not r.get("storage_only") and pred(r)]
    return cands[-1] if cands else None


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
    _finish(fig, stem, "top-1 accuracy vs bits per weight", srows[-1], srows, ours)
    return fig


def fig_init(rows: list[dict], experiment: str, note: Note = print):
    """DC Fig. 8: top-1 accuracy vs bits, one line per centroid initialization."""
    stem = "fig8_init"
    got = _sweep_input(rows, experiment, stem, "init", lambda sr: init_points(sr, experiment, note, reference_rows=rows),
                       "config.quantize.init, equal conv/fc bits and metrics 'quantized/top1_err' or "
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
    ours = ("One colour per config.quantize.init; solid: after centroid fine-tuning, dashed (light): after k-means, "
            "before fine-tuning; black: dense baseline." + _seed_note(pts))
    _finish(fig, stem, "top-1 accuracy vs bits per centroid initialization", srows[-1], srows, ours)
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
    _finish(fig, stem, "accuracy loss vs compressed model size", srows[-1], srows, ours)
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
    _finish(fig, stem, "accuracy loss vs parameters pruned", srows[-1], srows, ours)
    return fig


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
    init = _cfg(row, "quantize", "init")
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


FIGURES: list[tuple[str, Callable]] = [
    ("fig7_bits", fig_bits), ("fig8_init", fig_init), ("fig6_tradeoff", fig_tradeoff),
    ("lwc_fig5_prune", fig_prune), ("lwc_fig7_weights", fig_weights), ("fig4_codebook", fig_codebook),
    ("fig5_huffman", fig_huffman),
]


# ----------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------
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


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    ap = argparse.ArgumentParser(prog="python -m experiments.figures", description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default="results", help="folder holding runs/ and sweeps/ (default: results)")
    ap.add_argument("--out", default="results/figures", help="output folder (default: results/figures)")
    ap.add_argument("--experiment", nargs="+", default=None,
                    help="experiments to draw (default: every experiment with rows)")
    args = ap.parse_args(argv)
    if not Path(args.results).is_dir():
        print(f"figures: no such folder: {args.results}", file=sys.stderr)
        return 2
    for p in write_figures(args.results, args.out, args.experiment):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
