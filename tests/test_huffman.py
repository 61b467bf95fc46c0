import heapq
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compression import huffman as H


def _roundtrip(sym, alphabet, chunk=H.DEFAULT_CHUNK, max_len=H.MAX_LEN):
    sym = np.asarray(sym, np.int64)
    lengths = H.code_lengths(np.bincount(sym, minlength=alphabet), max_len=max_len)
    enc = H.encode(sym, lengths, chunk_size=chunk)
    assert len(enc.payload) == (enc.n_bits + 7) // 8
    assert enc.n_bits == int(lengths[sym].astype(np.int64).sum())
    # the offsets survive their compact storage
    offs = H.unpack_offsets(H.pack_offsets(enc), enc.n_symbols, enc.chunk_size, enc.n_bits)
    assert np.array_equal(offs, enc.chunk_offsets)
    dec = H.decode(replace(enc, chunk_offsets=offs), lengths)
    assert np.array_equal(dec, sym)
    return lengths, enc


def _heap_cost(counts):
    """Reference optimal (unlimited) Huffman cost: sum of all merge weights."""
    h = [int(c) for c in counts if c > 0]
    if len(h) == 1:
        return h[0]  # our convention: one symbol costs 1 bit per occurrence
    heapq.heapify(h)
    cost = 0
    while len(h) > 1:
        a, b = heapq.heappop(h), heapq.heappop(h)
        cost += a + b
        heapq.heappush(h, a + b)
    return cost


def test_hand_optimal_lengths():
    # CLRS 16.3 example: a:45 b:13 c:12 d:16 e:9 f:5 -> optimal lengths 1,3,3,3,4,4
    # cost = 45*1 + (13+12+16)*3 + (9+5)*4 = 45 + 123 + 56 = 224 bits
    counts = np.array([45, 13, 12, 16, 9, 5])
    L = H.code_lengths(counts)
    assert L.tolist() == [1, 3, 3, 3, 4, 4]
    assert int((counts * L).sum()) == 224
    # tiny one: 5,2,1,1 -> merges 1+1=2, 2+2=4, 4+5=9 -> lengths 1,2,3,3, cost 5+4+3+3 = 15
    assert H.code_lengths(np.array([5, 2, 1, 1])).tolist() == [1, 2, 3, 3]


def test_canonical_codes_hand():
    # RFC 1951 3.2.2 example: lengths A..H = 3,3,3,3,3,2,4,4
    # -> F=00, A=010, B=011, C=100, D=101, E=110, G=1110, H=1111
    L = np.array([3, 3, 3, 3, 3, 2, 4, 4])
    assert H.canonical_codes(L).tolist() == [0b010, 0b011, 0b100, 0b101, 0b110, 0b00, 0b1110, 0b1111]


def test_encoded_bits_hand():
    # lengths: sym0 = 1 ("0"), sym1 = 2 ("10"), sym2 = 2 ("11"); stream 1,0,2,0 -> 10 0 11 0 = 6 bits
    # -> byte 0b10011000 = 0x98 (zero-padded)
    L = np.array([1, 2, 2])
    enc = H.encode(np.array([1, 0, 2, 0]), L)
    assert enc.n_bits == 6 and enc.payload == bytes([0x98])
    assert H.decode(enc, L).tolist() == [1, 0, 2, 0]


def test_one_symbol_empty_all_distinct():
    L, enc = _roundtrip([7] * 1000, 16)  # one symbol: length 1, one bit each
    assert L[7] == 1 and L.sum() == 1 and enc.n_bits == 1000 and set(enc.payload) == {0}
    L, enc = _roundtrip([], 16)  # empty stream
    assert not L.any() and enc.n_bits == 0 and enc.payload == b""
    assert H.decode(enc, L).size == 0
    L, enc = _roundtrip(np.random.default_rng(0).permutation(1000), 1000, chunk=64)  # all distinct
    assert sorted(set(L.tolist())) == [9, 10] and H.kraft_sum(L) == 1.0  # 1000 leaves: depths 9/10


