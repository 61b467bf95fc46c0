"""The rate–error frontier of the LeNets: compressed file size against the error the compression costs.

* ``method_of``: a row's method, read from its config (quantizer, distillation, allocated densities, coder);
* ``frontier_points``: one point per recipe (config without the seed, paths and dense checkpoint): the file's
  bytes and compression ratio over seeds, and compressed − dense error paired per seed over the test
  examples (``stats.stage_delta``: bootstrap 95% CI, McNemar's p), with the band from the lowest seed's CI
  low to the highest seed's CI high;
* ``best_ratio``: per method and threshold, the highest mean ratio among the points within the threshold on
  every seed (and on enough seeds), else the point closest to qualifying. The choice is made on the
  validation split (each row's ``<stage>/val_top1_err``); the test deltas of the chosen point are then
  reported, never used to choose. Rows from before the validation errors were recorded cannot be chosen.

Only full-pipeline rows on Fashion-MNIST with a file and the per-example correctness of the dense and the
compressed model count; the ratio is our dense fp32 bytes over the file's bytes on disk (``size.dense_bytes /
size.file_bytes``), so it is measured on the file whose decoded model gave the compressed error.
"""

from __future__ import annotations

import functools
from typing import Callable

from experiments.analysis.readings import _cfg, _get, _metric
from experiments.analysis.rows import is_smoke, layers_of
from experiments.analysis.stats import PairedDelta, across_seeds, paired_delta, unpack_correct
from experiments.canonical import recipe_key

Note = Callable[[str], None]

EXPERIMENTS = ("lenet300", "lenet5")
DATASET = "fashion_mnist"
FRONTIER_SWEEP = "frontier"  # conf/sweep/frontier.yaml; experiment runs (no sweep) count too
THRESHOLDS = (0.2, 0.5, 1.0)  # compressed − dense, points, on every seed
MIN_SEEDS = 3
# the targets: at least this ratio with compressed − dense <= TARGET_DELTA points on every seed
TARGETS = {"lenet300": 64.0, "lenet5": 100.0}
TARGET_DELTA = 0.5
EPS = 1e-9  # a delta equal to a threshold (in float) is within it


def method_of(row: dict) -> str:
    """A readable label of the row's method, from its config only.

    The quantizer (``quantize.quantizer._target_``'s class): KMeans (or no key: rows from before quantizers were
    plug-ins) -> "k-means (DC)", HessianKMeans -> "Hessian k-means", ECSQ -> "ECSQ", SoftWeightSharing ->
    "soft weight-sharing", any other class -> its name, ``quantize.enabled`` false -> "unquantized"; then
    " + OBD pruning" / " + OBS pruning" when the pruning criterion (``prune.criterion._target_``; no key =
    magnitude) is not magnitude, " + distillation" when ``prune.distill`` or ``quantize.distill`` is above 0, " + allocated densities" when
    ``prune.allocation`` is set, and the entropy coder when it is not Huffman (``encode.coder._target_``; no
    key = Huffman): " + rANS" for RANS, else " + <class>".
    """
    quantizer = str(_cfg(row, "quantize", "quantizer", "_target_") or "KMeans").rsplit(".", 1)[-1]
    label = {"KMeans": "k-means (DC)", "HessianKMeans": "Hessian k-means", "ECSQ": "ECSQ",
             "SoftWeightSharing": "soft weight-sharing"}.get(quantizer, quantizer)
    if _cfg(row, "quantize", "enabled") is False:
        label = "unquantized"
    criterion = str(_cfg(row, "prune", "criterion", "_target_") or "Magnitude").rsplit(".", 1)[-1]
    if _cfg(row, "prune", "enabled") is not False and criterion != "Magnitude":
        label += f" + {criterion} pruning"
    if (_cfg(row, "prune", "distill") or 0) > 0 or (_cfg(row, "quantize", "distill") or 0) > 0:
        label += " + distillation"
    if _cfg(row, "prune", "allocation") is not None:
        label += " + allocated densities"
    coder = str(_cfg(row, "encode", "coder", "_target_") or "Huffman").rsplit(".", 1)[-1]
    if coder.upper().endswith("RANS"):
        label += " + rANS"
    elif coder != "Huffman":
        label += f" + {coder}"
    return label


