"""Paired statistics against hand-computed cases: McNemar's exact p, the bootstrap CI, the bitsets rows keep."""

import math

import numpy as np
import pytest

from experiments.analysis.stats import (across_seeds, correct_of, mcnemar_exact, pack_correct, paired_delta,
                                        stage_delta, unpack_correct)


def test_mcnemar_exact_by_hand():
    # 8 of 10 discordant examples favour b: two-sided binomial p = 2 * (C(10,8) + C(10,9) + C(10,10)) / 2^10
    assert mcnemar_exact(2, 8) == pytest.approx(2 * (45 + 10 + 1) / 1024)
    assert mcnemar_exact(5, 5) == pytest.approx(1.0)
    assert mcnemar_exact(0, 0) == 1.0  # no discordant example: no evidence either way
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)  # all six one way: 2 * 0.5^6


def test_paired_delta_by_hand():
    # 10 examples: a right on 0-8, b right on 0-6 and 9 -> a_only = {7, 8}, b_only = {9}
    a = np.array([1] * 9 + [0], bool)
    b = np.array([1] * 7 + [0, 0, 1], bool)
    r = paired_delta(a, b, n_resamples=2000)
    assert r.delta == pytest.approx(10.0)  # err(b) 20% - err(a) 10% = +10 points
    assert (r.a_only, r.b_only, r.n) == (2, 1, 10)
    assert r.p_mcnemar == pytest.approx(1.0)  # 1 of 3 discordant: two-sided p = 1
    assert r.ci_low <= r.delta <= r.ci_high and r.ci_low < 0 < r.ci_high
    same = paired_delta(a, a)
    assert (same.delta, same.ci_low, same.ci_high, same.p_mcnemar) == (0.0, 0.0, 0.0, 1.0)
    with pytest.raises(ValueError):
        paired_delta(a, b[:5])


def test_bootstrap_ci_agrees_with_the_normal_approximation_on_many_examples():
    rng = np.random.default_rng(1)
    a = rng.random(20000) < 0.9
    b = a.copy()
    flip = rng.choice(a.size, 600, replace=False)
    b[flip] = ~b[flip]
    r = paired_delta(a, b, seed=3)
    d = 100.0 * (a.astype(float) - b.astype(float))
    half = 1.96 * d.std() / math.sqrt(d.size)
    assert r.delta == pytest.approx(d.mean())
    assert r.ci_low == pytest.approx(r.delta - half, abs=0.05) and r.ci_high == pytest.approx(r.delta + half, abs=0.05)


@pytest.mark.parametrize("n", [1, 7, 8, 10000])
def test_bitsets_round_trip(n):
    c = np.random.default_rng(n).random(n) < 0.5
    e = pack_correct(c)
    assert e["n"] == n and np.array_equal(unpack_correct(e), c)
    assert np.array_equal(correct_of({"correct": {"dense": e}}, "dense"), c)
    assert correct_of({"correct": {}}, "dense") is None and correct_of({}, "dense") is None


def test_damaged_bitset_is_refused():
    e = pack_correct(np.ones(8, bool))
    with pytest.raises(ValueError):
        unpack_correct({**e, "n": 9})


def test_stage_delta_and_seed_aggregates():
    a = np.array([1, 1, 1, 0], bool)
    b = np.array([1, 1, 0, 0], bool)
    row = {"correct": {"dense": pack_correct(a), "compressed": pack_correct(b)}}
    assert stage_delta(row).delta == pytest.approx(25.0)
    assert stage_delta({"correct": {"dense": pack_correct(a)}}) is None
    assert across_seeds([0.2, None, 0.5, -0.1]) == {"n": 3, "mean": pytest.approx(0.2), "min": -0.1, "max": 0.5}
