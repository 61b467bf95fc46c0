import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compression.sparse_format import decode_relative, encode_relative


def _labels(n, positions, values=None):
    a = np.zeros(n, np.int64)
    a[list(positions)] = values if values is not None else np.arange(1, len(positions) + 1)
    return a


def test_hand_example_3bit_gaps():
    # b = 3 -> span 8, stored gap in 0..7 (real distance 1..8).
    # non-zeros at 7, 16, 33, 49 (labels 1,2,3,4); distances from the previous (start -1):
    #   7-(-1)=8  -> fits (stored 7), 0 fillers
    #   16-7=9    -> (9-1)//8 = 1 filler at 15 (stored 7), then 16-15=1 (stored 0)
    #   33-16=17  -> (17-1)//8 = 2 fillers at 24, 32 (stored 7, 7), then 33-32=1 (stored 0)
    #   49-33=16  -> (16-1)//8 = 1 filler at 41 (stored 7), then 49-41=8 (stored 7)
    lab = _labels(60, [7, 16, 33, 49])
    sym, gap = encode_relative(lab, 3)
    assert sym.tolist() == [1, 0, 2, 0, 0, 3, 0, 4]
    assert gap.tolist() == [7, 7, 0, 7, 7, 0, 7, 7]
    assert len(sym) - np.count_nonzero(sym) == 4  # fillers
    assert np.array_equal(decode_relative(sym, gap, 60, 3), lab)


def test_paper_figure2_style():
    # DC Fig. 2 (3-bit gaps): a gap of 8 fits exactly, a gap of 9 needs one filler.
    sym, gap = encode_relative(_labels(20, [0, 8]), 3)  # distances 1, 8
    assert gap.tolist() == [0, 7] and sym.tolist() == [1, 2]
    sym, gap = encode_relative(_labels(20, [0, 9]), 3)  # distances 1, 9 -> filler at 8
    assert gap.tolist() == [0, 7, 0] and sym.tolist() == [1, 0, 2]


@pytest.mark.parametrize("b", [1, 3, 4, 5])
def test_boundary_gaps(b):
    s = 1 << b
    n = 10 * s + 5
    for dist in [1, s - 1, s, s + 1, 2 * s, 2 * s + 1, 5 * s + 3]:
        lab = _labels(n, [dist - 1])  # first non-zero at distance `dist` from position -1
        sym, gap = encode_relative(lab, b)
        assert len(sym) - 1 == (dist - 1) // s  # fillers
        assert np.array_equal(decode_relative(sym, gap, n, b), lab)


def test_empty_and_full_and_edges():
    sym, gap = encode_relative(np.zeros(100, np.int64), 4)
    assert sym.size == 0 and gap.size == 0
    assert np.array_equal(decode_relative(sym, gap, 100, 4), np.zeros(100))
    full = np.arange(1, 101) % 7 + 1  # 100% density: every gap stored as 0, no fillers
    sym, gap = encode_relative(full, 4)
    assert sym.tolist() == full.tolist() and not gap.any()
    assert np.array_equal(decode_relative(sym, gap, 100, 4), full)
    first_last = _labels(1000, [0, 999], [3, 5])  # first and last element non-zero
    sym, gap = encode_relative(first_last, 4)
    assert sym[0] == 3 and gap[0] == 0 and sym[-1] == 5
    assert np.array_equal(decode_relative(sym, gap, 1000, 4), first_last)
    # zero-size layer
    sym, gap = encode_relative(np.zeros(0, np.int64), 4)
    assert decode_relative(sym, gap, 0, 4).size == 0


def test_row_major_and_dtypes():
    lab = np.zeros((3, 4), np.int64)
    lab[1, 2] = 5  # flat position 1*4+2 = 6 -> stored gap 6
    sym, gap = encode_relative(lab, 3)
    assert sym.tolist() == [5] and gap.tolist() == [6]
    assert sym.dtype == np.uint8 and gap.dtype == np.uint8
    sym, gap = encode_relative(_labels(10, [2], [300]), 10)
    assert sym.dtype == np.uint16 and gap.dtype == np.uint16


def test_decode_rejects_inconsistent():
    with pytest.raises(ValueError):
        decode_relative(np.array([1, 2]), np.array([3]), 10, 3)  # length mismatch
    with pytest.raises(ValueError):
        decode_relative(np.array([1]), np.array([8]), 10, 3)  # gap 8 does not fit in 3 bits
    with pytest.raises(ValueError):
        decode_relative(np.array([1, 1]), np.array([7, 7]), 15, 3)  # positions 7, 15 >= n
    with pytest.raises(ValueError):
        encode_relative(np.array([0, -1]), 3)


def test_large_random_vectorized():
    rng = np.random.default_rng(0)
    n = 2_000_000
    lab = np.where(rng.random(n) < 0.05, rng.integers(1, 32, n), 0)
    sym, gap = encode_relative(lab, 4)
    nz = np.count_nonzero(lab)
    pos = np.flatnonzero(lab)
    d = np.diff(pos, prepend=-1)
    assert len(sym) - nz == int(((d - 1) // 16).sum())
    assert np.array_equal(decode_relative(sym, gap, n, 4), lab)


@settings(max_examples=150, deadline=None)
@given(
    b=st.integers(1, 6),
    runs=st.lists(st.tuples(st.integers(0, 200), st.integers(1, 9)), max_size=30),
    tail=st.integers(0, 100),
)
def test_roundtrip_property(b, runs, tail):
    # a layer built from (zeros before, label) runs, so long gaps are common
    parts = []
    for z, v in runs:
        parts += [0] * z + [v]
    lab = np.array(parts + [0] * tail, np.int64)
    sym, gap = encode_relative(lab, b)
    assert len(sym) == len(gap)
    assert int(gap.max(initial=0)) < (1 << b)
    assert np.count_nonzero(sym) == np.count_nonzero(lab)
    # fillers are symbol 0 with the largest stored gap
    assert np.all(gap[sym == 0] == (1 << b) - 1)
    assert np.array_equal(decode_relative(sym, gap, lab.size, b), lab)