def method_order(method: str) -> tuple:
    """The paper's method first, then the others alphabetically."""
    return (method != "k-means (DC)", method)


def _full_row(row: dict, experiment: str) -> bool:
    """A full-pipeline row of ``experiment`` on Fashion-MNIST with both errors and a file (not storage-only): an
    experiment run or a ``frontier`` sweep job. The paper's figure sweeps (bits, tradeoff, ...) vary one knob,
    some from already-pruned weights, whose dense stage then evaluates the pruned model, not the dense one."""
    return (row.get("experiment") == experiment and row.get("sweep") in (None, "", FRONTIER_SWEEP)
            and row.get("dataset") == DATASET and not row.get("storage_only")
            and not is_smoke(row) and _metric(row, "dense") is not None and _metric(row, "compressed") is not None
            and bool(_get(row, "size", "file_bytes")) and bool(_get(row, "size", "dense_bytes")))


def _has_bitsets(row: dict) -> bool:
    correct = row.get("correct") or {}
    return correct.get("dense") is not None and correct.get("compressed") is not None


@functools.lru_cache(maxsize=4096)
def _paired(dense_n: int, dense_bits: str, comp_n: int, comp_bits: str) -> PairedDelta:
    """``stats.paired_delta`` of two packed bitsets (cached: the bootstrap takes seconds at 10,000 examples)."""
    return paired_delta(unpack_correct({"n": dense_n, "bits": dense_bits}),
                        unpack_correct({"n": comp_n, "bits": comp_bits}))


def row_delta(row: dict) -> PairedDelta:
    """Compressed − dense error of one row in points, paired over its test examples (``stats.stage_delta``)."""
    d, c = row["correct"]["dense"], row["correct"]["compressed"]
    return _paired(int(d["n"]), d["bits"], int(c["n"]), c["bits"])


def _val_delta(row: dict) -> float | None:
    """Compressed − dense error on the validation split, in points (None in rows without validation errors)."""
    m = row.get("metrics") or {}
    a, b = m.get("dense/val_top1_err"), m.get("compressed/val_top1_err")
    return None if a is None or b is None else float(b) - float(a)


def _ratio(row: dict) -> float:
    return float(_get(row, "size", "dense_bytes")) / float(_get(row, "size", "file_bytes"))


def _point(method: str, recipe: str, rs: list[dict]) -> dict:
    per_seed = []
    for r in sorted(rs, key=lambda r: str(r.get("seed")).zfill(20)):
        d = row_delta(r)
        per_seed.append({"seed": r.get("seed"), "run_id": str(r.get("run_id")),
                         "file_bytes": _get(r, "size", "file_bytes"), "ratio": _ratio(r), "delta": d.delta,
                         "ci_low": d.ci_low, "ci_high": d.ci_high, "p_mcnemar": d.p_mcnemar,
                         "val_delta": _val_delta(r)})
    size = across_seeds([s["file_bytes"] for s in per_seed])
    ratio = across_seeds([s["ratio"] for s in per_seed])
    delta = across_seeds([s["delta"] for s in per_seed])
    return {"method": method, "recipe": recipe, "seeds": [s["seed"] for s in per_seed],
            "run_ids": [s["run_id"] for s in per_seed],
            "file_bytes": size["mean"], "file_bytes_min": size["min"], "file_bytes_max": size["max"],
            "ratio": ratio["mean"], "ratio_min": ratio["min"], "ratio_max": ratio["max"],
            "dense_bytes": across_seeds([_get(r, "size", "dense_bytes") for r in rs])["mean"],
            "delta": delta["mean"], "delta_min": delta["min"], "delta_max": delta["max"],
            "band_low": min(s["ci_low"] for s in per_seed), "band_high": max(s["ci_high"] for s in per_seed),
            "worst_delta": delta["max"],
            "worst_val_delta": None if any(s["val_delta"] is None for s in per_seed)
            else max(s["val_delta"] for s in per_seed), "p_values": [s["p_mcnemar"] for s in per_seed], "per_seed": per_seed}