def test_large_alphabet():
    rng = np.random.default_rng(1)
    sym = rng.permutation(1 << 16)  # every one of 2**16 symbols once: all lengths exactly 16
    L, _ = _roundtrip(sym, 1 << 16, chunk=4096)
    assert (L == 16).all()
    sym = np.minimum(rng.zipf(1.2, 200_000), (1 << 16)) - 1  # skewed over the same alphabet
    L, _ = _roundtrip(sym, 1 << 16)
    assert L.max() <= 16 and H.kraft_sum(L) <= 1.0


def test_length_limit():
    # Fibonacci counts give a maximally deep tree (depth n-1 = 24 unlimited)
    fib = [1, 1]
    while len(fib) < 25:
        fib.append(fib[-1] + fib[-2])
    counts = np.array(fib)
    assert H.code_lengths(counts, max_len=24).max() == 24
    for m in (5, 8, 12, 16):
        L = H.code_lengths(counts, max_len=m)
        assert L.max() <= m and H.kraft_sum(L) == 1.0
        # most frequent symbols never get longer codes than rarer ones
        assert np.all(np.diff(L[np.argsort(counts, kind="stable")].astype(int)) <= 0)
    sym = np.repeat(np.arange(25), counts)
    _roundtrip(sym, 25, chunk=1000, max_len=8)
    with pytest.raises(ValueError):
        H.code_lengths(np.ones(300, np.int64), max_len=8)  # 300 symbols cannot fit 8-bit codes


def test_skewed_bimodal_near_entropy():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(8, 2, 30000), rng.normal(24, 2, 30000)])
    sym = np.clip(np.round(x), 0, 31).astype(np.int64)
    L, enc = _roundtrip(sym, 32, chunk=1000)
    p = np.bincount(sym, minlength=32) / sym.size
    ent = -(p[p > 0] * np.log2(p[p > 0])).sum()
    assert ent <= enc.n_bits / sym.size < ent + 1  # Huffman bound


def test_decoder_detects_bad_streams():
    rng = np.random.default_rng(3)
    sym = rng.integers(0, 8, 5000)
    L = H.code_lengths(np.bincount(sym, minlength=8))
    enc = H.encode(sym, L, chunk_size=500)
    with pytest.raises(H.HuffmanError):  # payload one byte short
        H.decode(replace(enc, payload=enc.payload[:-1]), L)
    with pytest.raises(H.HuffmanError):  # chunk offsets shifted
        H.decode(replace(enc, chunk_offsets=enc.chunk_offsets + 1), L)
    with pytest.raises(H.HuffmanError):  # one symbol fewer than encoded
        H.decode(replace(enc, n_symbols=enc.n_symbols - 1), L)
    with pytest.raises(H.HuffmanError):  # a table that violates Kraft
        H.decode(enc, np.ones(8, np.uint8))
    with pytest.raises(ValueError):  # a symbol with no code
        H.encode(np.array([0, 9]), np.array([1, 1] + [0] * 8))


def test_bittable_method_agrees():
    sym = np.random.default_rng(4).integers(0, 20, 3000)
    L = H.code_lengths(np.bincount(sym, minlength=20))
    enc = H.encode(sym, L, chunk_size=256)
    assert np.array_equal(H.decode(enc, L, method="bittable"), sym)


def test_pack_tables():
    L = np.array([0, 3, 1, 2, 3, 0, 0], np.uint8)  # width 2 bits (max 3)
    data = H.pack_lengths(L)
    assert data[0] == 2 and len(data) == 1 + math.ceil(7 * 2 / 8)
    assert np.array_equal(H.unpack_lengths(data, 7), L)
    assert H.pack_uints([5, 0, 3], 3) == bytes([0b10100001, 0b10000000])  # 101 000 011 + pad
    assert H.unpack_uints(bytes([0b10100001, 0b10000000]), 3, 3).tolist() == [5, 0, 3]
    with pytest.raises(H.HuffmanError):
        H.unpack_lengths(bytes([9]) + data[1:], 7)


