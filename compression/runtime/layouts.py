"""How the runtime holds each compressed weight matrix in memory, and which way it chooses.

Three layouts, all built once from the file's codebook and labels and never expanded to fp32:

* ``stream5`` / ``stream8``: DC's relative-index stream (section 2, Fig. 2) with 5- or 8-bit gaps:
  one uint8 codebook symbol and one uint8 gap per entry, cut into column panels that fit the L1
  cache, run by :class:`compression.kernels.RelativeLayer`. With 5-bit gaps its fast path reads
  eight gaps with one 64-bit load; with 8 bits it has fewer fillers but walks entry by entry,
  1.8x slower per entry here (0.78 against 0.43 ns on a LeNet-300 ip1-like matrix). The file's
  own gap width is what its Huffman coding preferred, so the runtime chooses again.
* ``blocks``: the weight-grouped blocks of :mod:`compression.runtime.blocks` (1.6 bytes per slot;
  its kernel does about half the loads of the stream's, and was 1.6-2.4x faster per fc layer at
  batch 1 here).

The rule (:func:`plan`): every layer first takes its smallest layout (the fastest of those within
2 % of it); then the fc layers, largest first, each take the fastest layout that keeps the
weights' resident bytes within ``budget`` x the file's bytes (default 1.95; the runtime's target
is at most 2x). Fastest: ``blocks``, then
``stream5`` (unless it holds 1.8x the entries of ``stream8``), then ``stream8``. Conv layers keep
their smallest layout: most run dense-decoded (:mod:`compression.runtime.modules`). Codebooks of
more than 512 entries cannot use ``blocks``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads, njit

from compression.kernels import _JIT, RelativeLayer, _rel_mv_chunk, l1_block_cols
from compression.runtime.blocks import MAX_SYMBOLS, SERIAL_BYTES, BlockWeights, nonzeros
from compression.sparse_format import encode_relative

GAP_BITS = (5, 8)  # compression.kernels.SWAR_MAX_BITS, and the widest uint8 gap
WIDE_COST = 1.8  # time per entry of the 8-bit stream over the 5-bit one (see the module docstring)
DEFAULT_BUDGET = 1.95
NEAR = 1.02  # layouts within 2 % of the smallest count as the smallest
_u = np.uint64


def stream_entries(labels: np.ndarray, bits: int, panel_cols: int, nz=None) -> int:
    """Entries (non-zeros + fillers) of a label matrix encoded panel by panel at ``bits``-bit gaps."""
    o, n = labels.shape
    r, c = nonzeros(labels) if nz is None else nz
    p = c // panel_cols
    if n > panel_cols:
        order = np.argsort(p, kind="stable")  # panel-major; row-major within a panel
        p, r, c = p[order], r[order], c[order]
    width = np.minimum(n - p * panel_cols, panel_cols)
    pos = r * width + (c - p * panel_cols)  # the position in the panel's own row-major order
    first = np.concatenate([[True], p[1:] != p[:-1]]) if p.size else np.zeros(0, bool)
    dist = np.where(first, pos + 1, pos - np.concatenate([[0], pos[:-1]]))
    return int(p.size + ((dist - 1) >> bits).sum())


@njit(**_JIT)
def _stream_dense(sym, gap, cb, chunks, panel_cols, n_in, n_out):
    w = np.zeros(n_out * n_in, np.float32)
    for b in range(chunks.shape[0]):  # each panel is a relative-index stream of its own
        c0 = b * panel_cols
        width = min(n_in, c0 + panel_cols) - c0
        pos = np.int64(-1)
        for e in range(chunks[b, 0, 0], chunks[b, chunks.shape[1] - 1, 1]):
            pos += np.int64(gap[_u(e)]) + 1
            s = sym[_u(e)]
            if s != 0:
                r = pos // width
                w[_u(r * n_in + c0 + pos - r * width)] = cb[_u(s)]
    return w


@njit(**_JIT)
def _rel_mv1(sym, gap, gap64, cb, x, y0, chunks, panel_cols, n_in, n_out, swar, check_allmax, allmax):
    """``y0 +`` ``compression.kernels._rel_mv`` on the calling thread (small layers: no parallel region)."""
    y = y0.copy()
    for c in range(chunks.shape[1]):
        for b in range(chunks.shape[0]):
            c0 = b * panel_cols
            c1 = min(n_in, c0 + panel_cols)
            _rel_mv_chunk(sym, gap, gap64, cb, x[c0:c1], y, chunks[b, c, 0], chunks[b, c, 1], chunks[b, c, 2],
                          chunks[b, c, 3], c1 - c0, swar, check_allmax, allmax)
    return y


class StreamWeights:
    """A weight matrix ``[out, in]`` held as the relative-index stream (see the module docstring);
    the same ``mv`` / ``mm`` / ``dense`` / ``nbytes`` as :class:`BlockWeights`."""

    def __init__(self, labels: np.ndarray, codebook: np.ndarray, n_threads: int = 1, bits: int = 5):
        labels = np.asarray(labels)
        self.shape = (int(labels.shape[0]), int(labels.shape[1]))
        self.bits = int(bits)
        self.layout = f"stream{self.bits}"
        symbols, gaps = encode_relative(labels.reshape(-1), self.bits)
        self.kernel = RelativeLayer(symbols, gaps, codebook, self.shape, self.bits, n_threads,
                                    panel_cols=l1_block_cols(self.shape[1]))
        self.codebook = self.kernel.codebook
        self.serial = self.nbytes <= SERIAL_BYTES
        self._zeros = np.zeros(self.shape[0], np.float32)

    @property
    def nbytes(self) -> int:
        return self.kernel.nbytes

    @staticmethod
    def estimate(labels: np.ndarray, codebook_size: int, n_threads: int = 1, bits: int = 5,
                 nz=None) -> tuple[int, int]:
        """(bytes, entries) the layout will hold."""
        o, n = labels.shape
        pc = l1_block_cols(n)
        entries = stream_entries(labels, bits, pc, nz)
        sym_bytes = 1 if codebook_size <= 256 else 2
        return ((1 + sym_bytes) * entries + 4 * codebook_size + 32 * max(1, -(-n // pc)) * max(1, int(n_threads)),
                entries)

    def mv(self, x: np.ndarray, y0: np.ndarray | None = None) -> np.ndarray:
        """``y0 + W x``; ``y0`` (the bias) defaults to zeros."""
        k = self.kernel
        if self.serial or get_num_threads() == 1:
            return _rel_mv1(k.symbols, k.gaps, k.gap64, k.codebook, x, self._zeros if y0 is None else y0, k.chunks,
                            k.panel_cols, self.shape[1], self.shape[0], k.swar, k.check_allmax, k.allmax)
        y = k.mv(x)
        if y0 is not None:
            y += y0
        return y

    def mm(self, X: np.ndarray) -> np.ndarray:
        return self.kernel.mm(np.asarray(X, dtype=np.float32))

    def dense(self) -> np.ndarray:
        k = self.kernel
        return _stream_dense(k.symbols, k.gaps, k.codebook, k.chunks, k.panel_cols, self.shape[1],
                             self.shape[0]).reshape(self.shape)


LAYOUTS = {"blocks": BlockWeights,
           "stream5": lambda labels, codebook, n_threads=1: StreamWeights(labels, codebook, n_threads, 5),
           "stream8": lambda labels, codebook, n_threads=1: StreamWeights(labels, codebook, n_threads, 8)}


def candidates(parts: list[np.ndarray], codebook_size: int, n_threads: int = 1) -> dict[str, int]:
    """``{layout: resident bytes}`` of one layer (all its parts), fastest first (the module docstring)."""
    nzs = [nonzeros(p) for p in parts]
    streams = {}
    for bits in GAP_BITS:
        est = [StreamWeights.estimate(p, codebook_size, n_threads, bits, nz) for p, nz in zip(parts, nzs)]
        streams[f"stream{bits}"] = (sum(b for b, _ in est), sum(e for _, e in est))
    order = ["stream5", "stream8"] if streams["stream5"][1] <= WIDE_COST * streams["stream8"][1] else \
        ["stream8", "stream5"]
    out = {}
    if codebook_size <= MAX_SYMBOLS:
        out["blocks"] = sum(BlockWeights.estimate_nbytes(p, codebook_size, n_threads, nz) for p, nz in zip(parts, nzs))
    out.update({k: streams[k][0] for k in order})
    return out


def parts_of(labels: np.ndarray, groups: int = 1) -> list[np.ndarray]:
    """A layer's label tensor as the 2-D matrices the kernels multiply: ``[out, in]`` (fc), or per
    convolution group ``[out / groups, in / groups * kh * kw]``."""
    m = np.asarray(labels).reshape(labels.shape[0], -1)
    step = m.shape[0] // max(1, groups)
    return [m[g * step:(g + 1) * step] for g in range(max(1, groups))]


def plan(layers: list[dict], file_bytes: int, budget: float = DEFAULT_BUDGET, n_threads: int = 1,
         extra_bytes: int = 0) -> dict[str, str]:
    """Choose each layer's layout (the rule in the module docstring).

    ``layers``: dicts with ``key``, ``kind``, ``parts`` (2-D label matrices) and ``codebook_size``;
    ``extra_bytes``: what else the runtime keeps resident (biases, ...). Returns ``{key: layout}``.
    """
    sizes = {L["key"]: candidates(L["parts"], L["codebook_size"], n_threads) for L in layers}
    # the smallest; of layouts within NEAR of it, the fastest (stream5 over stream8 for 0.1 % more fillers)
    choice = {k: next(v for v, b in s.items() if b <= NEAR * min(s.values())) for k, s in sizes.items()}
    total = extra_bytes + sum(sizes[k][v] for k, v in choice.items())
    limit = budget * file_bytes if math.isfinite(budget) else math.inf
    for L in sorted((L for L in layers if L["kind"] == "fc"), key=lambda L: -min(sizes[L["key"]].values())):
        k = L["key"]
        for layout, nbytes in sizes[k].items():  # fastest first
            if layout == choice[k]:
                break
            if total + nbytes - sizes[k][choice[k]] <= limit:
                total += nbytes - sizes[k][choice[k]]
                choice[k] = layout
                break
    return choice
