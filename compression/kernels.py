"""Matrix-vector / matrix-matrix kernels timed by the speedup benchmark (``experiments/speedup``);
the runtime (``compression.runtime``) runs the compressed-format ones inside whole networks.

All kernels compute ``y = W x`` for a torch ``nn.Linear`` weight ``W`` of shape
``(out_features, in_features)`` (row-major), at batch 1 (``x``: ``[in]``) or batch B
(``X``: ``[B, in]`` -> ``Y``: ``[B, out]``).

* dense: ``torch.mv`` / ``torch.mm`` (MKL SGEMV / SGEMM in torch's x86 wheels).
* CSR (torch): ``torch.sparse_csr_tensor`` with int32 indices; ``torch.mv`` / ``torch.mm``
  dispatch to MKL's sparse BLAS on CPU and to cuSPARSE on CUDA.
* CSR (scipy): ``scipy.sparse.csr_matrix`` with int32 indices (its own C++ loops).
* CSR (numba): a plain CSR SpMV/SpMM we JIT ourselves over the same int32 arrays, to separate
  "what CSR costs" from "what one library's CSR kernel costs".
* compressed format (numba): :class:`RelativeLayer` reads DC's relative-index + codebook stream
  directly -- ``(symbols, gaps)`` exactly as :func:`compression.sparse_format.encode_relative`
  returns them (uint8 each) -- tracking ``(row, col)`` incrementally and looking every weight
  up in the fp32 codebook. Nothing is expanded to fp32 weights or wide indices.
* compressed format, weight-grouped (numba): :class:`GroupedLayer`, built once from that stream:
  each row's non-zeros grouped by codebook symbol in blocks of four uint16 column indices, so the
  inputs sharing a weight are summed first and multiplied once (one codebook lookup per block).
* CSR, column-blocked: :class:`BlockedCSR` (our numba kernel) and :class:`TorchBlockedCSR`
  (torch/MKL's kernel called once per block), both keeping the gathered part of ``x`` in L1.

JIT: numba (LLVM). It is already a project dependency, compiles byte-level loops to native
code, releases the GIL and has ``prange`` threads. Two details matter for speed on this
AMD Zen 4 CPU (measured while writing these kernels):

* No ``reassoc`` fast-math flag: with it LLVM vectorizes the index loads into AVX-512
  gathers, which are about 2x *slower* than scalar loads here. We keep ``contract`` (FMA)
  and unroll to independent accumulators by hand.
* Index with unsigned integers (``_u(i)``): numba wraps negative indices for signed ones,
  which costs ~3 instructions per access and doubled the run time of these loops.

The compressed-format loop reads 8 entries at a time: the 8 uint8 gaps are one little-endian
64-bit load of the same bytes, and the 8 positions come out of one SWAR multiply:
``((g + 0x0101..01) * 0x0101..01)`` holds the running sums of ``gap + 1`` in its bytes. That is
exact while 8 distances fit in a byte (index_bits <= 5; for 5 bits the one overflowing word,
eight maximal gaps, takes the scalar path); wider gaps use the scalar path throughout. Words that
cross a row boundary also take the scalar path.
The 8 symbols are read as 8 byte loads rather than extracted from a 64-bit word: the load
ports then do the extraction, and the ALUs only the positions (measured here: AlexNet fc7
1099 -> 908 us, VGG-16 fc7 588 -> 485 us; extracting half of them in the ALUs was slower;
one accumulator per entry of the word instead of four pairs was no faster).

Layers wider than half the L1 data cache (the fc6s: 36 KB and 100 KB of ``x``) are read as column
panels (:func:`column_panels`): the stream is re-encoded once, at construction, panel by panel,
each panel in DC's format of its own, so the kernel's gathers from ``x`` stay in L1, as in
:class:`BlockedCSR`. Measured here: AlexNet fc6 2.24 -> 2.07 ms, VGG-16 fc6 3.61 -> 2.80 ms.
"""

from __future__ import annotations

import sys

import numba
import numpy as np
from numba import njit, prange

_FM = {"contract", "nnan", "ninf", "nsz", "arcp", "afn"}  # deliberately no "reassoc" (see above)
_JIT = dict(nogil=True, cache=True, fastmath=_FM, boundscheck=False, error_model="numpy")

_u = np.uint64  # index cast: unsigned indices skip numba's negative-index wraparound
_ONES = np.uint64(0x0101010101010101)
_FF = np.uint64(0xFF)
_S8, _S16, _S24, _S32, _S40, _S48, _S56 = (np.uint64(s) for s in (8, 16, 24, 32, 40, 48, 56))
_u32 = np.uint32
_M8 = np.uint32(0xFF)
_T8, _T16, _T24 = (np.uint32(s) for s in (8, 16, 24))

SWAR_MAX_BITS = 5  # 8 distances of up to 2**5 fit a byte (the all-maximal word is special-cased)


def swar_ok(symbols: np.ndarray, gaps: np.ndarray, index_bits: int) -> bool:
    return (sys.byteorder == "little" and symbols.dtype == np.uint8 and gaps.dtype == np.uint8
            and 1 <= index_bits <= SWAR_MAX_BITS)