@settings(max_examples=120, deadline=None)
@given(
    sym=st.lists(st.integers(0, 40), max_size=400),
    chunk=st.integers(1, 64),
    max_len=st.integers(6, 16),
)
def test_roundtrip_property(sym, chunk, max_len):
    counts = np.bincount(np.asarray(sym, np.int64), minlength=41)
    L, enc = _roundtrip(sym, 41, chunk=chunk, max_len=max_len)
    present = counts > 0
    assert np.array_equal(L > 0, present)
    if present.sum() >= 2:
        assert H.kraft_sum(L) == 1.0  # complete prefix code
        if H.code_lengths(counts, max_len=24).max() <= max_len:
            assert int((counts * L).sum()) == _heap_cost(counts)  # optimal
        assert int((counts * L).sum()) >= _heap_cost(counts)


def test_table_modes_hand():
    # A smooth table (lengths rising with the symbol, as for gaps): lengths 1..16 then 16 again
    # (a complete code). Fixed width: max 16 -> 5 bits: 1 + ceil(17 * 5 / 8) = 12 bytes.
    # Delta: sixteen +1 steps ('100', 3 bits) and one repeat ('0', 1 bit) = 49 bits -> 1 + 7 bytes.
    L = np.array(list(range(1, 17)) + [16], np.uint8)
    assert len(H._pack_fixed(L)) == 12
    data = H.pack_lengths(L)
    assert data[0] == H.TABLE_DELTA and len(data) == 8
    assert np.array_equal(H.unpack_lengths(data, 17), L)
    # Few distinct lengths in no smooth order: the lengths' own Huffman code wins.
    rng = np.random.default_rng(1)
    L2 = rng.choice(np.array([0, 7, 8], np.uint8), size=256, p=[0.5, 0.1, 0.4])
    packed = {H.TABLE_HUFFMAN: H._pack_huffman(L2), H.TABLE_DELTA: H._pack_delta(L2), 4: H._pack_fixed(L2)}  # max 8: 4 bits
    for mode, b in packed.items():
        assert b[0] == mode
    assert len(packed[H.TABLE_HUFFMAN]) < min(len(packed[H.TABLE_DELTA]), len(packed[4]))


@settings(max_examples=150, deadline=None)
@given(counts=st.lists(st.integers(0, 10_000), min_size=1, max_size=700), mode=st.sampled_from(["fixed", "huffman", "delta", "best"]))
def test_table_modes_roundtrip(counts, mode):
    L = H.code_lengths(np.asarray(counts, np.int64))
    pack = {"fixed": H._pack_fixed, "huffman": H._pack_huffman, "delta": H._pack_delta, "best": H.pack_lengths}[mode]
    data = pack(L)
    assert np.array_equal(H.unpack_lengths(data, L.size), L)
    assert len(H.pack_lengths(L)) <= len(data)


def test_damaged_tables_rejected():
    L = H.code_lengths(np.array([50, 20, 20, 5, 5, 1, 1, 0, 0, 3], np.int64))
    for pack in (H._pack_huffman, H._pack_delta):
        data = pack(L)
        with pytest.raises(H.HuffmanError):
            H.unpack_lengths(data + b"\x00", L.size)  # trailing byte
        with pytest.raises(H.HuffmanError):
            H.unpack_lengths(data[:-1], L.size)  # ends early
        bad = 0
        for i in range(1, len(data)):  # any single flipped bit: rejected, or decodes to other valid
            for bit in range(8):  # lengths -- never silently the same table
                d = bytearray(data)
                d[i] ^= 1 << bit
                try:
                    out = H.unpack_lengths(bytes(d), L.size)
                except H.HuffmanError:
                    bad += 1
                    continue
                assert not np.array_equal(out, L)
        assert bad > 0
    with pytest.raises(H.HuffmanError, match="mode"):
        H.unpack_lengths(bytes([0x90, 0]), 4)
