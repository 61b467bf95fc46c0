"""Timing harness: every kernel of one layer, interleaved, warm and cold caches.

* Interleaved: each repetition runs every kernel once, in an order rotated by one each time,
  so load from other processes on this shared machine hits all kernels alike.
* ``cold``: before each timed call, a read-only sweep of a buffer 3x the last-level cache
  evicts the weights (as in one inference of a whole network, where the other layers'
  weights pass through the cache in between), then the input is read again (it was just
  produced by the previous layer). ``warm``: back-to-back calls, weights may stay cached.
* Statistics per kernel: median, 10th/90th percentile, min, mean over the timed reps
  (warm-up calls are not recorded).
"""

from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path

import numpy as np

from compression import kernels as K
from experiments.speedup.bandwidth import blocked_csr_bytes, csr_bytes, dense_bytes, grouped_bytes, relative_bytes

FORMAT_OF = {"dense": "dense", "csr_torch": "csr", "csr_scipy": "csr", "csr_numba": "csr",
             "csr_blocked_numba": "csr_blocked",
             "csr_blocked_torch": "csr_blocked_torch", "relative_numba": "relative", "grouped_numba": "grouped"}
KERNEL_LABEL = {"dense": "dense (torch/MKL GEMV, GEMM)", "csr_torch": "CSR (torch/MKL sparse)",
                "csr_scipy": "CSR (scipy)", "csr_numba": "CSR (numba)",
                "csr_blocked_numba": "CSR, column-blocked (numba)",
                "csr_blocked_torch": "CSR, column-blocked (torch/MKL sparse, one call per block)",
                "relative_numba": "compressed format, relative-index stream (numba)",
                "grouped_numba": "compressed format, weight-grouped blocks (numba)"}


def cpu_info() -> dict:
    info = {"machine": platform.machine(), "processor": platform.processor(), "cpu_model": "unknown",
            "logical_cpus": os.cpu_count()}
    try:
        txt = Path("/proc/cpuinfo").read_text()
        m = re.search(r"model name\s*:\s*(.+)", txt)
        if m:
            info["cpu_model"] = m.group(1).strip()
        for key in ("cpu family", "model", "flags"):
            m = re.search(rf"^{key}\s*:\s*(.+)$", txt, re.M)
            if m and key != "flags":
                info[key.replace(" ", "_")] = m.group(1).strip()
            elif m:
                info["avx512f"] = "avx512f" in m.group(1).split()
    except OSError:
        pass
    info["llc_bytes"] = llc_bytes()
    return info


def llc_bytes(default: int = 32 << 20) -> int:
    return max((b for _, _, b in K.cache_sizes()), default=0) or default


