"""Weight-grouped blocks packed into one 64-bit word each: the runtime's faster layout.

The layout of :class:`compression.kernels.GroupedLayer`: with weight sharing (DC section 3) a row's
product is ``y_r = sum_k c_k * (sum of x_j over the row's weights with symbol k)``, so the inputs
that share a codebook weight are summed first and multiplied once; made small enough to live in memory instead of the
file's stream: a block is one ``uint64`` holding five 11-bit column indices (bits 0-54, local to
a column panel of at most 2,047 inputs) and the 9-bit codebook symbol (bits 55-63). That is 1.6
bytes per stored slot against 2.25 for ``GroupedLayer``'s four uint16 indices and a symbol byte,
and it still reads a block with one 64-bit load. Within each column panel and row, the
non-zeros are sorted by symbol, then by column; each symbol's run is cut into blocks of five,
the last one padded with the panel's width (the index of a zero the kernels append to each
panel of ``x``). ``bptr[p * out + r]`` is the first block of row ``r`` in panel ``p``.

Codebooks of more than 512 entries (``weight_bits > 9``) do not fit the symbol field: such a
layer keeps the relative-index stream (:mod:`compression.runtime.layouts`).
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

from compression.kernels import _JIT, balanced_start_rows, equal_blocks, l1_block_cols

SLOTS = 5  # column indices per block
COL_BITS = 11
MAX_PANEL = (1 << COL_BITS) - 1  # the pad index (= the panel's width) must fit 11 bits too
SYM_SHIFT = SLOTS * COL_BITS  # 55
MAX_SYMBOLS = 1 << (64 - SYM_SHIFT)  # 512
# Below this many bytes of weights a batch-1 product runs on the calling thread: starting a
# parallel region costs a few microseconds, as much as the whole product of a LeNet layer.
SERIAL_BYTES = 64 << 10

_u = np.uint64
_M = np.uint64(MAX_PANEL)
_SH = tuple(np.uint64(COL_BITS * k) for k in range(SLOTS)) + (np.uint64(SYM_SHIFT),)


def panel_width(n_in: int) -> int:
    """Inputs per column panel: equal panels of at most half the L1 data cache of fp32 inputs and
    at most :data:`MAX_PANEL` (the reach of an 11-bit index)."""
    return equal_blocks(n_in, min(MAX_PANEL, l1_block_cols(n_in)))


def nonzeros(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)`` of a 2-D label matrix's non-zeros, row-major (faster than ``np.nonzero``)."""
    flat = np.flatnonzero(labels)
    return np.divmod(flat, max(1, labels.shape[1]))


def _runs(labels: np.ndarray, panel_cols: int, nz=None):
    """The non-zeros in block order -- panel, row, symbol, column -- as ``(panel, row, col, sym)``
    (columns local to the panel), with the start and length of each (panel, row, symbol) run."""
    o, n = labels.shape
    r, c = nonzeros(labels) if nz is None else nz  # row-major: columns ascending within a row
    s = labels[r, c].astype(np.int64)
    p = c // panel_cols
    order = np.argsort((p * o + r) * MAX_SYMBOLS + s, kind="stable")  # stable: columns stay ascending
    p, r, c, s = p[order], r[order], c[order] - p[order] * panel_cols, s[order]
    if c.size:
        new = (np.diff(p) != 0) | (np.diff(r) != 0) | (np.diff(s) != 0)
        starts = np.concatenate([[0], np.flatnonzero(new) + 1])
        size = np.diff(np.append(starts, c.size))
    else:
        starts = size = np.zeros(0, np.int64)
    return p, r, c, s, starts, size