def frontier_points(rows: list[dict], experiment: str, note: Note = lambda s: None) -> list[dict]:
    """One point per (method, recipe) of ``experiment``: the latest row per seed, file bytes and ratio
    (mean, min, max over seeds), compressed − dense paired per seed (mean, min, max; band = lowest CI low to
    highest CI high; worst = the largest delta; McNemar's p per seed). Sorted by method, then file bytes.
    Rows without the correctness bitsets of both stages are left out, and ``note`` says how many."""
    full = [r for r in rows if _full_row(r, experiment)]
    usable = [r for r in full if _has_bitsets(r)]
    if len(usable) < len(full):
        note(f"{experiment} frontier: {len(full) - len(usable)} of {len(full)} full-pipeline rows on {DATASET} have no "
             "per-example correctness of the dense and the compressed model (row['correct']); not used")
    latest: dict[tuple, dict] = {}
    for r in sorted(usable, key=lambda r: str(r.get("run_id"))):
        key = (method_of(r), recipe_key(r.get("config") or {}, layers_of(r)))
        latest[key + (r.get("seed"),)] = r  # a rerun of a seed replaces it
    groups: dict[tuple, list[dict]] = {}
    for (method, recipe, _), r in latest.items():
        groups.setdefault((method, recipe), []).append(r)
    points = [_point(m, k, rs) for (m, k), rs in groups.items()]
    return sorted(points, key=lambda p: (method_order(p["method"]), p["file_bytes"]))


def methods_in(points: list[dict]) -> list[str]:
    return sorted({p["method"] for p in points}, key=method_order)


def worst(point: dict, on: str = "val") -> float | None:
    """The worst seed's compressed − dense: on the validation split (``on="val"``, what is chosen on; None
    without validation errors) or the test split (``on="test"``, what is reported)."""
    return point["worst_val_delta"] if on == "val" else point["worst_delta"]


def qualifies(point: dict, threshold: float, min_seeds: int = MIN_SEEDS, on: str = "val") -> bool:
    """Within ``threshold`` points of the dense model on every seed (split ``on``), on at least ``min_seeds`` seeds."""
    w = worst(point, on)
    return len(point["seeds"]) >= min_seeds and w is not None and w <= threshold + EPS


def closest(points: list[dict], threshold: float, min_seeds: int = MIN_SEEDS, on: str = "val") -> dict | None:
    """The point nearest to qualifying: least excess of the worst seed over ``threshold`` (points, split ``on``),
    then fewest seeds missing, then the highest ratio; with ``over`` (points, 0 if within) and ``missing_seeds``.
    None when no point has that split's errors."""
    points = [p for p in points if worst(p, on) is not None]
    if not points:
        return None

    def gap(p):
        return max(0.0, worst(p, on) - threshold), max(0, min_seeds - len(p["seeds"]))

    p = min(points, key=lambda p: (*gap(p), -p["ratio"]))
    over, missing = gap(p)
    return {"point": p, "over": over, "missing_seeds": missing}


def best_ratio(points: list[dict], thresholds=THRESHOLDS, min_seeds: int = MIN_SEEDS,
               on: str = "val") -> dict[str, dict[float, dict]]:
    """Per method and threshold: ``ratio`` and ``point``, the highest mean ratio among the points that qualify
    (``qualifies`` on split ``on``: validation by default), both None where none does, and then ``closest``
    (``closest``) says by how much it missed (None when no point has that split's errors). Report the chosen
    point's test deltas (``worst(point, "test")``)."""
    out: dict[str, dict[float, dict]] = {}
    for m in methods_in(points):
        mine = [p for p in points if p["method"] == m]
        out[m] = {}
        for t in thresholds:
            ok = [p for p in mine if qualifies(p, t, min_seeds, on)]
            best = max(ok, key=lambda p: p["ratio"]) if ok else None
            out[m][t] = {"ratio": best["ratio"] if best else None, "point": best,
                         "closest": None if best else closest(mine, t, min_seeds, on)}
    return out
