"""Sweep rows -> the values the figures plot: deduplicated (a rerun replaces a run) and averaged over seeds."""

from __future__ import annotations

from typing import Callable

import numpy as np

from experiments.analysis.readings import (_acc, _cfg, _metric, bits_group, bits_x, centroid_init, final_top1_err,
                                           fraction_pruned, pq_method, prune_curve, sweep_setting, tradeoff_method,
                                           tradeoff_rate, uniform_bits)
from experiments.analysis.rows import is_smoke

Note = Callable[[str], None]


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



def drawn_rows(rows: list[dict], points: list[dict]) -> list[dict]:
    """The rows behind ``points`` (their ``run_ids``): a sweep's rows less those a rerun superseded."""
    ids = {i for p in points for i in p.get("run_ids", ())}
    return [r for r in rows if str(r.get("run_id")) in ids]


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
        init, b = centroid_init(r), uniform_bits(r)
        if init is None or b is None:
            note(f"{experiment} init sweep: row {r.get('run_id')} has no k-means init or unequal bits; not plotted")
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
        # keyed by the job's setting (a rerun replaces a run); by the measured rate if the config lacks it
        items.append({"method": m, "setting": sweep_setting(r) or f"measured {rate}", "size_pct": 100.0 / rate,
                      "loss": fin - dense, "seed": r.get("seed"), "run_id": r.get("run_id")})
    return _aggregate(items, ("method", "setting"), ("size_pct", "loss"))


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
        items.append({"curve": c, "setting": sweep_setting(r) or f"measured {f}", "pruned_pct": 100.0 * f,
                      "loss": p - d, "seed": r.get("seed"), "run_id": r.get("run_id")})
    return _aggregate(items, ("curve", "setting"), ("pruned_pct", "loss"))


def _latest_run_with(rows: list[dict], experiment: str, pred) -> dict | None:
    """The latest trained experiment row (storage-only rows have no training) satisfying ``pred``:
    of the experiment file's own recipe (``_variant`` "") when there is one, else of any variant."""
    cands = [r for r in run_rows(rows, experiment) if not r.get("storage_only") and pred(r)]
    recipe = [r for r in cands if r.get("_variant", "") == ""]
    return (recipe or cands)[-1] if cands else None
