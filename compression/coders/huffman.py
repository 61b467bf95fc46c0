"""Canonical Huffman coding of both streams (DC section 4), the paper's coder.

Thin adapter over ``compression.huffman`` (the algorithm): the table is the packed code lengths,
the offsets the delta-coded chunk starts.
"""

from __future__ import annotations

import numpy as np

from compression import huffman
from compression.coders import CodedStream, EntropyCoder


class Huffman(EntropyCoder):
    name = "huffman"

    def __init__(self, max_len: int = huffman.MAX_LEN):
        self.max_len = int(max_len)

    def encode(self, symbols: np.ndarray, alphabet: int, chunk: int) -> CodedStream:
        counts = np.bincount(symbols, minlength=alphabet) if symbols.size else np.zeros(alphabet, np.int64)
        lengths = huffman.code_lengths(counts, self.max_len)
        enc = huffman.encode(symbols, lengths, chunk_size=chunk)
        return CodedStream(huffman.pack_lengths(lengths), enc.payload, huffman.pack_offsets(enc), enc.n_bits)

    def present(self, table: bytes, alphabet: int) -> np.ndarray:
        return huffman.unpack_lengths(table, alphabet) > 0

    def decode(self, stream: CodedStream, count: int, alphabet: int, chunk: int) -> np.ndarray:
        lengths = huffman.unpack_lengths(stream.table, alphabet)
        offs = huffman.unpack_offsets(stream.offsets, count, chunk, stream.n_bits)
        return huffman.decode(huffman.EncodedStream(stream.payload, count, stream.n_bits, chunk, offs), lengths)

    def cost_bits(self, symbols: np.ndarray, alphabet: int) -> int:
        counts = np.bincount(np.asarray(symbols, dtype=np.int64), minlength=alphabet)
        lengths = huffman.code_lengths(counts, self.max_len)
        return int((counts * lengths.astype(np.int64)).sum()) + 8 * len(huffman.pack_lengths(lengths))


CODER = Huffman
