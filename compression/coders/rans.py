"""Range asymmetric numeral systems (rANS; Duda 2013) for both streams, with constriction's coder.

Huffman spends a whole number of bits per symbol, so a stream whose most frequent symbol has
probability 0.6 costs at least 1 bit for it where its information is 0.74 bits; an arithmetic or
ANS coder gets within a fraction of a percent of the stream's empirical entropy. The coder itself is
``constriction`` (Bamler 2022, a maintained Rust library with Python bindings: its stack-based
``AnsCoder`` with a ``Categorical`` model); this module only stores the model.

The table is the stream's model: per symbol a level ``L`` in 0..24 (0: absent), the symbol's
probability being proportional to ``2^(-(L - 1) / r)`` -- its frequency on a log scale at a resolution
of ``1/r`` bits (``r`` = 1, 2 or 3, whichever makes table + payload smallest; a symbol rarer than the
scale reaches gets the smallest level). The levels are packed as Huffman's code tables are
(``huffman.pack_levels``: fixed width, Huffman-coded or delta-coded, the smallest), so a smooth
distribution such as the gaps' costs a few bits per symbol; a probability off by up to half a step
costs well under 0.01 bits per coded symbol. Both sides rebuild the same ``Categorical`` from the same
levels, so they use bit-identical probabilities. The payload is the coder's 32-bit words,
little-endian; one stream is one chunk (no offsets).

An ANS stream pays a fixed cost Huffman does not: the coder's final state, one or two 32-bit words.
On a stream of a few hundred to a few thousand symbols whose Huffman code is already close to its
entropy, that can outweigh what ANS saves (measured on the committed files, ``benchmarks/
bench_coders.py``: LeNet-300-100's ip2 gaps, 2,710 symbols, 38 bits more). So each stream is coded
both ways and the smaller kept: the table's first byte is the resolution ``r`` for ANS, or 0 for a
stream stored as canonical Huffman (``compression.coders.huffman``: its table, payload and offsets
follow). The file never grows by choosing rANS.

On streams of a few thousand symbols over a wide alphabet the table is the other half of the cost,
so the encoder also tries tables whose rarest symbols share one level (a cap below ``MAX_LEVEL``): a
cruder model of the tail, but fewer distinct levels to store. It estimates table + payload for every
(resolution, cap) and codes the two best exactly beside the full tables (``_candidates``); the format
is the same, a level per symbol.
"""

from __future__ import annotations

import numpy as np

from compression.coders import CodedStream, EntropyCoder
from compression.coders.huffman import Huffman
from compression.huffman import pack_levels, unpack_levels

RESOLUTIONS = (1, 2, 3)  # levels per bit of probability
MAX_LEVEL = 24


def _counts(symbols: np.ndarray, alphabet: int) -> np.ndarray:
    return np.bincount(symbols, minlength=alphabet) if symbols.size else np.zeros(alphabet, np.int64)


def _levels(counts: np.ndarray, r: int, cap: int = MAX_LEVEL) -> np.ndarray:
    """Per symbol 0 (absent) or 1 + round(r * log2(max count / count)), at most ``cap``."""
    out = np.zeros(counts.size, np.int64)
    present = counts > 0
    if present.any():
        ratio = counts[present].max() / counts[present]
        out[present] = np.minimum(1 + np.round(r * np.log2(ratio)).astype(np.int64), cap)
    return out


def _estimate_bits(counts: np.ndarray, levels: np.ndarray, r: int) -> float:
    """Table + payload bits of one model, estimated without coding: the table's packed size, the
    stream's cross-entropy under the model, and the coder's final state (one 32-bit word)."""
    present = levels > 0
    payload = 0.0  # an empty stream: the table and the final state only
    if present.any():
        logp = -(levels[present] - 1) / r
        payload = -float((counts[present] * (logp - np.log2(np.exp2(logp).sum()))).sum())
    return 8 * (1 + len(pack_levels(levels))) + payload + 32


def _candidates(counts: np.ndarray, keep: int = 2) -> list[tuple[int, int]]:
    """The (resolution, cap) pairs worth coding exactly: the ``keep`` smallest by ``_estimate_bits``.
    A lower cap gives every symbol rarer than it one shared level -- a cruder model of the tail, but a
    table with fewer distinct levels, which is what a stream of a few thousand symbols over a wide
    alphabet (a layer's gaps) pays most for. The file format is the same: the table holds the levels."""
    scored = []
    for r in RESOLUTIONS:
        full = _levels(counts, r)
        for cap in range(2, int(full.max()) + 1 if full.any() else 3):
            scored.append((_estimate_bits(counts, np.minimum(full, cap), r), r, cap))
    return [(r, cap) for _, r, cap in sorted(scored)[:keep]]


