"""Paired statistics for error deltas: which test examples each model got right, compared example by example.

Every evaluated stage of a row stores its per-example correctness as a bitset (``row["correct"][stage]``,
``pack_correct``). Two models evaluated on the same test split are then compared *paired*:

* the error delta in points, ``err(b) - err(a)``;
* its 95% bootstrap confidence interval over test examples (``scipy.stats.bootstrap``, percentile
  method, resampling the examples jointly for both models);
* McNemar's exact test: under "the two models are equally good", of the ``n01 + n10`` examples on
  which they disagree each is equally likely to favour either, so the p-value is the two-sided
  binomial test of ``n10`` out of ``n01 + n10`` at 1/2 (``scipy.stats.binomtest``).

Over seeds, deltas are aggregated as the mean and the range (min to max).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np


def pack_correct(correct) -> dict:
    """{"n": examples, "bits": base64 of the packed booleans} (10,000 examples: 1,668 characters)."""
    c = np.asarray(correct, dtype=bool).ravel()
    return {"n": int(c.size), "bits": base64.b64encode(np.packbits(c).tobytes()).decode("ascii")}


def unpack_correct(entry: dict) -> np.ndarray:
    n = int(entry["n"])
    bits = np.unpackbits(np.frombuffer(base64.b64decode(entry["bits"]), np.uint8))
    if bits.size < n or bits[n:].any():
        raise ValueError(f"a correctness bitset of {bits.size} bits does not hold {n} examples")
    return bits[:n].astype(bool)


def correct_of(row: dict, stage: str) -> np.ndarray | None:
    """A row's per-example correctness at ``stage`` (``dense``, ``compressed``, ...), or None if not recorded."""
    entry = (row.get("correct") or {}).get(stage)
    return None if entry is None else unpack_correct(entry)


@dataclass(frozen=True)
class PairedDelta:
    """err(b) - err(a) in points, with its paired 95% bootstrap CI and McNemar's exact p-value."""

    delta: float
    ci_low: float
    ci_high: float
    p_mcnemar: float
    n: int
    a_only: int  # examples a got right and b wrong
    b_only: int  # examples b got right and a wrong

    def text(self, digits: int = 2) -> str:
        return (f"{self.delta:+.{digits}f} [{self.ci_low:+.{digits}f}, {self.ci_high:+.{digits}f}], "
                f"p {self.p_mcnemar:.2g}")


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts."""
    from scipy.stats import binomtest

    k = int(a_only) + int(b_only)
    return 1.0 if k == 0 else float(binomtest(int(b_only), k, 0.5).pvalue)


def paired_delta(a_correct, b_correct, n_resamples: int = 9999, seed: int = 0,
                 confidence: float = 0.95) -> PairedDelta:
    """Paired comparison of two models on the same examples (module docstring)."""
    from scipy.stats import bootstrap

    a = np.asarray(a_correct, dtype=bool).ravel()
    b = np.asarray(b_correct, dtype=bool).ravel()
    if a.size != b.size or a.size == 0:
        raise ValueError(f"paired comparison needs the same examples: {a.size} vs {b.size}")
    d = 100.0 * (a.astype(np.int8) - b.astype(np.int8))  # per example: err(b) - err(a), in points
    delta = float(d.mean())
    if np.all(d == d[0]):  # no spread: every resample gives the same delta
        lo = hi = delta
    else:
        res = bootstrap((d,), np.mean, n_resamples=n_resamples, confidence_level=confidence, method="percentile",
                        vectorized=True, batch=500, rng=np.random.default_rng(seed))
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    a_only, b_only = int((a & ~b).sum()), int((b & ~a).sum())
    return PairedDelta(delta, lo, hi, mcnemar_exact(a_only, b_only), int(a.size), a_only, b_only)


def stage_delta(row: dict, stage: str = "compressed", base: str = "dense") -> PairedDelta | None:
    """``stage`` minus ``base`` error of one row, paired over its test examples; None without the bitsets."""
    a, b = correct_of(row, base), correct_of(row, stage)
    return None if a is None or b is None else paired_delta(a, b)


def across_seeds(values) -> dict:
    """Mean and range (min to max) of a quantity over seeds."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        return {"n": 0, "mean": None, "min": None, "max": None}
    return {"n": int(v.size), "mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}