class Flusher:
    """Evict the caches by reading a buffer of ``factor`` x the last-level cache."""

    def __init__(self, factor: int = 3):
        self.buf = np.ones(max(factor * llc_bytes(), 64 << 20) // 4, np.float32)
        K.stream_sum(self.buf)

    def __call__(self, touch=None):
        K.stream_sum(self.buf)
        if touch is not None:
            for a in touch:
                K.stream_sum(a.reshape(-1))


def time_interleaved(fns: dict, reps: int, warmup: int, flush: Flusher | None = None, touch=()) -> dict:
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    out = {n: [] for n in names}
    for r in range(reps):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            if flush is not None:
                flush(touch)
            t0 = time.perf_counter()
            fns[n]()
            out[n].append(time.perf_counter() - t0)
    return {n: np.array(v) for n, v in out.items()}


def stats_us(ts: np.ndarray) -> dict:
    us = ts * 1e6
    return {"median_us": float(np.median(us)), "p10_us": float(np.percentile(us, 10)),
            "p90_us": float(np.percentile(us, 90)), "min_us": float(us.min()), "mean_us": float(us.mean()),
            "reps": int(us.size)}


def cpu_kernels(layer, batch: int, threads: int, rng: np.random.Generator, panel_cols: int | None = None):
    """(callables, inputs to re-read after a flush, {"relative": RelativeLayer, "grouped": GroupedLayer,
    "csr_blocked": BlockedCSR}) for one layer/batch. Both compressed-format kernels are built from
    the layer's relative-index stream (``panel_cols`` applies to both)."""
    import scipy.sparse as sp
    import torch

    o, n = layer.shape
    W = torch.from_numpy(layer.dense)
    csr_t = torch.sparse_csr_tensor(torch.from_numpy(layer.indptr), torch.from_numpy(layer.indices),
                                    torch.from_numpy(layer.data), size=(o, n))
    S = sp.csr_matrix((layer.data, layer.indices, layer.indptr), shape=(o, n))
    rel = K.RelativeLayer(layer.symbols, layer.gaps, layer.codebook, layer.shape, layer.index_bits, threads,
                          panel_cols=panel_cols, batch=batch)
    grp = K.GroupedLayer(layer.symbols, layer.gaps, layer.codebook, layer.shape, layer.index_bits, threads,
                         panel_cols=panel_cols, batch=batch)
    blk = K.BlockedCSR(layer.indptr, layer.indices, layer.data, layer.shape, batch=batch, n_threads=threads)
    tblk = K.TorchBlockedCSR(layer.indptr, layer.indices, layer.data, layer.shape, csr=csr_t)
    ip, ix, dt = layer.indptr, layer.indices, layer.data
    if batch == 1:
        x = rng.standard_normal(n, dtype=np.float32)
        xt = torch.from_numpy(x)
        fns = {
            "dense": lambda: torch.mv(W, xt),
            "csr_torch": lambda: torch.mv(csr_t, xt),
            "csr_scipy": lambda: S @ x,
            "csr_numba": lambda: K.csr_mv(ip, ix, dt, x, o),
            "csr_blocked_numba": lambda: blk.mv(x),
            # one block is the plain CSR tensor: then the same call as csr_torch (a method call in
            # between measured ~5 % slower cold, from Python objects the cache flush had evicted)
            "csr_blocked_torch": (lambda: tblk.mv(xt)) if tblk.n_blocks > 1 else (lambda: torch.mv(csr_t, xt)),
            "relative_numba": lambda: rel.mv(x),
            "grouped_numba": lambda: grp.mv(x),
        }
        touch = (x,)
    else:
        X = rng.standard_normal((batch, n), dtype=np.float32)
        Xt = torch.from_numpy(X)
        fns = {
            "dense": lambda: torch.mm(Xt, W.t()),
            "csr_torch": lambda: torch.mm(csr_t, Xt.t()).t(),
            "csr_scipy": lambda: (S @ np.ascontiguousarray(X.T)).T,
            "csr_numba": lambda: K.csr_mm(ip, ix, dt, X, o),
            "csr_blocked_numba": lambda: blk.mm(X),
            "csr_blocked_torch": (lambda: tblk.mm(Xt)) if tblk.n_blocks > 1 else (lambda: torch.mm(csr_t, Xt.t()).t()),
            "relative_numba": lambda: rel.mm(X),
            "grouped_numba": lambda: grp.mm(X),
        }
        touch = (X,)
    return fns, touch, {"relative": rel, "grouped": grp, "csr_blocked": blk, "csr_blocked_torch": tblk}


def max_rel_err(y, ref) -> float:
    y = np.asarray(y.numpy() if hasattr(y, "numpy") else y, dtype=np.float64).reshape(ref.shape)
    scale = max(float(np.abs(ref).max()), 1e-30)
    return float(np.abs(y - ref).max() / scale)


def layer_bytes(layer, rel, batch: int, blocked=None, grouped=None, torch_blocked=None) -> dict:
    o, n = layer.shape
    out = {
        "csr_blocked": blocked_csr_bytes(o, n, layer.nnz, blocked.n_blocks if blocked is not None else 1, batch),
        "dense": dense_bytes(o, n, batch),
        "csr": csr_bytes(o, n, layer.nnz, batch, layer.indices.itemsize, layer.indptr.itemsize),
        "relative": relative_bytes(o, n, rel.entries, layer.codebook.size, batch, layer.symbols.itemsize,
                                   layer.gaps.itemsize, rel.chunks.nbytes),
        "relative_packed": relative_bytes(o, n, rel.entries, layer.codebook.size, batch,
                                          layer.weight_bits / 8, layer.index_bits / 8, rel.chunks.nbytes),
    }
    if torch_blocked is not None:
        out["csr_blocked_torch"] = blocked_csr_bytes(o, n, layer.nnz, torch_blocked.n_blocks, batch)
    if grouped is not None:
        out["grouped"] = grouped_bytes(o, n, grouped.slots, grouped.blocks, grouped.n_panels, layer.codebook.size,
                                       batch, grouped.syms.itemsize, grouped.start_rows.nbytes)
    return out


def bench_layer_cpu(layer, batch: int, threads: int, reps: int, warmup: int, caches, flusher, bandwidth_GBps,
                    seed: int = 0, panel_cols: int | None = None) -> list[dict]:
    """All CPU kernels of one layer at one batch size; one row per (cache, kernel)."""
    rng = np.random.default_rng(seed)
    fns, touch, objs = cpu_kernels(layer, batch, threads, rng, panel_cols)
    ref = np.asarray(fns["dense"]().numpy(), dtype=np.float64)  # each kernel is checked against dense
    errs = {k: max_rel_err(f(), ref) for k, f in fns.items()}
    nbytes = layer_bytes(layer, objs["relative"], batch, objs["csr_blocked"], objs["grouped"], objs["csr_blocked_torch"])
    rows = []
    for cache in caches:
        load0 = os.getloadavg()[0]
        ts = time_interleaved(fns, reps, warmup, flusher if cache == "cold" else None, touch)
        load1 = os.getloadavg()[0]
        t_dense = float(np.median(ts["dense"]))
        for k, t in ts.items():
            fmt = FORMAT_OF[k]
            st = stats_us(t)
            b = nbytes[fmt]["total_bytes"]
            bound = nbytes["dense"]["total_bytes"] / b
            speedup = t_dense / float(np.median(t))
            rows.append({
                "device": "cpu", "network": layer.network, "layer": layer.name, "source": layer.source,
                "out_features": layer.out_features, "in_features": layer.in_features,
                "density": round(layer.density, 6), "nnz": layer.nnz, "entries": layer.entries,
                "fillers": layer.fillers, "index_bits": layer.index_bits, "weight_bits": layer.weight_bits,
                "csr_blocks": objs["csr_blocked"].n_blocks,
                "csr_torch_blocks": objs["csr_blocked_torch"].n_blocks, "relative_panels": objs["relative"].n_panels,
                "grouped_panels": objs["grouped"].n_panels, "grouped_slots": objs["grouped"].slots,
                "batch": batch, "cache": cache, "kernel": k, "format": fmt, "threads": threads, **st,
                "per_input_us": st["median_us"] / batch,
                "speedup_vs_dense": speedup,
                "speedup_p10": float(np.percentile(ts["dense"], 50) / np.percentile(t, 90)),
                "speedup_p90": float(np.percentile(ts["dense"], 50) / np.percentile(t, 10)),
                "bytes": b, "weight_bytes": nbytes[fmt]["weight_bytes"],
                "bandwidth_bound_speedup": bound, "fraction_of_bound": speedup / bound,
                "achieved_GBps": b / (st["median_us"] * 1e-6) / 1e9,
                "fraction_of_stream_bw": b / (st["median_us"] * 1e-6) / 1e9 / bandwidth_GBps,
                "max_rel_err": errs[k], "load_start": load0, "load_end": load1,
            })
    return rows


def bench_layer_gpu(layer, batch: int, reps: int, warmup: int, seed: int = 0, device: str = "cuda") -> list[dict]:
    """cuBLAS (torch.mv/mm) vs cuSPARSE (torch CSR) on the current CUDA device, warm only, timed
    with CUDA events. ``device="cpu"`` runs the same path with wall-clock timing (how the tests
    check it on machines without a GPU)."""
    import torch

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    o, n = layer.shape
    W = torch.from_numpy(layer.dense).to(dev)
    csr_t = torch.sparse_csr_tensor(torch.from_numpy(layer.indptr), torch.from_numpy(layer.indices),
                                    torch.from_numpy(layer.data), size=(o, n)).to(dev)
    g = torch.Generator(device="cpu").manual_seed(seed)
    if batch == 1:
        x = torch.randn(n, generator=g).to(dev)
        fns = {"dense": lambda: torch.mv(W, x), "csr_torch": lambda: torch.mv(csr_t, x)}
    else:
        X = torch.randn(batch, n, generator=g).to(dev)
        fns = {"dense": lambda: torch.mm(X, W.t()), "csr_torch": lambda: torch.mm(csr_t, X.t()).t()}
    ref = fns["dense"]().double().cpu().numpy()
    errs = {k: max_rel_err(f().double().cpu(), ref) for k, f in fns.items()}
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for _ in range(warmup):
        for f in fns.values():
            f()
    sync()
    ts = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            if cuda:
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                f()
                b.record()
                sync()
                ts[k].append(a.elapsed_time(b) * 1e-3)
            else:
                t0 = time.perf_counter()
                f()
                ts[k].append(time.perf_counter() - t0)
    t_dense = float(np.median(ts["dense"]))
    name = f"cuda:{torch.cuda.get_device_name(dev)}" if cuda else str(dev)
    rows = []
    for k, t in ts.items():
        st = stats_us(np.array(t))
        rows.append({"device": name, "network": layer.network,
                     "layer": layer.name, "source": layer.source, "out_features": o, "in_features": n,
                     "density": round(layer.density, 6), "nnz": layer.nnz, "batch": batch, "cache": "warm",
                     "kernel": k, "format": FORMAT_OF[k], **st, "per_input_us": st["median_us"] / batch,
                     "speedup_vs_dense": t_dense / float(np.median(t)), "max_rel_err": errs[k]})
    return rows


def geomean(xs) -> float:
    xs = np.asarray(list(xs), dtype=np.float64)
    return float(np.exp(np.log(xs).mean())) if xs.size else float("nan")