def block_count(labels: np.ndarray, panel_cols: int, nz=None) -> int:
    """Blocks the layer needs (for choosing a layout before building one)."""
    return int((-(-_runs(labels, panel_cols, nz)[-1] // SLOTS)).sum())


def pack_blocks(labels: np.ndarray, panel_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """``(blocks uint64 [n_blocks], bptr int32 [panels * out + 1])`` of a 2-D label matrix."""
    o, n = labels.shape
    if not 0 < panel_cols <= MAX_PANEL:
        raise ValueError(f"panel_cols must be in 1..{MAX_PANEL}, got {panel_cols}")
    if labels.size and int(labels.max()) >= MAX_SYMBOLS:
        raise ValueError(f"a symbol exceeds the {MAX_SYMBOLS}-entry reach of a block")
    n_panels = max(1, -(-n // panel_cols))
    p, r, c, s, starts, size = _runs(labels, panel_cols)
    width = np.minimum(n - p[starts] * panel_cols, panel_cols)  # each run's panel width: its pad index
    nblk = -(-size // SLOTS)
    slot0 = np.concatenate([[0], np.cumsum(nblk)[:-1]]).astype(np.int64) * SLOTS
    run = np.repeat(np.arange(size.size), size)
    cols = np.repeat(width, nblk * SLOTS).astype(np.uint64)  # pads: the zero after the panel
    cols[slot0[run] + (np.arange(c.size) - starts[run])] = c
    cols = cols.reshape(-1, SLOTS)
    words = np.repeat(s[starts].astype(np.uint64), nblk) << _SH[SLOTS]
    for k in range(SLOTS):
        words |= cols[:, k] << _SH[k]
    counts = np.bincount(np.repeat(p[starts] * o + r[starts], nblk), minlength=n_panels * o)
    bptr = np.concatenate([[0], np.cumsum(counts)])
    if bptr[-1] >= 2**31:
        raise ValueError("too many blocks for int32 block pointers")
    return words, bptr.astype(np.int32)


@njit(**_JIT)
def _pad(xt, n_in, panel_cols, n_panels, nb):
    """``xt`` (``[in * nb]``, input-major) as panels of ``panel_cols + 1`` inputs, the last a zero."""
    stride = (panel_cols + 1) * nb
    xp = np.zeros(n_panels * stride, np.float32)
    for p in range(n_panels):
        c0 = p * panel_cols
        w = min(n_in, c0 + panel_cols) - c0
        for i in range(w * nb):
            xp[_u(p * stride + i)] = xt[_u(c0 * nb + i)]
    return xp


@njit(inline="always", **_JIT)
def _sum5(w, xp):
    return ((xp[w & _M] + xp[(w >> _SH[1]) & _M]) + (xp[(w >> _SH[2]) & _M] + xp[(w >> _SH[3]) & _M])
            + xp[(w >> _SH[4]) & _M])


@njit(inline="always", **_JIT)
def _blk_rows(blk, bptr, cb, xpad, y, r0, r1, panel_cols, n_out, n_panels):
    stride = panel_cols + 1
    for p in range(n_panels):  # these rows, one panel of x (in L1) at a time
        xp = xpad[p * stride:(p + 1) * stride]
        for r in range(r0, r1):
            k = np.int64(bptr[_u(p * n_out + r)])
            end = np.int64(bptr[_u(p * n_out + r + 1)])
            a0 = np.float32(0.0)
            a1 = np.float32(0.0)
            a2 = np.float32(0.0)
            a3 = np.float32(0.0)
            while k + 4 <= end:  # independent accumulators hide the FMA latency
                w0 = blk[_u(k)]
                w1 = blk[_u(k + 1)]
                w2 = blk[_u(k + 2)]
                w3 = blk[_u(k + 3)]
                a0 += cb[w0 >> _SH[5]] * _sum5(w0, xp)
                a1 += cb[w1 >> _SH[5]] * _sum5(w1, xp)
                a2 += cb[w2 >> _SH[5]] * _sum5(w2, xp)
                a3 += cb[w3 >> _SH[5]] * _sum5(w3, xp)
                k += 4
            while k < end:
                w0 = blk[_u(k)]
                a0 += cb[w0 >> _SH[5]] * _sum5(w0, xp)
                k += 1
            y[_u(r)] += (a0 + a1) + (a2 + a3)


@njit(parallel=True, **_JIT)
def _blk_mv(blk, bptr, cb, x, y0, start_rows, panel_cols, n_in, n_out, n_panels):
    """``y0 + W x`` (``y0``: the bias, or zeros)."""
    xpad = _pad(x, n_in, panel_cols, n_panels, 1)
    y = y0.copy()
    n_chunks = start_rows.size
    for c in prange(n_chunks):
        r1 = start_rows[c + 1] if c + 1 < n_chunks else n_out
        _blk_rows(blk, bptr, cb, xpad, y, start_rows[c], r1, panel_cols, n_out, n_panels)
    return y


@njit(**_JIT)
def _blk_mv1(blk, bptr, cb, x, y0, panel_cols, n_in, n_out, n_panels):
    """``_blk_mv`` on the calling thread (small layers: no parallel region to start)."""
    xpad = _pad(x, n_in, panel_cols, n_panels, 1)
    y = y0.copy()
    _blk_rows(blk, bptr, cb, xpad, y, 0, n_out, panel_cols, n_out, n_panels)
    return y


@njit(parallel=True, **_JIT)
def _blk_mm(blk, bptr, cb, xt, nb, start_rows, panel_cols, n_in, n_out, n_panels):
    """``xt``: ``X^T`` flattened (``[in * nb]``); returns ``Y^T`` flattened (``[out * nb]``)."""
    xpad = _pad(xt, n_in, panel_cols, n_panels, nb)
    stride = (panel_cols + 1) * nb
    yt = np.zeros(n_out * nb, np.float32)
    n_chunks = start_rows.size
    for c in prange(n_chunks):
        r0 = start_rows[c]
        r1 = start_rows[c + 1] if c + 1 < n_chunks else n_out
        for p in range(n_panels):
            xp = xpad[p * stride:(p + 1) * stride]
            for r in range(r0, r1):
                yb = r * nb
                for k in range(np.int64(bptr[_u(p * n_out + r)]), np.int64(bptr[_u(p * n_out + r + 1)])):
                    w = blk[_u(k)]
                    v = cb[w >> _SH[5]]
                    i0 = np.int64(w & _M) * nb
                    i1 = np.int64((w >> _SH[1]) & _M) * nb
                    i2 = np.int64((w >> _SH[2]) & _M) * nb
                    i3 = np.int64((w >> _SH[3]) & _M) * nb
                    i4 = np.int64((w >> _SH[4]) & _M) * nb
                    for j in range(nb):
                        yt[_u(yb + j)] += v * (((xp[_u(i0 + j)] + xp[_u(i1 + j)]) + (xp[_u(i2 + j)] + xp[_u(i3 + j)]))
                                               + xp[_u(i4 + j)])
    return yt


@njit(**_JIT)
def _blk_dense(blk, bptr, cb, panel_cols, n_in, n_out, n_panels):
    w = np.zeros(n_out * n_in, np.float32)
    for p in range(n_panels):
        c0 = p * panel_cols
        width = min(n_in, c0 + panel_cols) - c0
        for r in range(n_out):
            for k in range(np.int64(bptr[_u(p * n_out + r)]), np.int64(bptr[_u(p * n_out + r + 1)])):
                b = blk[_u(k)]
                v = cb[b >> _SH[5]]
                for s in range(5):
                    col = np.int64((b >> np.uint64(COL_BITS * s)) & _M)
                    if col < width:
                        w[_u(r * n_in + c0 + col)] = v
    return w


class BlockWeights:
    """A weight matrix ``[out, in]`` held as packed weight-grouped blocks + fp32 codebook.

    ``mv(x)``: ``[in]`` -> ``[out]``; ``mm(X)``: ``[B, in]`` -> ``[B, out]`` (a view of the
    ``[out, B]`` result; ``X`` may be a transposed view, then nothing is copied in); ``dense()``
    decodes to fp32 (for a layer run dense, one call at a time). ``n_threads`` sets the row
    chunks (balanced over blocks); the thread count itself is numba's.
    """

    layout = "blocks"

    def __init__(self, labels: np.ndarray, codebook: np.ndarray, n_threads: int = 1,
                 panel_cols: int | None = None):
        labels = np.asarray(labels)
        o, n = self.shape = (int(labels.shape[0]), int(labels.shape[1]))
        self.codebook = np.ascontiguousarray(codebook, dtype=np.float32)
        if self.codebook.size > MAX_SYMBOLS:
            raise ValueError(f"a codebook of {self.codebook.size} entries does not fit a block's 9-bit symbol")
        self.panel_cols = int(panel_cols) if panel_cols else panel_width(n)
        self.n_panels = max(1, -(-n // self.panel_cols))
        self.blocks, self.bptr = pack_blocks(labels, self.panel_cols)
        per_row = np.diff(self.bptr.astype(np.int64)).reshape(self.n_panels, o).sum(axis=0) if o else np.zeros(0)
        self.start_rows = balanced_start_rows(per_row, n_threads)
        self.serial = self.nbytes <= SERIAL_BYTES
        self._zeros = np.zeros(o, np.float32)

    @property
    def nbytes(self) -> int:
        return self.blocks.nbytes + self.bptr.nbytes + self.codebook.nbytes + self.start_rows.nbytes

    @staticmethod
    def estimate_nbytes(labels: np.ndarray, codebook_size: int, n_threads: int = 1, nz=None) -> int:
        o, n = labels.shape
        pc = panel_width(n)
        return (8 * block_count(labels, pc, nz) + 4 * (max(1, -(-n // pc)) * o + 1) + 4 * codebook_size
                + 8 * len(balanced_start_rows(np.ones(max(o, 1)), n_threads)))

    def mv(self, x: np.ndarray, y0: np.ndarray | None = None) -> np.ndarray:
        """``y0 + W x``; ``y0`` (the bias: added in the kernel) defaults to zeros."""
        y0 = self._zeros if y0 is None else y0
        if self.serial or get_num_threads() == 1:
            return _blk_mv1(self.blocks, self.bptr, self.codebook, x, y0, self.panel_cols, self.shape[1],
                            self.shape[0], self.n_panels)
        return _blk_mv(self.blocks, self.bptr, self.codebook, x, y0, self.start_rows, self.panel_cols,
                       self.shape[1], self.shape[0], self.n_panels)

    def mm(self, X: np.ndarray) -> np.ndarray:
        nb = X.shape[0]
        xt = np.ascontiguousarray(X.T, dtype=np.float32).reshape(-1)
        yt = _blk_mm(self.blocks, self.bptr, self.codebook, xt, nb, self.start_rows, self.panel_cols,
                     self.shape[1], self.shape[0], self.n_panels)
        return yt.reshape(self.shape[0], nb).T

    def dense(self) -> np.ndarray:
        return _blk_dense(self.blocks, self.bptr, self.codebook, self.panel_cols, self.shape[1], self.shape[0],
                          self.n_panels).reshape(self.shape)
