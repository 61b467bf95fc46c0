"""Magnitude, OBD and OBS side by side, from the rows of the criteria sweep and the full-pipeline runs.

* ``sweep_points``: per criterion, schedule (without retraining / with retraining / iterative) and
  density, the pruned error over seeds (mean, min, max) and its loss against each seed's dense model;
* ``versus_magnitude``: per density and schedule, OBD's and OBS's error minus magnitude's on the same
  seed and dense weights, paired over the test examples (bootstrap CI, McNemar's p), and over seeds;
* ``pipeline_rows``: the full-pipeline rows (prune -> quantize -> encode from each seed's dense
  model) grouped by criterion, for the criteria table.
"""

from __future__ import annotations

from experiments.analysis.points import drawn_rows
from experiments.analysis.readings import _cfg, _metric, fraction_pruned
from experiments.analysis.stats import across_seeds, correct_of, paired_delta

ORDER = ("Magnitude", "OBD", "OBS")
SCHEDULES = ("without retraining", "with retraining", "iterative")


def criterion(row: dict) -> str:
    """The criterion's class name (rows from before criteria were plug-ins pruned by magnitude)."""
    target = _cfg(row, "prune", "criterion", "_target_") or "compression.criteria.magnitude.Magnitude"
    return str(target).rsplit(".", 1)[-1]


def schedule(row: dict) -> str:
    if not _cfg(row, "prune", "epochs_per_round"):
        return "without retraining"
    return "iterative" if (_cfg(row, "prune", "rounds") or 1) > 1 else "with retraining"


def _latest_per(rows: list[dict], key) -> dict:
    out = {}
    for r in sorted(rows, key=lambda r: str(r.get("run_id"))):
        out[key(r)] = r  # a rerun replaces a run
    return out


def sweep_points(rows: list[dict], experiment: str) -> list[dict]:
    """One point per (criterion, schedule, density): error and loss over seeds (mean, min, max)."""
    usable = [r for r in rows if r.get("experiment") == experiment and r.get("sweep") == "criteria"
              and _metric(r, "pruned") is not None and _metric(r, "dense") is not None]
    latest = _latest_per(usable, lambda r: (criterion(r), schedule(r), _cfg(r, "prune", "uniform_density"),
                                            r.get("seed")))
    groups: dict[tuple, list[dict]] = {}
    for (c, s, d, _), r in latest.items():
        groups.setdefault((c, s, d), []).append(r)
    out = []
    for (c, s, d), rs in sorted(groups.items(), key=lambda kv: (ORDER.index(kv[0][0]) if kv[0][0] in ORDER else 9,
                                                                 SCHEDULES.index(kv[0][1]), -kv[0][2])):
        err = across_seeds([_metric(r, "pruned") for r in rs])
        loss = across_seeds([_metric(r, "pruned") - _metric(r, "dense") for r in rs])
        pruned = across_seeds([fraction_pruned(r) for r in rs])
        out.append({"criterion": c, "schedule": s, "density": d, "pruned_pct": 100 * pruned["mean"],
                    "seeds": sorted(r.get("seed") for r in rs), "err": err["mean"], "err_min": err["min"],
                    "err_max": err["max"], "loss": loss["mean"], "loss_min": loss["min"], "loss_max": loss["max"],
                    "criterion_s": across_seeds([r.get("time_s", {}).get("prune_criterion") for r in rs])["mean"],
                    "run_ids": sorted(str(r.get("run_id")) for r in rs)})
    return out


def retraining_lr_scales(rows: list[dict], points: list[dict]) -> dict[str, list[float]]:
    """The retraining ``prune.lr_scale`` values of the rows behind ``points`` (their ``run_ids``), per schedule
    with retraining: a figure whose curves were run at different learning rates says so."""
    out: dict[str, set] = {}
    for r in drawn_rows(rows, [p for p in points if p["schedule"] != "without retraining"]):
        out.setdefault(schedule(r), set()).add(_cfg(r, "prune", "lr_scale"))
    return {s: sorted(v, key=str) for s, v in sorted(out.items())}


def versus_magnitude(rows: list[dict], experiment: str, stage: str = "pruned") -> list[dict]:
    """OBD's and OBS's ``stage`` error minus magnitude's, same seed, density and schedule, paired per seed."""
    usable = [r for r in rows if r.get("experiment") == experiment and r.get("sweep") == "criteria"
              and correct_of(r, stage) is not None]
    latest = _latest_per(usable, lambda r: (criterion(r), schedule(r), _cfg(r, "prune", "uniform_density"),
                                            r.get("seed")))
    out = []
    for (c, s, d, seed), r in sorted(latest.items(), key=lambda kv: (str(kv[0][1]), -kv[0][2], kv[0][0], kv[0][3])):
        base = latest.get(("Magnitude", s, d, seed))
        if c == "Magnitude" or base is None:
            continue
        p = paired_delta(correct_of(base, stage), correct_of(r, stage))
        out.append({"criterion": c, "schedule": s, "density": d, "seed": seed, "delta": p.delta,
                    "ci_low": p.ci_low, "ci_high": p.ci_high, "p_mcnemar": p.p_mcnemar})
    return out


def pipeline_rows(rows: list[dict], experiment: str) -> dict[str, list[dict]]:
    """The full-pipeline rows started from each seed's dense model (``dense.epochs=0`` and a checkpoint),
    by criterion, latest row per seed: the rows the criteria table compares."""
    usable = [r for r in rows if r.get("experiment") == experiment and not r.get("sweep")
              and _cfg(r, "dense", "epochs") == 0 and _cfg(r, "model", "checkpoint")
              and _metric(r, "compressed") is not None and not r.get("git_dirty")]
    latest = _latest_per(usable, lambda r: (criterion(r), r.get("seed")))
    out: dict[str, list[dict]] = {}
    for (c, _), r in sorted(latest.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        out.setdefault(c, []).append(r)
    return {c: out[c] for c in sorted(out, key=lambda c: ORDER.index(c) if c in ORDER else 9)}
