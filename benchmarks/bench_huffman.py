"""Huffman encode + decode of an AlexNet-sized model (synthetic weights), numpy only.

Model: the 8 layers of Caffe AlexNet (61M weights) at the per-layer densities of DC Table 4,
8-bit weight indices for conv and 5-bit for fc, 4-bit relative-index gaps. Pruning masks are
random (independent per position: gaps are geometric); the surviving weights' codebook indices
follow a bimodal histogram (two bumps at 1/4 and 3/4 of the codebook, like trained weights
after pruning). Each layer gives two streams (weight indices incl. fillers, gaps): 16 streams.

For each decoder option the benchmark prints the median of ``--runs`` runs (default 3) of the
time to Huffman-encode and decode every stream (code lengths included), checks the round trip,
and prints the bytes the chunk offsets cost. Usage:

    .venv/bin/python benchmarks/bench_huffman.py [--runs 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compression import huffman as H  # noqa: E402
from compression.sparse_format import decode_relative, encode_relative  # noqa: E402

# name, shape, density (DC Table 4), weight bits
ALEXNET = [
    ("conv1", (96, 3, 11, 11), 0.84, 8),
    ("conv2", (256, 48, 5, 5), 0.38, 8),
    ("conv3", (384, 256, 3, 3), 0.35, 8),
    ("conv4", (384, 192, 3, 3), 0.37, 8),
    ("conv5", (256, 192, 3, 3), 0.37, 8),
    ("fc6", (4096, 9216), 0.09, 5),
    ("fc7", (4096, 4096), 0.09, 5),
    ("fc8", (1000, 4096), 0.25, 5),
]
INDEX_BITS = 4


def bimodal_probs(k: int) -> np.ndarray:
    """Probabilities of codebook indices 1..k-1: two Gaussian bumps at 1/4 and 3/4."""
    x = np.arange(1, k, dtype=np.float64)
    s = max(k / 12, 0.7)
    p = np.exp(-0.5 * ((x - k / 4) / s) ** 2) + np.exp(-0.5 * ((x - 3 * k / 4) / s) ** 2) + 1e-3
    return p / p.sum()


def synth_labels(n: int, density: float, bits: int, rng: np.random.Generator) -> np.ndarray:
    k = 1 << bits
    labels = np.zeros(n, np.uint8 if k <= 256 else np.uint16)
    m = rng.random(n, dtype=np.float32) < density
    cnt = int(m.sum())
    labels[m] = rng.choice(np.arange(1, k), size=cnt, p=bimodal_probs(k)).astype(labels.dtype)
    return labels


def build_streams(seed: int):
    rng = np.random.default_rng(seed)
    streams = []  # (name, symbols, alphabet, n)
    labels = []
    t_sparse_enc = t_sparse_dec = 0.0
    for name, shape, dens, bits in ALEXNET:
        n = int(np.prod(shape))
        lab = synth_labels(n, dens, bits, rng)
        t0 = time.perf_counter()
        sym, gap = encode_relative(lab, INDEX_BITS)
        t1 = time.perf_counter()
        back = decode_relative(sym, gap, n, INDEX_BITS)
        t2 = time.perf_counter()
        assert np.array_equal(back, lab), name
        t_sparse_enc += t1 - t0
        t_sparse_dec += t2 - t1
        labels.append(lab)
        streams.append((f"{name}/w", sym, 1 << bits, n))
        streams.append((f"{name}/gap", gap, 1 << INDEX_BITS, n))
    return streams, labels, t_sparse_enc, t_sparse_dec


def container_roundtrip(labels) -> None:
    """One write + read of the whole synthetic model through compression.container (informational)."""
    import tempfile

    from compression.container import LayerInput, read_compressed, write_compressed

    layers = []
    for (name, shape, _d, bits), lab in zip(ALEXNET, labels):
        cb = np.concatenate([[0.0], np.linspace(-0.05, 0.05, (1 << bits) - 1)]).astype(np.float32)
        layers.append(LayerInput(f"{name}.weight", name, "conv" if name.startswith("conv") else "fc", shape, cb,
                                 lab.reshape(shape), bits, INDEX_BITS))
    raw = {f"{name}.bias": np.zeros(shape[0], np.float32) for name, shape, _d, _b in ALEXNET}
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        rep = write_compressed(Path(d) / "alexnet.dcz", layers, raw, {"model": "alexnet-synthetic"})
        t1 = time.perf_counter()
        sd, _, _ = read_compressed(Path(d) / "alexnet.dcz")
        t2 = time.perf_counter()
    for layer in layers:
        assert np.array_equal(sd[layer.key].numpy(), layer.codebook[layer.labels])
    s = rep["size"]
    print(f"container: write {t1 - t0:.2f} s, read+verify {t2 - t1:.2f} s (one run); file {s['file_bytes'] / 1e6:.2f} MB, "
          f"P+Q {s['pq_bytes'] / 1e6:.2f} MB, ratio P+Q {rep['ratio']['pq']:.1f}x, P+Q+H {rep['ratio']['pqh']:.1f}x")


def run_option(streams, chunk: int, method: str):
    t_enc = t_dec = 0.0
    bits = offs_bytes = 0
    for _name, sym, alphabet, _n in streams:
        t0 = time.perf_counter()
        lengths = H.code_lengths(np.bincount(sym, minlength=alphabet))
        enc = H.encode(sym, lengths, chunk_size=chunk)
        t1 = time.perf_counter()
        dec = H.decode(enc, lengths, method=method)
        t2 = time.perf_counter()
        if not np.array_equal(dec, sym):
            raise AssertionError(f"round trip failed ({method}, chunk {chunk})")
        t_enc += t1 - t0
        t_dec += t2 - t1
        bits += enc.n_bits
        offs_bytes += len(H.pack_offsets(enc))
    return t_enc, t_dec, bits, offs_bytes


def python_decoder_rate(streams, n_bits_sample: int = 200_000) -> float:
    """Seconds per bit of a pure-Python bit-by-bit canonical decoder (on the fc6 weight stream)."""
    sym = streams[10][1]
    lengths = H.code_lengths(np.bincount(sym, minlength=streams[10][2]))
    codes = H.canonical_codes(lengths)
    table = {(int(lengths[s]), int(codes[s])): s for s in np.flatnonzero(lengths)}
    enc = H.encode(sym[: n_bits_sample // 4], lengths)
    bits = np.unpackbits(np.frombuffer(enc.payload, np.uint8))[: enc.n_bits].tolist()
    t0 = time.perf_counter()
    out, code, ln = [], 0, 0
    for b in bits:
        code = (code << 1) | b
        ln += 1
        s = table.get((ln, code))
        if s is not None:
            out.append(s)
            code = ln = 0
    dt = time.perf_counter() - t0
    assert out == sym[: len(out)].tolist()
    return dt / max(1, len(bits))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    streams, labels, t_se, t_sd = build_streams(args.seed)
    n_sym = sum(s[1].size for s in streams)
    n_w = sum(s[3] for s in streams) // 2
    print(f"AlexNet-sized synthetic model: {n_w:,} weights, {len(streams)} streams, {n_sym:,} symbols")
    print(f"relative-index sparse encode {t_se:.2f} s, decode {t_sd:.2f} s (one run, informational)")

    options = [(1024, "window"), (2048, "window"), (4096, "window"), (16384, "window"), (4096, "bittable")]
    results = []
    for chunk, method in options:
        runs = [run_option(streams, chunk, method) for _ in range(args.runs)]
        enc = statistics.median(r[0] for r in runs)
        dec = statistics.median(r[1] for r in runs)
        tot = statistics.median(r[0] + r[1] for r in runs)
        bits, offs = runs[0][2], runs[0][3]
        results.append((chunk, method, enc, dec, tot, bits, offs))
        print(
            f"{method:8s} chunk {chunk:6d}: encode {enc:5.2f} s  decode {dec:5.2f} s  total {tot:5.2f} s"
            f"  (median of {args.runs})  streams {bits / 8 / 1e6:.2f} MB  offsets {offs / 1e3:.1f} KB"
        )
    rate = python_decoder_rate(streams)
    tot_bits = results[0][5]
    print(f"pure-Python bit-by-bit decoder: {rate * 1e6:.2f} us/bit -> ~{rate * tot_bits:.0f} s for the model (extrapolated)")

    # entries-weighted bits, for a sanity look against DC Table 4 (synthetic data: not comparable)
    entries = sum(s[1].size for s in streams if s[0].endswith("/w"))
    print(f"P+Q+H bits per entry (synthetic): {tot_bits / entries:.2f} (weight + index)")
    best = min(results, key=lambda r: r[4])
    print(f"fastest: {best[1]} chunk {best[0]} ({best[4]:.2f} s; target <= 10 s); default chunk {H.DEFAULT_CHUNK}")
    container_roundtrip(labels)


if __name__ == "__main__":
    main()
