"""Memory-traffic model of each format, and the machine's streaming-read bandwidth.

Bytes one batch must move (each counted once, at the width actually stored):

* dense fp32: ``out * in * 4``
* CSR: values ``nnz * 4`` + column indices ``nnz * idx`` + row pointers ``(out + 1) * ptr``
  (``idx``/``ptr``: 4 for the int32 arrays the benchmark uses); column-blocked CSR: the same
  plus one row-pointer array per extra block
* relative-index stream: ``entries * (symbol bytes + gap bytes)`` (1 + 1 as run) + the fp32
  codebook ``K * 4`` + the thread-chunk table (32 bytes per chunk)
* weight-grouped blocks: ``slots * 2`` (uint16 column indices, pads included) + ``blocks *
  symbol bytes`` + block pointers ``(panels * out + 1) * 4`` + the codebook + the thread table
  (8 bytes per chunk)
* every format also reads the input ``in * 4 * B`` and writes the output ``out * 4 * B``.

If the product is memory-bound, ``time >= bytes / bandwidth`` and the speedup of a format
over dense can be at most ``bytes(dense) / bytes(format)``: the *bandwidth bound*.
"""

from __future__ import annotations

import time

import numpy as np

FP32 = 4


def activation_bytes(out_f: int, in_f: int, batch: int) -> int:
    return (in_f + out_f) * FP32 * batch


def dense_bytes(out_f: int, in_f: int, batch: int = 1) -> dict:
    w = out_f * in_f * FP32
    a = activation_bytes(out_f, in_f, batch)
    return {"weight_bytes": w, "activation_bytes": a, "total_bytes": w + a}


def csr_bytes(out_f: int, in_f: int, nnz: int, batch: int = 1, idx_bytes: int = 4, ptr_bytes: int = 4) -> dict:
    w = nnz * FP32 + nnz * idx_bytes + (out_f + 1) * ptr_bytes
    a = activation_bytes(out_f, in_f, batch)
    return {"weight_bytes": w, "activation_bytes": a, "total_bytes": w + a}


def blocked_csr_bytes(out_f: int, in_f: int, nnz: int, n_blocks: int, batch: int = 1) -> dict:
    """CSR cut into ``n_blocks`` column blocks: int32 indices, ``n_blocks`` row-pointer arrays."""
    w = nnz * FP32 + nnz * 4 + n_blocks * (out_f + 1) * 4
    a = activation_bytes(out_f, in_f, batch)
    return {"weight_bytes": w, "activation_bytes": a, "total_bytes": w + a}


def relative_bytes(out_f: int, in_f: int, entries: int, codebook_size: int, batch: int = 1,
                   symbol_bytes: float = 1, gap_bytes: float = 1, chunk_table_bytes: int = 32) -> dict:
    """``symbol_bytes``/``gap_bytes`` may be fractional (``bits / 8``) for the packed variant."""
    w = int(np.ceil(entries * (symbol_bytes + gap_bytes))) + codebook_size * FP32 + chunk_table_bytes
    a = activation_bytes(out_f, in_f, batch)
    return {"weight_bytes": w, "activation_bytes": a, "total_bytes": w + a}


def grouped_bytes(out_f: int, in_f: int, slots: int, blocks: int, panels: int, codebook_size: int,
                  batch: int = 1, symbol_bytes: int = 1, chunk_table_bytes: int = 8) -> dict:
    """The weight-grouped layout (:class:`compression.kernels.GroupedLayer`)."""
    w = slots * 2 + blocks * symbol_bytes + (panels * out_f + 1) * 4 + codebook_size * FP32 + chunk_table_bytes
    a = activation_bytes(out_f, in_f, batch)
    return {"weight_bytes": w, "activation_bytes": a, "total_bytes": w + a}


def read_bandwidth(nbytes: int = 256 << 20, reps: int = 10, threads: int = 1) -> dict:
    """Streaming-read bandwidth (GB/s = 1e9 B/s) of a numba sum over an fp32 buffer far
    larger than the last-level cache, with ``threads`` numba threads."""
    from compression.kernels import set_threads, stream_sum

    set_threads(threads)
    buf = np.ones(nbytes // FP32, np.float32)
    stream_sum(buf)  # compile + first touch
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        stream_sum(buf)
        ts.append(time.perf_counter() - t0)
    ts = np.array(ts)
    gbs = buf.nbytes / ts / 1e9
    return {"buffer_mb": buf.nbytes / 2**20, "reps": reps, "threads": threads,
            "median_GBps": float(np.median(gbs)), "p10_GBps": float(np.percentile(gbs, 10)),
            "p90_GBps": float(np.percentile(gbs, 90)), "max_GBps": float(gbs.max())}
