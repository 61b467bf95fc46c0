"""Relative-index sparse storage of one layer (DC section 2, Fig. 2).

The layer's weight tensor is flattened row-major (torch's default order) and scanned once.
``labels`` holds, per position, the codebook index of the weight: 0 where it was pruned (index
0 of a sparse layer's codebook is reserved for the value 0.0), 1..K-1 for a survivor.

Each stored *entry* carries a codebook index (``symbols[i]``) and the distance to the previous
entry, stored as ``gaps[i] = (position_i - position_{i-1}) - 1`` with ``position_{-1} = -1``
(as the authors' released AlexNet decoder: gap-1 in ``b``-bit fields, positions rebuilt as
``cumsum(gap + 1) - 1``). A stored gap lies in ``[0, 2**b - 1]``, i.e. a real distance of
``1..2**b``. When the distance to the next non-zero exceeds ``2**b``, *filler* entries (symbol 0,
stored gap ``2**b - 1``, i.e. they sit exactly ``2**b`` positions after the previous entry) are
inserted until the rest fits: a distance ``d`` costs ``(d - 1) // 2**b`` fillers. Fillers are
real entries (a weight index and a gap each). Zeros after the last non-zero are not stored;
the decoder knows the layer size ``n``.

Worked example (b = 3, span 8): non-zeros at positions 7, 16, 33, 49 ->
distances 8, 9, 17, 16 -> entries (pos, stored gap): (7,7) (15,7)F (16,0) (24,7)F (32,7)F (33,0)
(41,7)F (49,7): 8 entries, 4 fillers.

Both functions are vectorized numpy (no Python loop over entries).
"""

from __future__ import annotations

import numpy as np

__all__ = ["encode_relative", "decode_relative", "uint_dtype"]


def uint_dtype(max_value: int) -> np.dtype:
    """Smallest unsigned numpy dtype that holds ``max_value``."""
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if max_value <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise ValueError(f"value {max_value} does not fit in 64 bits")


def _check_bits(index_bits: int) -> int:
    if isinstance(index_bits, bool) or not isinstance(index_bits, (int, np.integer)):
        raise TypeError(f"index_bits must be an int, got {type(index_bits).__name__}")
    if not 1 <= int(index_bits) <= 32:
        raise ValueError(f"index_bits must be in 1..32, got {index_bits}")
    return int(index_bits)


def _as_int_array(a, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.size and a.dtype.kind not in "iub":
        raise TypeError(f"{what} must be integers, got dtype {a.dtype}")
    return a.reshape(-1)


def encode_relative(labels: np.ndarray, index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Relative-index encoding of one layer's labels (flattened row-major).

    Returns ``(symbols, gaps)``, both 1-D with one element per stored entry (non-zeros plus
    fillers). ``symbols[i]`` is the codebook index of entry i (0 for a filler), ``gaps[i]`` the
    stored gap ``(position_i - position_{i-1}) - 1`` in ``[0, 2**index_bits - 1]``. When the
    distance to the next non-zero exceeds ``2**index_bits``, filler entries (symbol 0, gap
    ``2**index_bits - 1``) are inserted every ``2**index_bits`` positions. An all-zero layer has
    zero entries. Dtypes are the smallest unsigned type that fits (symbols: the largest label;
    gaps: ``2**index_bits - 1``).
    """
    b = _check_bits(index_bits)
    span = 1 << b
    flat = _as_int_array(labels, "labels")
    if flat.size and int(flat.min()) < 0:
        raise ValueError("labels must be non-negative")
    sym_dtype = uint_dtype(int(flat.max()) if flat.size else 0)
    gap_dtype = uint_dtype(span - 1)
    pos = np.flatnonzero(flat)
    if pos.size == 0:
        return np.zeros(0, sym_dtype), np.zeros(0, gap_dtype)
    dist = np.diff(pos, prepend=-1)  # >= 1; the first one is measured from position -1
    fill = (dist - 1) // span  # fillers needed before each non-zero
    where = np.cumsum(fill + 1) - 1  # entry index of each non-zero
    n_entries = int(where[-1]) + 1
    symbols = np.zeros(n_entries, sym_dtype)
    symbols[where] = flat[pos]
    gaps = np.full(n_entries, span - 1, gap_dtype)
    gaps[where] = dist - 1 - fill * span
    return symbols, gaps


def decode_relative(symbols: np.ndarray, gaps: np.ndarray, n: int, index_bits: int) -> np.ndarray:
    """Inverse of :func:`encode_relative`: labels (length ``n``, dtype of ``symbols``).

    Raises ``ValueError`` when the entries are inconsistent (different lengths, a gap that does
    not fit in ``index_bits``, or entries that run past position ``n - 1``).
    """
    b = _check_bits(index_bits)
    span = 1 << b
    sym = _as_int_array(symbols, "symbols")
    gap = _as_int_array(gaps, "gaps")
    n = int(n)
    if n < 0:
        raise ValueError(f"layer size must be >= 0, got {n}")
    if sym.size != gap.size:
        raise ValueError(f"{sym.size} symbols but {gap.size} gaps")
    out_dtype = sym.dtype if sym.size else np.dtype(np.uint8)
    out = np.zeros(n, out_dtype)
    if sym.size == 0:
        return out
    if int(gap.min()) < 0 or int(gap.max()) >= span:
        raise ValueError(f"a stored gap does not fit in {b} bits")
    if int(sym.min()) < 0:
        raise ValueError("symbols must be non-negative")
    positions = np.cumsum(gap.astype(np.int64) + 1) - 1
    if int(positions[-1]) >= n:
        raise ValueError(
            f"the {sym.size} entries reach position {int(positions[-1])}, past the end of a layer of {n} weights"
        )
    out[positions] = sym
    return out