def _words(a: np.ndarray) -> np.ndarray:
    """The leading ``8 * (len // 8)`` bytes of a uint8 array, viewed (no copy) as uint64 words."""
    n8 = (a.size // 8) * 8
    if a.dtype != np.uint8 or n8 == 0:
        return np.zeros(0, np.uint64)
    return a[:n8].view(np.uint64)


# --------------------------------------------------------------------------- compressed format
def relative_chunks(gaps: np.ndarray, n_in: int, n_out: int, n_chunks: int,
                    start_rows: np.ndarray | None = None) -> np.ndarray:
    """Thread start table for the relative-index stream: ``int64 [n_chunks, 4]`` rows of
    ``(entry_begin, entry_end, row, col)`` -- the decoder state just before ``entry_begin``.
    Chunks start on row boundaries (each output row belongs to one chunk), so threads never
    write the same output element. With one chunk this is ``(0, n_entries, 0, -1)``. The
    table (``32 * n_chunks`` bytes) is counted in the format's bytes; the stream is untouched.
    ``start_rows`` (ascending, first 0) fixes the chunks' first rows instead of balancing the
    entries; column panels use it so that every panel splits its rows the same way.
    """
    n_entries = int(gaps.size)
    if start_rows is None:
        n_chunks = max(1, int(n_chunks))
        if n_chunks == 1 or n_entries == 0:
            return np.array([[0, n_entries, 0, -1]], dtype=np.int64)
    if n_entries == 0:  # given start rows, nothing stored: empty chunks
        r = np.asarray(start_rows, dtype=np.int64)
        return np.stack([np.zeros_like(r), np.zeros_like(r), r, np.full_like(r, -1)], axis=1)
    pos = np.cumsum(gaps.astype(np.int64) + 1) - 1  # absolute flat positions (setup only)
    if start_rows is None:
        start_rows = balanced_start_rows(np.bincount(pos // n_in, minlength=n_out), n_chunks)
    start_rows = np.asarray(start_rows, dtype=np.int64)
    begins = np.searchsorted(pos, start_rows * n_in, side="left")
    ends = np.append(begins[1:], n_entries)
    prev_pos = np.where(begins > 0, pos[np.maximum(begins - 1, 0)], -1)
    cols = prev_pos - start_rows * n_in  # <= -1: the next gap lands in start_row or later
    return np.stack([begins, ends, start_rows, cols], axis=1).astype(np.int64)


def balanced_start_rows(per_row: np.ndarray, n_chunks: int) -> np.ndarray:
    """First rows of ``n_chunks`` row ranges holding about equal shares of ``per_row`` (entries
    per row); ascending, first 0, duplicates merged (so possibly fewer chunks)."""
    n_chunks = max(1, int(n_chunks))
    cum = np.cumsum(np.asarray(per_row, dtype=np.int64))
    if n_chunks == 1 or cum.size == 0:
        return np.zeros(1, np.int64)
    targets = (np.arange(1, n_chunks) * int(cum[-1])) // n_chunks
    rows = np.minimum(np.searchsorted(cum, targets, side="right"), cum.size - 1)
    return np.unique(np.concatenate([[0], rows])).astype(np.int64)


def _checked_stream(symbols, gaps, codebook):
    """``(symbols, gaps, codebook)`` as contiguous arrays (codebook fp32), or a ValueError naming
    what does not fit: the inputs both compressed-format kernels are built from."""
    symbols = np.ascontiguousarray(symbols)
    gaps = np.ascontiguousarray(gaps)
    if symbols.shape != gaps.shape or symbols.ndim != 1:
        raise ValueError("symbols and gaps must be 1-D and of equal length")
    codebook = np.ascontiguousarray(codebook, dtype=np.float32)
    if symbols.size and int(symbols.max()) >= codebook.size:
        raise ValueError("a symbol indexes past the codebook")
    return symbols, gaps, codebook


def column_panels(symbols: np.ndarray, gaps: np.ndarray, shape, index_bits: int, panel_cols: int,
                  n_chunks: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Re-encode one layer's relative-index stream as column panels of ``panel_cols`` inputs.

    Panel ``b`` holds columns ``[b * panel_cols, (b + 1) * panel_cols)`` of every row, in DC's
    relative-index format of its own (the same :func:`compression.sparse_format.encode_relative`,
    over that panel's row-major labels: gaps restart at the panel's left edge, fillers are
    counted where that panel needs them). The panels are concatenated. Returns ``(symbols,
    gaps, chunks)`` with ``chunks`` of shape ``[n_panels, n_chunks, 4]``: each panel's thread
    table (:func:`relative_chunks`), entry offsets global, the same first rows in every panel.
    """
    from compression.sparse_format import decode_relative, encode_relative

    o, n = int(shape[0]), int(shape[1])
    labels = decode_relative(symbols, gaps, o * n, index_bits).reshape(o, n)
    # the same first rows in every panel, balancing the non-zeros of all panels together
    start_rows = balanced_start_rows(np.count_nonzero(labels, axis=1), n_chunks)
    syms, gps, tables, offset = [], [], [], 0
    for c0 in range(0, n, panel_cols):
        c1 = min(n, c0 + panel_cols)
        s, g = encode_relative(np.ascontiguousarray(labels[:, c0:c1]).reshape(-1), index_bits)
        t = relative_chunks(g, c1 - c0, o, n_chunks, start_rows)
        t[:, :2] += offset
        offset += s.size
        syms.append(s.astype(symbols.dtype, copy=False))
        gps.append(g.astype(gaps.dtype, copy=False))
        tables.append(t)
    return np.concatenate(syms), np.concatenate(gps), np.ascontiguousarray(np.stack(tables))


@njit(inline="always", **_JIT)
def _rel_scalar(sym, gap, cb, x, y, e_from, e_to, row, col, acc, n_in):
    """One entry at a time: ``col += gap + 1``; past the row end, flush and move down."""
    for e in range(e_from, e_to):
        col += np.int64(gap[_u(e)]) + 1
        while col >= n_in:
            y[_u(row)] += acc
            acc = np.float32(0.0)
            row += 1
            col -= n_in
        acc += cb[_u(sym[_u(e)])] * x[_u(col)]
    return row, col, acc


@njit(**_JIT)
def _rel_mv_chunk(sym, gap, gap64, cb, x, y, e0, e1, row, col, n_in, swar, check_allmax, allmax):
    acc = np.float32(0.0)
    head_end = min(e1, ((e0 + 7) // 8) * 8) if swar else e1
    row, col, acc = _rel_scalar(sym, gap, cb, x, y, e0, head_end, row, col, acc, n_in)
    a0 = acc
    a1 = np.float32(0.0)
    a2 = np.float32(0.0)
    a3 = np.float32(0.0)
    for w in range(head_end // 8, e1 // 8):
        g = gap64[_u(w)]
        p = (g + _ONES) * _ONES  # byte k = sum_{j<=k} (gap_j + 1)
        last = col + np.int64(p >> _S56)
        if last < n_in and not (check_allmax and g == allmax):  # all 8 in this row, no byte overflow
            # symbols: byte loads (the load ports do the extraction); positions: bytes of p
            e = w * 8
            pl = _u32(p)
            ph = _u32(p >> _S32)
            a0 += cb[sym[_u(e)]] * x[_u(col + np.int64(pl & _M8))] + cb[sym[_u(e + 4)]] * x[_u(col + np.int64(ph & _M8))]
            a1 += cb[sym[_u(e + 1)]] * x[_u(col + np.int64((pl >> _T8) & _M8))] \
                + cb[sym[_u(e + 5)]] * x[_u(col + np.int64((ph >> _T8) & _M8))]
            a2 += cb[sym[_u(e + 2)]] * x[_u(col + np.int64((pl >> _T16) & _M8))] \
                + cb[sym[_u(e + 6)]] * x[_u(col + np.int64((ph >> _T16) & _M8))]
            a3 += cb[sym[_u(e + 3)]] * x[_u(col + np.int64(pl >> _T24))] + cb[sym[_u(e + 7)]] * x[_u(last)]
            col = last
        else:
            acc = (a0 + a1) + (a2 + a3)
            row, col, acc = _rel_scalar(sym, gap, cb, x, y, w * 8, w * 8 + 8, row, col, acc, n_in)
            a0 = acc
            a1 = np.float32(0.0)
            a2 = np.float32(0.0)
            a3 = np.float32(0.0)
    acc = (a0 + a1) + (a2 + a3)
    row, col, acc = _rel_scalar(sym, gap, cb, x, y, max(head_end, (e1 // 8) * 8), e1, row, col, acc, n_in)
    if e1 > e0:
        y[_u(row)] += acc


@njit(parallel=True, **_JIT)
def _rel_mv(sym, gap, gap64, cb, x, chunks, panel_cols, n_in, n_out, swar, check_allmax, allmax):
    y = np.zeros(n_out, np.float32)
    for c in prange(chunks.shape[1]):
        for b in range(chunks.shape[0]):  # this thread's rows, one column panel at a time
            c0 = b * panel_cols
            c1 = min(n_in, c0 + panel_cols)
            _rel_mv_chunk(sym, gap, gap64, cb, x[c0:c1], y, chunks[b, c, 0], chunks[b, c, 1], chunks[b, c, 2],
                          chunks[b, c, 3], c1 - c0, swar, check_allmax, allmax)
    return y


@njit(inline="always", **_JIT)
def _rel_mm_scalar(sym, gap, cb, xt, yt, acc, e_from, e_to, row, col, n_in, nb):
    for e in range(e_from, e_to):
        col += np.int64(gap[_u(e)]) + 1
        while col >= n_in:
            base = row * nb
            for b in range(nb):
                yt[_u(base + b)] += acc[_u(b)]
                acc[_u(b)] = 0.0
            row += 1
            col -= n_in
        wv = cb[_u(sym[_u(e)])]
        xb = col * nb
        for b in range(nb):
            acc[_u(b)] += wv * xt[_u(xb + b)]
    return row, col


@njit(**_JIT)
def _rel_mm_chunk(sym, gap, sym64, gap64, cb, xt, yt, e0, e1, row, col, n_in, nb, swar, allmax):
    """Batch version: ``xt`` is ``X^T`` flattened ``[in * B]``, ``yt`` is ``Y^T`` ``[out * B]``.
    Eight entries of one row update the B accumulators in one vectorized pass."""
    acc = np.zeros(nb, np.float32)
    head_end = min(e1, ((e0 + 7) // 8) * 8) if swar else e1
    row, col = _rel_mm_scalar(sym, gap, cb, xt, yt, acc, e0, head_end, row, col, n_in, nb)
    for w in range(head_end // 8, e1 // 8):
        g = gap64[_u(w)]
        p = (g + _ONES) * _ONES
        last = col + np.int64(p >> _S56)
        if last < n_in and g != allmax:
            s = sym64[_u(w)]
            w0 = cb[s & _FF]
            w1 = cb[(s >> _S8) & _FF]
            w2 = cb[(s >> _S16) & _FF]
            w3 = cb[(s >> _S24) & _FF]
            w4 = cb[(s >> _S32) & _FF]
            w5 = cb[(s >> _S40) & _FF]
            w6 = cb[(s >> _S48) & _FF]
            w7 = cb[s >> _S56]
            x0 = (col + np.int64(p & _FF)) * nb
            x1 = (col + np.int64((p >> _S8) & _FF)) * nb
            x2 = (col + np.int64((p >> _S16) & _FF)) * nb
            x3 = (col + np.int64((p >> _S24) & _FF)) * nb
            x4 = (col + np.int64((p >> _S32) & _FF)) * nb
            x5 = (col + np.int64((p >> _S40) & _FF)) * nb
            x6 = (col + np.int64((p >> _S48) & _FF)) * nb
            x7 = last * nb
            for b in range(nb):
                acc[_u(b)] += ((w0 * xt[_u(x0 + b)] + w1 * xt[_u(x1 + b)])
                               + (w2 * xt[_u(x2 + b)] + w3 * xt[_u(x3 + b)])) \
                    + ((w4 * xt[_u(x4 + b)] + w5 * xt[_u(x5 + b)])
                       + (w6 * xt[_u(x6 + b)] + w7 * xt[_u(x7 + b)]))
            col = last
        else:
            row, col = _rel_mm_scalar(sym, gap, cb, xt, yt, acc, w * 8, w * 8 + 8, row, col, n_in, nb)
    row, col = _rel_mm_scalar(sym, gap, cb, xt, yt, acc, max(head_end, (e1 // 8) * 8), e1, row, col, n_in, nb)
    if e1 > e0:
        base = row * nb
        for b in range(nb):
            yt[_u(base + b)] += acc[_u(b)]


@njit(parallel=True, **_JIT)
def _rel_mm(sym, gap, sym64, gap64, cb, xt, nb, chunks, panel_cols, n_in, n_out, swar, allmax):
    yt = np.zeros(n_out * nb, np.float32)
    for c in prange(chunks.shape[1]):
        for b in range(chunks.shape[0]):
            c0 = b * panel_cols
            c1 = min(n_in, c0 + panel_cols)
            _rel_mm_chunk(sym, gap, sym64, gap64, cb, xt[c0 * nb:c1 * nb], yt, chunks[b, c, 0], chunks[b, c, 1],
                          chunks[b, c, 2], chunks[b, c, 3], c1 - c0, nb, swar, allmax)
    return yt


class RelativeLayer:
    """A Linear weight held only as DC's relative-index stream + codebook.

    ``symbols``/``gaps`` are exactly what :func:`compression.sparse_format.encode_relative`
    returned for the row-major flattened labels (uint8 for <= 8-bit codebooks and gaps);
    ``codebook`` is fp32 with ``codebook[0] == 0`` (fillers multiply by it). ``n_threads``
    only sets how many row-aligned chunks the stream is split into (see
    :func:`relative_chunks`); the thread count itself is numba's.

    ``panel_cols``: when a layer has more inputs than that, the stream is re-encoded once, at
    construction, as column panels of that many inputs (:func:`column_panels`), each still DC's
    relative-index format, and the kernel walks its rows panel by panel, so the part of ``x``
    it gathers from stays in L1 (the same cache blocking as :class:`BlockedCSR`). By default
    equal panels of at most half the L1 data cache of inputs at batch 1 (:func:`equal_blocks`;
    4096 here, measured best of 2048 / 4096 / 8192 on VGG-16 fc6) and no panels at batch > 1.
    ``panel_cols=0`` keeps the stream as given.
    """

    def __init__(self, symbols, gaps, codebook, shape, index_bits: int, n_threads: int = 1,
                 panel_cols: int | None = None, batch: int = 1):
        symbols, gaps, self.codebook = _checked_stream(symbols, gaps, codebook)
        self.shape = (int(shape[0]), int(shape[1]))
        self.index_bits = int(index_bits)
        if panel_cols is None:
            panel_cols = l1_block_cols(shape[1]) if batch == 1 else 0
        n = self.shape[1]
        self.panel_cols = int(panel_cols) if 0 < int(panel_cols) < n else max(n, 1)
        self.n_panels = max(1, -(-n // self.panel_cols))
        if self.n_panels > 1:
            symbols, gaps, self.chunks = column_panels(symbols, gaps, self.shape, self.index_bits,
                                                       self.panel_cols, n_threads)
        else:
            self.chunks = relative_chunks(gaps, n, self.shape[0], n_threads)[None]
        self.symbols, self.gaps = symbols, gaps
        self.swar = swar_ok(self.symbols, self.gaps, self.index_bits)
        self.allmax = np.uint64(int.from_bytes(bytes([(1 << min(self.index_bits, 8)) - 1] * 8), "little"))
        self.check_allmax = self.index_bits == SWAR_MAX_BITS  # only 5-bit words can sum to 256
        self.sym64 = _words(self.symbols) if self.swar else np.zeros(0, np.uint64)
        self.gap64 = _words(self.gaps) if self.swar else np.zeros(0, np.uint64)

    @property
    def entries(self) -> int:
        """Stored entries (non-zeros + fillers) of the stream the kernel reads."""
        return int(self.symbols.size)

    def mv(self, x: np.ndarray) -> np.ndarray:
        return _rel_mv(self.symbols, self.gaps, self.gap64, self.codebook, x, self.chunks, self.panel_cols,
                       self.shape[1], self.shape[0], self.swar, self.check_allmax, self.allmax)

    def mm(self, X: np.ndarray) -> np.ndarray:
        """``X``: ``[B, in]`` -> ``[B, out]`` (computed on an ``[in, B]`` copy of ``X``)."""
        nb = X.shape[0]
        xt = np.ascontiguousarray(X.T).reshape(-1)
        yt = _rel_mm(self.symbols, self.gaps, self.sym64, self.gap64, self.codebook, xt, nb, self.chunks,
                     self.panel_cols, self.shape[1], self.shape[0], self.swar, self.allmax)
        return yt.reshape(self.shape[0], nb).T

    @property
    def nbytes(self) -> int:
        """Bytes the kernel reads for the weights: the stream, the codebook, the chunk table."""
        return self.symbols.nbytes + self.gaps.nbytes + self.codebook.nbytes + self.chunks.nbytes


# --------------------------------------------------------------------------- compressed, weight-grouped
GROUP_BLOCK = 4  # stored weights per block: one shared symbol, four column indices
_M16 = np.uint64(0xFFFF)


def grouped_blocks(symbols, gaps, shape, index_bits: int, panel_cols: int):
    """Re-encode one layer's relative-index stream, once, as weight-grouped blocks.

    Within each column panel and row, the non-zeros are sorted by codebook symbol (then by
    column) and each symbol's run is cut into blocks of :data:`GROUP_BLOCK` entries, the last
    block of a run padded with the index ``panel width`` (the kernels point it at a zero). A
    block is one symbol (the input's dtype, uint8 here) and four uint16 column indices local to
    its panel. Returns ``(cols uint16 [4 * blocks], syms [blocks], bptr int32 [panels * out + 1])``;
    ``bptr[p * out + r]`` is the first block of row ``r`` in panel ``p`` (panel-major order).
    """
    from compression.sparse_format import decode_relative

    o, n = int(shape[0]), int(shape[1])
    if not 0 < panel_cols <= 0xFFFF:
        raise ValueError(f"panel_cols must be in 1..65535 (uint16 indices and one pad slot), got {panel_cols}")
    labels = decode_relative(symbols, gaps, o * n, index_bits).reshape(o, n)
    cols_l, syms_l, counts = [], [], []
    for c0 in range(0, max(n, 1), panel_cols):
        c1 = min(n, c0 + panel_cols)
        panel = labels[:, c0:c1]
        r, c = np.nonzero(panel)
        s = panel[r, c]
        order = np.lexsort((c, s, r))  # row, then symbol, then column
        r, c, s = r[order], c[order], s[order]
        if c.size:
            new_run = np.flatnonzero((np.diff(r) != 0) | (np.diff(s) != 0)) + 1
            starts = np.concatenate([[0], new_run])
            size = np.diff(np.append(starts, c.size))
        else:
            starts = size = np.zeros(0, np.int64)
        nblk = -(-size // GROUP_BLOCK)
        slot0 = np.concatenate([[0], np.cumsum(nblk)[:-1]]).astype(np.int64) * GROUP_BLOCK
        run = np.repeat(np.arange(size.size), size)
        cols = np.full(int(nblk.sum()) * GROUP_BLOCK, c1 - c0, np.uint16)  # pads: the zero slot
        cols[slot0[run] + (np.arange(c.size) - starts[run])] = c
        cols_l.append(cols)
        syms_l.append(np.repeat(s[starts], nblk).astype(symbols.dtype))
        counts.append(np.bincount(np.repeat(r[starts], nblk), minlength=o))
    bptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))])
    if bptr[-1] >= 2**31:
        raise ValueError("too many blocks for int32 block pointers")
    return np.concatenate(cols_l), np.concatenate(syms_l), bptr.astype(np.int32)


@njit(**_JIT)
def _pad_panels(x, n_in, panel_cols, n_panels, nb):
    """``x`` (``[in * nb]``, input-major) copied into panels of ``panel_cols + 1`` inputs, the
    last of each a zero: the slot padded block entries point at."""
    stride = (panel_cols + 1) * nb
    xp = np.zeros(n_panels * stride, np.float32)
    for p in range(n_panels):
        c0 = p * panel_cols
        w = min(n_in, c0 + panel_cols) - c0
        for i in range(w * nb):
            xp[_u(p * stride + i)] = x[_u(c0 * nb + i)]
    return xp


@njit(inline="always", **_JIT)
def _block_sum(w, xp):
    return (xp[w & _M16] + xp[(w >> _S16) & _M16]) + (xp[(w >> _S32) & _M16] + xp[w >> _S48])


@njit(parallel=True, **_JIT)
def _grp_mv(cols64, syms, bptr, cb, x, start_rows, panel_cols, n_in, n_out, n_panels):
    xpad = _pad_panels(x, n_in, panel_cols, n_panels, 1)
    stride = panel_cols + 1
    y = np.zeros(n_out, np.float32)
    n_chunks = start_rows.size
    for c in prange(n_chunks):
        r0 = start_rows[c]
        r1 = start_rows[c + 1] if c + 1 < n_chunks else n_out
        for p in range(n_panels):  # this thread's rows, one panel at a time: the panel of x stays in L1
            xp = xpad[p * stride:(p + 1) * stride]
            for r in range(r0, r1):
                k = np.int64(bptr[_u(p * n_out + r)])
                end = np.int64(bptr[_u(p * n_out + r + 1)])
                a0 = np.float32(0.0)
                a1 = np.float32(0.0)
                a2 = np.float32(0.0)
                a3 = np.float32(0.0)
                while k + 4 <= end:  # independent accumulators hide the FMA latency (2 were ~3 % slower)
                    a0 += cb[_u(syms[_u(k)])] * _block_sum(cols64[_u(k)], xp)
                    a1 += cb[_u(syms[_u(k + 1)])] * _block_sum(cols64[_u(k + 1)], xp)
                    a2 += cb[_u(syms[_u(k + 2)])] * _block_sum(cols64[_u(k + 2)], xp)
                    a3 += cb[_u(syms[_u(k + 3)])] * _block_sum(cols64[_u(k + 3)], xp)
                    k += 4
                while k < end:
                    a0 += cb[_u(syms[_u(k)])] * _block_sum(cols64[_u(k)], xp)
                    k += 1
                y[_u(r)] += (a0 + a1) + (a2 + a3)
    return y


@njit(parallel=True, **_JIT)
def _grp_mm(cols64, syms, bptr, cb, xt, nb, start_rows, panel_cols, n_in, n_out, n_panels):
    xpad = _pad_panels(xt, n_in, panel_cols, n_panels, nb)
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
                    w = cols64[_u(k)]
                    v = cb[_u(syms[_u(k)])]
                    i0 = np.int64(w & _M16) * nb
                    i1 = np.int64((w >> _S16) & _M16) * nb
                    i2 = np.int64((w >> _S32) & _M16) * nb
                    i3 = np.int64(w >> _S48) * nb
                    for j in range(nb):
                        yt[_u(yb + j)] += v * ((xp[_u(i0 + j)] + xp[_u(i1 + j)]) + (xp[_u(i2 + j)] + xp[_u(i3 + j)]))
    return yt


class GroupedLayer:
    """A Linear weight held as codebook symbols and narrow column indices, grouped by weight.

    Built once from DC's relative-index stream + codebook (what the file stores), like the
    column panels of :class:`RelativeLayer`, and never expanded to fp32 weights or wide indices.
    Weight sharing makes ``y_r = sum_j c[s_rj] x_j = sum_k c_k * (sum of x_j over the row's
    entries with symbol k)``: the inputs that share a weight are summed first and multiplied
    once (the factorization UCNN, Hegde et al., ISCA 2018, builds hardware around). So the entries of each row are
    stored grouped by symbol, in blocks of four (:func:`grouped_blocks`): per block one symbol
    byte and four uint16 column indices, one 64-bit load. A block costs one codebook lookup,
    four gathers from ``x``, three adds and one FMA; the relative stream costs, per entry, a
    symbol load, a codebook lookup, a gather and an FMA, plus the position arithmetic and the
    fillers. Padding the last block of each run costs slots (counted in the bytes): 3-19 %
    on the paper's layers.

    ``panel_cols``: column panels, as for :class:`RelativeLayer` (default: equal panels of at
    most half the L1 data cache of inputs at batch 1; at larger batches one panel, or equal
    panels of at most 65,535 inputs, the reach of uint16 indices). ``n_threads`` sets the row
    chunks (:func:`balanced_start_rows` over blocks), each walked panel by panel.
    """

    def __init__(self, symbols, gaps, codebook, shape, index_bits: int, n_threads: int = 1,
                 panel_cols: int | None = None, batch: int = 1):
        symbols, gaps, self.codebook = _checked_stream(symbols, gaps, codebook)
        o, n = self.shape = (int(shape[0]), int(shape[1]))
        if panel_cols is None:
            panel_cols = l1_block_cols(n) if batch == 1 else n
        pc = max(1, min(int(panel_cols) if int(panel_cols) > 0 else n, n))  # 0: one panel
        self.panel_cols = pc if pc <= 0xFFFF else equal_blocks(n, 0xFFFF)
        self.n_panels = max(1, -(-n // self.panel_cols))
        self.cols, self.syms, self.bptr = grouped_blocks(symbols, gaps, self.shape, index_bits, self.panel_cols)
        self.cols64 = self.cols.view(np.uint64)
        per_row = np.diff(self.bptr.astype(np.int64)).reshape(self.n_panels, o).sum(axis=0) if o else np.zeros(0)
        self.start_rows = balanced_start_rows(per_row, n_threads)

    @property
    def slots(self) -> int:
        """Stored column indices, pads included."""
        return int(self.cols.size)

    @property
    def blocks(self) -> int:
        return int(self.syms.size)

    def mv(self, x: np.ndarray) -> np.ndarray:
        return _grp_mv(self.cols64, self.syms, self.bptr, self.codebook, x, self.start_rows, self.panel_cols,
                       self.shape[1], self.shape[0], self.n_panels)

    def mm(self, X: np.ndarray) -> np.ndarray:
        """``X``: ``[B, in]`` -> ``[B, out]`` (computed on an ``[in, B]`` copy of ``X``)."""
        nb = X.shape[0]
        xt = np.ascontiguousarray(X.T, dtype=np.float32).reshape(-1)
        yt = _grp_mm(self.cols64, self.syms, self.bptr, self.codebook, xt, nb, self.start_rows, self.panel_cols,
                     self.shape[1], self.shape[0], self.n_panels)
        return yt.reshape(self.shape[0], nb).T

    @property
    def nbytes(self) -> int:
        """Bytes the kernel reads for the weights: indices, symbols, block pointers, codebook, the
        chunk table (first rows, int64)."""
        return (self.cols.nbytes + self.syms.nbytes + self.bptr.nbytes + self.codebook.nbytes
                + self.start_rows.nbytes)


# --------------------------------------------------------------------------- CSR (numba)
@njit(inline="always", **_JIT)
def _row_dot(indices, data, x, k, end):
    a0 = np.float32(0.0)
    a1 = np.float32(0.0)
    a2 = np.float32(0.0)
    a3 = np.float32(0.0)
    while k + 4 <= end:
        a0 += data[_u(k)] * x[_u(indices[_u(k)])]
        a1 += data[_u(k + 1)] * x[_u(indices[_u(k + 1)])]
        a2 += data[_u(k + 2)] * x[_u(indices[_u(k + 2)])]
        a3 += data[_u(k + 3)] * x[_u(indices[_u(k + 3)])]
        k += 4
    while k < end:
        a0 += data[_u(k)] * x[_u(indices[_u(k)])]
        k += 1
    return (a0 + a1) + (a2 + a3)


@njit(inline="always", **_JIT)
def _row_mm(indices, data, xt, yt, yb, k, end, nb):
    """``yt[yb:yb+nb] += sum_k data[k] * X^T[indices[k], :]`` over one row's entries ``k..end``."""
    while k + 4 <= end:
        w0 = data[_u(k)]
        w1 = data[_u(k + 1)]
        w2 = data[_u(k + 2)]
        w3 = data[_u(k + 3)]
        x0 = np.int64(indices[_u(k)]) * nb
        x1 = np.int64(indices[_u(k + 1)]) * nb
        x2 = np.int64(indices[_u(k + 2)]) * nb
        x3 = np.int64(indices[_u(k + 3)]) * nb
        for j in range(nb):
            yt[_u(yb + j)] += (w0 * xt[_u(x0 + j)] + w1 * xt[_u(x1 + j)]) \
                + (w2 * xt[_u(x2 + j)] + w3 * xt[_u(x3 + j)])
        k += 4
    while k < end:
        w0 = data[_u(k)]
        x0 = np.int64(indices[_u(k)]) * nb
        for j in range(nb):
            yt[_u(yb + j)] += w0 * xt[_u(x0 + j)]
        k += 1


@njit(parallel=True, **_JIT)
def _csr_mv(indptr, indices, data, x, n_out):
    y = np.empty(n_out, np.float32)
    for r in prange(n_out):
        y[_u(r)] = _row_dot(indices, data, x, np.int64(indptr[_u(r)]), np.int64(indptr[_u(r + 1)]))
    return y


@njit(parallel=True, **_JIT)
def _csr_mm(indptr, indices, data, xt, nb, n_out):
    yt = np.zeros(n_out * nb, np.float32)
    for r in prange(n_out):
        _row_mm(indices, data, xt, yt, r * nb, np.int64(indptr[_u(r)]), np.int64(indptr[_u(r + 1)]), nb)
    return yt


def csr_mv(indptr, indices, data, x, n_out):
    return _csr_mv(indptr, indices, data, x, n_out)


def csr_mm(indptr, indices, data, X, n_out):
    nb = X.shape[0]
    xt = np.ascontiguousarray(X.T).reshape(-1)
    return _csr_mm(indptr, indices, data, xt, nb, n_out).reshape(n_out, nb).T


# --------------------------------------------------------------------------- helpers
@njit(parallel=True, nogil=True, fastmath=True, cache=True)
def stream_sum(a):
    """Read every element once: the streaming-read bandwidth probe and the cache flush."""
    s = np.float32(0.0)
    for i in prange(a.size):
        s += a[i]
    return s


def set_threads(n: int) -> None:
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


# --------------------------------------------------------------------------- CSR, column-blocked (numba)
def equal_blocks(n: int, max_cols: int) -> int:
    """Columns per block when ``n`` columns are cut into the fewest blocks of at most ``max_cols``,
    all of (nearly) equal width: 9216 inputs at most 4096 -> 3 blocks of 3072, not 4096 + 4096 +
    1024 (measured on AlexNet fc6, 1 thread, cold: blocked CSR 1.77 -> 1.25 ms; VGG-16 fc6, 7
    blocks of 3584 instead of 6 x 4096 + 512, unchanged)."""
    n, max_cols = int(n), max(1, int(max_cols))
    return -(-n // -(-n // max_cols)) if n > 0 else max_cols


def l1_block_cols(n: int, batch: int = 1) -> int:
    """Default block / panel width: equal blocks whose fp32 slice of ``x`` (``batch`` columns of it)
    fills at most half the L1 data cache, and at least 64 inputs."""
    return equal_blocks(n, max(64, (l1d_bytes() // 2) // (4 * max(1, batch))))


def cache_sizes() -> list[tuple[int, str, int]]:
    """``(level, type, bytes)`` of cpu0's caches from sysfs (empty where it cannot be read)."""
    from pathlib import Path

    out = []
    for p in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            size = (p / "size").read_text().strip()
            nbytes = int(size.rstrip("KMG")) * {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1], 1)
            out.append((int((p / "level").read_text()), (p / "type").read_text().strip(), nbytes))
        except (OSError, ValueError):
            continue
    return out


def l1d_bytes(default: int = 32 << 10) -> int:
    """Per-core L1 data cache size (``default`` where it cannot be read)."""
    return next((b for level, kind, b in cache_sizes() if level == 1 and kind == "Data"), default)


@njit(parallel=True, **_JIT)
def _bcsr_mv(bptr, indices, data, x, n_out, n_blocks, n_chunks):
    y = np.zeros(n_out, np.float32)
    stride = n_out + 1
    for c in prange(n_chunks):
        r0 = (c * n_out) // n_chunks
        r1 = ((c + 1) * n_out) // n_chunks
        for b in range(n_blocks):  # this thread's rows, one column block at a time: x[block] stays in L1
            base = b * stride
            for r in range(r0, r1):
                y[_u(r)] += _row_dot(indices, data, x, np.int64(bptr[_u(base + r)]), np.int64(bptr[_u(base + r + 1)]))
    return y


@njit(parallel=True, **_JIT)
def _bcsr_mm(bptr, indices, data, xt, nb, n_out, n_blocks, n_chunks):
    yt = np.zeros(n_out * nb, np.float32)
    stride = n_out + 1
    for c in prange(n_chunks):
        r0 = (c * n_out) // n_chunks
        r1 = ((c + 1) * n_out) // n_chunks
        for b in range(n_blocks):
            base = b * stride
            for r in range(r0, r1):
                _row_mm(indices, data, xt, yt, r * nb, np.int64(bptr[_u(base + r)]),
                        np.int64(bptr[_u(base + r + 1)]), nb)
    return yt


class BlockedCSR:
    """CSR cut into column blocks (cache blocking, as in OSKI / Im & Yelick 2004).

    The same values and int32 column indices as CSR, ordered block by block, with one row-pointer
    array per block (``n_blocks * (out + 1)`` int32; counted in the bytes). Each thread walks its
    rows once per block, so the part of ``x`` a block touches (``block_cols * 4`` bytes, by
    default equal blocks of at most half the L1 data cache, :func:`equal_blocks`;
    ``block_cols * 4 * B`` for a batch) stays in L1 while the
    values and indices stream from memory. Plain CSR gathers from all of ``x``; when ``x`` outgrows
    L1 (fc6: 36 KB and 100 KB) every gather waits on L2.
    """

    def __init__(self, indptr, indices, data, shape, block_cols: int | None = None, batch: int = 1,
                 n_threads: int = 1):
        o, n = int(shape[0]), int(shape[1])
        if block_cols is None:
            block_cols = l1_block_cols(n, batch)
        self.shape, self.block_cols = (o, n), int(block_cols)
        self.n_blocks = max(1, -(-n // self.block_cols))
        self.n_chunks = max(1, int(n_threads))
        if self.n_blocks == 1 and np.asarray(indptr).dtype == np.int32:  # one block is the CSR itself:
            self.bptr = np.ascontiguousarray(indptr)                     # share the arrays, no copy
            self.indices = np.ascontiguousarray(indices, dtype=np.int32)
            self.data = np.ascontiguousarray(data, dtype=np.float32)
            return
        indptr = np.asarray(indptr, np.int64)
        indices = np.asarray(indices, np.int32)
        rows = np.repeat(np.arange(o, dtype=np.int64), np.diff(indptr))
        blk = indices.astype(np.int64) // self.block_cols
        order = np.lexsort((indices, rows, blk))  # block-major, then row, then column
        self.indices = np.ascontiguousarray(indices[order])
        self.data = np.ascontiguousarray(np.asarray(data, np.float32)[order])
        counts = np.bincount(blk * o + rows, minlength=self.n_blocks * o)  # entries per (block, row)
        ptr = np.concatenate([[0], np.cumsum(counts)])  # global offsets, block-major
        # block b's pointers: its o row starts, then its end (= the next block's first start)
        bptr = ptr[np.arange(self.n_blocks)[:, None] * o + np.arange(o + 1)[None, :]]
        if bptr.max(initial=0) >= 2**31:
            raise ValueError("too many non-zeros for int32 row pointers")
        self.bptr = np.ascontiguousarray(bptr.astype(np.int32).reshape(-1))

    def mv(self, x: np.ndarray) -> np.ndarray:
        if self.n_blocks == 1:  # one block is plain CSR (same arrays): use that kernel
            return _csr_mv(self.bptr, self.indices, self.data, x, self.shape[0])
        return _bcsr_mv(self.bptr, self.indices, self.data, x, self.shape[0], self.n_blocks, self.n_chunks)

    def mm(self, X: np.ndarray) -> np.ndarray:
        nb = X.shape[0]
        xt = np.ascontiguousarray(X.T).reshape(-1)
        if self.n_blocks == 1:
            yt = _csr_mm(self.bptr, self.indices, self.data, xt, nb, self.shape[0])
        else:
            yt = _bcsr_mm(self.bptr, self.indices, self.data, xt, nb, self.shape[0], self.n_blocks, self.n_chunks)
        return yt.reshape(self.shape[0], nb).T

    @property
    def nbytes(self) -> int:
        return self.data.nbytes + self.indices.nbytes + self.bptr.nbytes


# --------------------------------------------------------------------------- CSR, column-blocked (torch/MKL)
class TorchBlockedCSR:
    """torch's CSR (MKL sparse BLAS on CPU) cut into the same column blocks as :class:`BlockedCSR`:
    one ``sparse_csr_tensor`` per block, with int32 column indices local to the block, and
    ``y = sum_b W_b x_b``, so MKL's gathers from ``x`` stay in L1. The blocks are sized for one
    input vector at every batch (MKL's SpMM tiles the batch itself; blocks of 64 columns, as
    :class:`BlockedCSR` uses at batch 64, would be 144 calls for AlexNet fc6). A layer of one
    block is the plain CSR tensor (``csr``, when given, is shared rather than copied).
    """

    def __init__(self, indptr, indices, data, shape, block_cols: int | None = None, csr=None):
        import scipy.sparse as sp
        import torch

        o, n = int(shape[0]), int(shape[1])
        self.shape = (o, n)
        self.block_cols = int(block_cols) if block_cols else l1_block_cols(n)
        self.n_blocks = max(1, -(-n // self.block_cols))
        S = sp.csr_matrix((np.asarray(data, np.float32), np.asarray(indices), np.asarray(indptr)), shape=(o, n))
        self.blocks, self.nbytes = [], 0
        for c0 in range(0, max(n, 1), self.block_cols):
            c1 = min(n, c0 + self.block_cols)
            if self.n_blocks == 1 and csr is not None:
                t = csr
                B = S
            else:
                B = S[:, c0:c1].tocsr()
                B.sort_indices()
                t = torch.sparse_csr_tensor(torch.from_numpy(B.indptr.astype(np.int32)),
                                            torch.from_numpy(B.indices.astype(np.int32)),
                                            torch.from_numpy(B.data.astype(np.float32)), size=(o, c1 - c0))
            self.blocks.append((c0, c1, t))
            self.nbytes += B.nnz * 8 + (o + 1) * 4  # fp32 values + int32 indices, int32 row pointers

    def mv(self, x):
        """``x``: a 1-D torch tensor."""
        import torch

        if self.n_blocks == 1:  # no slice: a sliced input made MKL's cold product ~10 % slower here
            return torch.mv(self.blocks[0][2], x)
        (c0, c1, t), rest = self.blocks[0], self.blocks[1:]
        y = torch.mv(t, x[c0:c1])
        for c0, c1, t in rest:
            y += torch.mv(t, x[c0:c1])
        return y

    def mm(self, X):
        """``X``: ``[B, in]`` torch tensor -> ``[B, out]``."""
        import torch

        if self.n_blocks == 1:
            return torch.mm(self.blocks[0][2], X.t()).t()
        (c0, c1, t), rest = self.blocks[0], self.blocks[1:]
        yt = torch.mm(t, X[:, c0:c1].t())
        for c0, c1, t in rest:
            yt += torch.mm(t, X[:, c0:c1].t())
        return yt.t()