def _model(levels: np.ndarray, r: int):
    import constriction

    present = np.flatnonzero(levels)
    p = np.exp2(-(levels[present] - 1) / r)
    return present, constriction.stream.model.Categorical((p / p.sum()).astype(np.float64), perfect=False)


HUFFMAN_MODE = 0  # the table's first byte for a stream stored as Huffman


def _read_table(table: bytes, alphabet: int) -> tuple[np.ndarray, int]:
    if len(table) < 2 or table[0] not in RESOLUTIONS:
        raise ValueError("bad rANS table")
    return unpack_levels(table[1:], alphabet).astype(np.int64), table[0]


class RANS(EntropyCoder):
    name = "rans"

    def _encode_with(self, symbols: np.ndarray, alphabet: int, r: int, cap: int = MAX_LEVEL,
                     counts: np.ndarray | None = None) -> CodedStream:
        import constriction

        if counts is None:
            counts = _counts(symbols, alphabet)
        levels = _levels(counts, r, cap)
        table = bytes([r]) + pack_levels(levels)
        present = np.flatnonzero(levels)
        if symbols.size == 0 or present.size <= 1:  # nothing to code: the table says it all
            return CodedStream(table, b"", b"", 0)
        _, model = _model(levels, r)
        index = np.full(alphabet, -1, np.int64)
        index[present] = np.arange(present.size)
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(index[symbols].astype(np.int32), model)
        words = coder.get_compressed().astype("<u4")
        return CodedStream(table, words.tobytes(), b"", 32 * int(words.size))

    def _options(self, symbols: np.ndarray, alphabet: int) -> list[CodedStream]:
        """Every resolution at the full level range, and the two best (resolution, cap) estimates."""
        counts = _counts(symbols, alphabet)  # once for every option
        pairs = [(r, MAX_LEVEL) for r in RESOLUTIONS]
        pairs += [p for p in _candidates(counts) if p not in pairs]
        return [self._encode_with(symbols, alphabet, r, cap, counts) for r, cap in pairs]

    def encode(self, symbols: np.ndarray, alphabet: int, chunk: int) -> CodedStream:
        symbols = np.asarray(symbols, np.int64).ravel()
        options = self._options(symbols, alphabet)
        h = Huffman().encode(symbols, alphabet, chunk)
        options.append(CodedStream(bytes([HUFFMAN_MODE]) + h.table, h.payload, h.offsets, h.n_bits))
        return min(options, key=lambda s: 8 * len(s.table) + 8 * len(s.offsets) + s.n_bits)

    def present(self, table: bytes, alphabet: int) -> np.ndarray:
        if table[:1] == bytes([HUFFMAN_MODE]):
            return Huffman().present(table[1:], alphabet)
        return _read_table(table, alphabet)[0] > 0

    def decode(self, stream: CodedStream, count: int, alphabet: int, chunk: int) -> np.ndarray:
        import constriction

        if stream.table[:1] == bytes([HUFFMAN_MODE]):
            return Huffman().decode(CodedStream(stream.table[1:], stream.payload, stream.offsets, stream.n_bits),
                                    count, alphabet, chunk)
        levels, r = _read_table(stream.table, alphabet)
        present = np.flatnonzero(levels)
        if count == 0:
            return np.zeros(0, np.int64)
        if present.size == 0:
            raise ValueError(f"{count} symbols but an empty model")
        if present.size == 1:
            if stream.n_bits:
                raise ValueError("a one-symbol stream carries no payload")
            return np.full(count, present[0], np.int64)
        if stream.n_bits % 32 or len(stream.payload) * 8 != stream.n_bits:
            raise ValueError("rANS payload is not whole 32-bit words")
        _, model = _model(levels, r)
        coder = constriction.stream.stack.AnsCoder(np.frombuffer(stream.payload, "<u4").astype(np.uint32))
        out = coder.decode(model, count)
        if not coder.is_empty():
            raise ValueError("rANS stream has words left over after its symbols")
        return present[np.asarray(out, np.int64)]

    def cost_bits(self, symbols: np.ndarray, alphabet: int) -> int:
        """The bits ``encode`` spends on the stream and its table, without Huffman's chunk offsets (as
        ``Huffman.cost_bits``): the smallest rANS resolution, or Huffman plus the mode byte."""
        symbols = np.asarray(symbols, np.int64).ravel()
        options = self._options(symbols, alphabet)
        return min(min(s.n_bits + 8 * len(s.table) for s in options), 8 + Huffman().cost_bits(symbols, alphabet))


CODER = RANS
