"""Speedup and energy of pruned fc layers (DC section 6.3, Tables 8-9, Fig. 9-10).

    python -m experiments.speedup [--reps N] [--threads T] [--checkpoint PATH]
                                  [--sram-mb 8 32] [--out results/speedup]

Writes under ``--out``: timings.csv (one row per device/layer/batch/cache/kernel),
summary.csv (geometric means), layers.csv (sizes and bytes per format), bandwidth.csv,
energy.csv, meta.json, fig9_speedup_{cold,warm}.{png,pdf}, fig10_energy.{png,pdf}.
See docs/speedup.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m experiments.speedup", description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=50, help="timed repetitions per kernel at batch 1 (default 50)")
    p.add_argument("--reps-batch", type=int, default=None,
                   help="timed repetitions at the larger batch (default max(5, reps // 5))")
    p.add_argument("--warmup", type=int, default=5, help="untimed calls per kernel first (default 5)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for torch/MKL and numba (default 1: this machine is shared)")
    p.add_argument("--checkpoint", default=None,
                   help="state_dict / Lightning checkpoint of a pruned AlexNet or VGG-16 (else random masks)")
    p.add_argument("--sram-mb", type=float, nargs="+", default=[8.0, 32.0], help="on-chip SRAM budgets, MB")
    p.add_argument("--out", default="results/speedup")
    p.add_argument("--runs", default="results/runs",
                   help="experiment rows whose compressed files' sizes join the energy estimate")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    p.add_argument("--caches", nargs="+", default=["cold", "warm"], choices=["cold", "warm"])
    p.add_argument("--layers", nargs="*", default=None, help="subset, e.g. alexnet.fc6 vgg16.fc8")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--panel-cols", type=int, default=None,
                   help="inputs per column panel of the compressed-format kernels (default: half the L1 at batch 1, "
                        "none at larger batches; 0 = no panels: the relative stream in the file's order)")
    p.add_argument("--no-gpu", action="store_true", help="skip CUDA even when available")
    p.add_argument("--no-figures", action="store_true")
    return p.parse_args(argv)


def write_csv(path: Path, rows: list[dict]) -> None:
    """One CSV line per dict (columns in first-seen order, floats to 6 significant digits), atomically."""
    import pandas as pd

    from compression.atomic import atomic_write_bytes

    keys = list(dict.fromkeys(k for r in rows for k in r))
    text = pd.DataFrame(rows, columns=keys).to_csv(index=False, float_format="%.6g", lineterminator="\r\n")
    atomic_write_bytes(path, text.encode())


def _md(columns: list[str], lines: list[list[str]]) -> str:
    import pandas as pd

    return pd.DataFrame(lines, columns=columns).to_markdown(index=False, tablefmt="pipe", disable_numparse=True)


def fastest_csr(times: dict) -> float:
    """The smallest time among the CSR kernels (``csr_*``) of ``{kernel: time}``; NaN if none."""
    return min((t for k, t in times.items() if k.startswith("csr_")), default=float("nan"))


def summarize(rows: list[dict]) -> list[dict]:
    from experiments.speedup.bench import geomean

    out = []
    cpu = [r for r in rows if r["device"] == "cpu"]
    for cache in sorted({r["cache"] for r in cpu}):
        for batch in sorted({r["batch"] for r in cpu}):
            sub = [r for r in cpu if r["cache"] == cache and r["batch"] == batch]
            layers = list(dict.fromkeys((r["network"], r["layer"]) for r in sub))
            for k in dict.fromkeys(r["kernel"] for r in sub):
                ks = [r for r in sub if r["kernel"] == k]
                vs = {"csr_torch": [], "best_csr": []}
                for n, l in layers:
                    here = {r["kernel"]: r["median_us"] for r in sub if (r["network"], r["layer"]) == (n, l)}
                    if k in here and "csr_torch" in here:
                        vs["csr_torch"].append(here["csr_torch"] / here[k])
                    if k in here and any(kk.startswith("csr_") for kk in here):
                        vs["best_csr"].append(fastest_csr(here) / here[k])
                out.append({
                    "cache": cache, "batch": batch, "kernel": k, "layers": len(ks),
                    "geomean_speedup_vs_dense": geomean(r["speedup_vs_dense"] for r in ks),
                    "min_speedup_vs_dense": min(r["speedup_vs_dense"] for r in ks),
                    "geomean_bandwidth_bound": geomean(r["bandwidth_bound_speedup"] for r in ks),
                    "geomean_fraction_of_bound": geomean(r["fraction_of_bound"] for r in ks),
                    "min_fraction_of_bound": min(r["fraction_of_bound"] for r in ks),
                    "geomean_speedup_vs_csr_torch": geomean(vs["csr_torch"]),
                    "geomean_speedup_vs_best_csr": geomean(vs["best_csr"]),
                    "geomean_fraction_of_stream_bw": geomean(r["fraction_of_stream_bw"] for r in ks),
                    "max_rel_err": max(r["max_rel_err"] for r in ks),
                })
    return out


def network_totals(rows: list[dict]) -> list[dict]:
    """Per network: the three fc layers' per-input times summed (what one inference pays)."""
    out = []
    cpu = [r for r in rows if r["device"] == "cpu"]
    keys = dict.fromkeys((r["cache"], r["batch"], r["network"]) for r in cpu)
    for cache, batch, net in keys:
        sub = [r for r in cpu if (r["cache"], r["batch"], r["network"]) == (cache, batch, net)]
        tot = {}
        for r in sub:
            tot[r["kernel"]] = tot.get(r["kernel"], 0.0) + r["per_input_us"]
        best = fastest_csr(tot)
        for k, t in tot.items():
            out.append({"cache": cache, "batch": batch, "network": net, "kernel": k,
                        "layers": "+".join(dict.fromkeys(r["layer"] for r in sub)), "per_input_us": t,
                        "speedup_vs_dense": tot["dense"] / t,
                        "speedup_vs_csr_torch": tot["csr_torch"] / t if "csr_torch" in tot else float("nan"),
                        "speedup_vs_best_csr": best / t})
    return out


COMPRESSED = ("relative_numba", "grouped_numba")  # the two kernels that read the compressed format


def markdown_tables(rows: list[dict], summary: list[dict], totals: list[dict], bw: list[dict], meta: dict) -> str:
    """The results as markdown (results/speedup/tables.md, pasted into docs/speedup.md)."""
    from experiments.speedup.layers import PAPER_I7_US, PAPER_TITANX_US

    cpu = [r for r in rows if r["device"] == "cpu"]
    kern = ["csr_torch", "csr_blocked_torch", "csr_scipy", "csr_numba", "csr_blocked_numba", "relative_numba",
            "grouped_numba"]
    lines = [f"CPU: {meta['cpu']['cpu_model']}, {meta['threads']} thread(s); streaming read bandwidth "
             f"{bw[0]['median_GBps']:.1f} GB/s (start), {bw[-1]['median_GBps']:.1f} GB/s (end); load average "
             f"{meta['load_avg_start'][0]:.2f} (start), {meta['load_avg_end'][0]:.2f} (end); "
             f"{meta['reps_batch1']} reps at batch 1, {meta['reps_larger_batch']} at the larger batch, medians.", ""]
    for cache in dict.fromkeys(r["cache"] for r in cpu):
        for batch in dict.fromkeys(r["batch"] for r in cpu):
            sub = [r for r in cpu if r["cache"] == cache and r["batch"] == batch]
            lines += [f"**batch {batch}, {cache} cache** -- per-input time in us; speedup over dense "
                      f"(fraction of its bandwidth bound); the compressed formats also as speed relative to "
                      f"torch/MKL CSR and to the fastest CSR kernel of that layer", "",
                      ]
            cols = ["layer", "dense us", "CSR torch/MKL", "CSR torch/MKL, col.-blocked", "CSR scipy", "CSR numba",
                    "CSR numba, col.-blocked", "compressed, relative stream", "compressed, grouped",
                    "bound CSR / rel. / grouped", "paper i7 CSR"]
            table = []
            for n, l in dict.fromkeys((r["network"], r["layer"]) for r in sub):
                get = {r["kernel"]: r for r in sub if (r["network"], r["layer"]) == (n, l)}
                cells = [f"{n} {l}", f"{get['dense']['per_input_us']:.0f}"]
                for k in kern:
                    r = get[k]
                    c = f"{r['per_input_us']:.0f} ({r['speedup_vs_dense']:.2f}x, {r['fraction_of_bound']:.2f})"
                    if k in COMPRESSED:
                        best = fastest_csr({kk: v["median_us"] for kk, v in get.items()})
                        c += (f", {get['csr_torch']['median_us'] / r['median_us']:.2f}x MKL, "
                              f"{best / r['median_us']:.2f}x best CSR")
                    cells.append(c)
                cells.append(" / ".join(f"{get[k]['bandwidth_bound_speedup']:.1f}x"
                                        for k in ("csr_torch", *COMPRESSED)))
                p = PAPER_I7_US.get((n, l), {})
                cells.append(f"{p[f'dense_b{batch}'] / p[f'sparse_b{batch}']:.2f}x" if f"dense_b{batch}" in p else "")
                table.append(cells)
            cells = ["**geomean**", ""]
            for k in kern:
                s_ = next(s_ for s_ in summary if (s_["cache"], s_["batch"], s_["kernel"]) == (cache, batch, k))
                c = f"**{s_['geomean_speedup_vs_dense']:.2f}x** ({s_['geomean_fraction_of_bound']:.2f}; " \
                    f"min {s_['min_fraction_of_bound']:.2f})"
                if k in COMPRESSED:
                    c += (f", **{s_['geomean_speedup_vs_csr_torch']:.2f}x MKL, "
                          f"{s_['geomean_speedup_vs_best_csr']:.2f}x best CSR**")
                cells.append(c)
            cells.append(" / ".join(
                f"{next(s_ for s_ in summary if (s_['cache'], s_['batch'], s_['kernel']) == (cache, batch, k))['geomean_bandwidth_bound']:.1f}x"
                for k in ("csr_torch", *COMPRESSED)))
            from experiments.speedup.bench import geomean

            pv = [p[f"dense_b{batch}"] / p[f"sparse_b{batch}"] for (n, l), p in PAPER_I7_US.items()
                  if f"dense_b{batch}" in p and any((r["network"], r["layer"]) == (n, l) for r in sub)]
            cells.append(f"{geomean(pv):.2f}x" if pv else "")
            table.append(cells)
            lines += [_md(cols, table), ""]
    gpu = [r for r in rows if r["device"] != "cpu"]
    if gpu:
        lines += [f"**{gpu[0]['device']}, warm** -- cuBLAS (dense) vs cuSPARSE (torch CSR), per-input us", ""]
        table = []
        for n, l, b in dict.fromkeys((r["network"], r["layer"], r["batch"]) for r in gpu):
            get = {r["kernel"]: r for r in gpu if (r["network"], r["layer"], r["batch"]) == (n, l, b)}
            p = PAPER_TITANX_US.get((n, l), {})
            paper = f"{p[f'dense_b{b}'] / p[f'sparse_b{b}']:.2f}x" if f"dense_b{b}" in p else ""
            table.append([f"{n} {l}", str(b), f"{get['dense']['per_input_us']:.1f}",
                          f"{get['csr_torch']['per_input_us']:.1f}", f"{get['csr_torch']['speedup_vs_dense']:.2f}x", paper])
        lines += [_md(["layer", "batch", "dense us", "CSR us", "CSR over dense", "paper Titan X CSR over dense"], table),
                  ""]
    lines += ["**fc6+fc7+fc8 summed, per input (us)**", ""]
    table = []
    for cache, batch, net in dict.fromkeys((t["cache"], t["batch"], t["network"]) for t in totals):
        g = {t["kernel"]: t for t in totals if (t["cache"], t["batch"], t["network"]) == (cache, batch, net)}
        table.append([net, str(batch), cache, *(f"{g[k]['per_input_us']:.0f}" for k in (
            "dense", "csr_torch", "csr_blocked_torch", "csr_numba", "csr_blocked_numba", "relative_numba",
            "grouped_numba")),
            f"{g['relative_numba']['speedup_vs_csr_torch']:.2f}x / {g['grouped_numba']['speedup_vs_csr_torch']:.2f}x",
            f"{g['relative_numba']['speedup_vs_best_csr']:.2f}x / {g['grouped_numba']['speedup_vs_best_csr']:.2f}x"])
    lines.append(_md(["network", "batch", "cache", "dense", "CSR torch", "CSR torch col.-blocked", "CSR numba",
                      "CSR numba col.-blocked", "compressed, relative", "compressed, grouped",
                      "relative / grouped vs CSR torch", "relative / grouped vs fastest CSR"], table))
    return "\n".join(lines) + "\n"


def print_table(rows: list[dict], summary: list[dict]) -> None:
    cpu = [r for r in rows if r["device"] == "cpu"]
    for cache in dict.fromkeys(r["cache"] for r in cpu):
        for batch in dict.fromkeys(r["batch"] for r in cpu):
            print(f"\n== CPU, batch {batch}, {cache} cache: per-input us (speedup over dense, fraction of bandwidth bound)")
            sub = [r for r in cpu if r["cache"] == cache and r["batch"] == batch]
            kern = list(dict.fromkeys(r["kernel"] for r in sub))
            print("layer".ljust(14) + "".join(k.rjust(26) for k in kern))
            for n, l in dict.fromkeys((r["network"], r["layer"]) for r in sub):
                cells = []
                for k in kern:
                    r = next(r for r in sub if (r["network"], r["layer"], r["kernel"]) == (n, l, k))
                    cells.append(f"{r['per_input_us']:.0f} ({r['speedup_vs_dense']:.2f}x, {r['fraction_of_bound']:.2f})")
                print(f"{n}.{l}".ljust(14) + "".join(c.rjust(26) for c in cells))
            cells = []
            for k in kern:
                s = next(s for s in summary if (s["cache"], s["batch"], s["kernel"]) == (cache, batch, k))
                cells.append(f"{s['geomean_speedup_vs_dense']:.2f}x, {s['geomean_fraction_of_bound']:.2f}")
            print("geomean".ljust(14) + "".join(c.rjust(26) for c in cells))


def _git() -> dict:
    """The commit the benchmark ran from, and whether its code differed from it (as in result rows)."""
    from experiments.results import git_info

    g = git_info(Path(__file__).resolve().parents[2])
    return {"git_commit": g.get("git_commit"), "git_dirty": g.get("git_dirty")}


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from experiments.speedup import bench, energy, figures
    from experiments.speedup.bandwidth import read_bandwidth
    from compression.kernels import set_threads
    from experiments.speedup.layers import checkpoint_layers, paper_layers

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    set_threads(args.threads)
    reps_batch = args.reps_batch or max(5, args.reps // 5)
    t_start = time.time()
    load_start = os.getloadavg()
    import numba
    import scipy

    meta = {
        "command": " ".join([os.path.basename(sys.executable), "-m", "experiments.speedup", *(argv or sys.argv[1:])]),
        "started": _dt.datetime.now().isoformat(timespec="seconds"), "threads": args.threads,
        "torch_threads": torch.get_num_threads(), "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": None, "reps_batch1": args.reps, "reps_larger_batch": reps_batch,
        "warmup": args.warmup, "caches": args.caches, "batches": args.batches, "seed": args.seed,
        "relative_panel_cols": "default" if args.panel_cols is None else args.panel_cols,
        "weights": f"checkpoint:{args.checkpoint}" if args.checkpoint else "random masks at the paper's densities",
        "cpu": bench.cpu_info(), "load_avg_start": load_start, **_git(),
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
                     "scipy": scipy.__version__, "numba": numba.__version__},
        "torch_mkl": torch.backends.mkl.is_available(),
        "torch_config": torch.__config__.show().splitlines()[:6],
    }
    gpu = torch.cuda.is_available() and not args.no_gpu
    meta["gpu"] = (torch.cuda.get_device_name(0) if gpu else
                   "skipped: " + ("--no-gpu" if args.no_gpu else "torch.cuda.is_available() is False"))
    print(f"CPU: {meta['cpu']['cpu_model']} ({meta['cpu']['logical_cpus']} logical CPUs, "
          f"LLC {meta['cpu']['llc_bytes'] >> 20} MB), threads={args.threads}, load avg {load_start[0]:.2f}")
    print(f"GPU: {meta['gpu']}")

    bw = [{"when": "start", **read_bandwidth(threads=args.threads)}]
    bw_gbs = bw[0]["median_GBps"]
    try:
        meta["numba_threading_layer"] = numba.threading_layer()
    except ValueError:
        pass
    print(f"streaming read bandwidth: {bw_gbs:.1f} GB/s ({args.threads} thread(s))")
    flusher = bench.Flusher() if "cold" in args.caches else None

    rows, layer_info = [], []
    layers = checkpoint_layers(args.checkpoint) if args.checkpoint else paper_layers(args.seed, args.layers)
    for i, layer in enumerate(layers):
        t0 = time.time()
        from compression.kernels import GroupedLayer, RelativeLayer

        rel = RelativeLayer(layer.symbols, layer.gaps, layer.codebook, layer.shape, layer.index_bits, args.threads,
                            panel_cols=args.panel_cols)
        grp = GroupedLayer(layer.symbols, layer.gaps, layer.codebook, layer.shape, layer.index_bits, args.threads,
                           panel_cols=args.panel_cols)
        nb = bench.layer_bytes(layer, rel, 1, grouped=grp)
        layer_info.append({
            "network": layer.network, "layer": layer.name, "source": layer.source,
            "out_features": layer.out_features, "in_features": layer.in_features, "weights": layer.dense.size,
            "target_density": layer.target_density, "density": layer.density, "nnz": layer.nnz,
            "entries": layer.entries, "fillers": layer.fillers, "index_bits": layer.index_bits,
            "weight_bits": layer.weight_bits, "symbol_dtype": str(layer.symbols.dtype),
            "gap_dtype": str(layer.gaps.dtype), "csr_index_dtype": str(layer.indices.dtype),
            "dense_weight_bytes": nb["dense"]["weight_bytes"], "csr_weight_bytes": nb["csr"]["weight_bytes"],
            "relative_panels": rel.n_panels, "relative_entries": rel.entries,
            "relative_weight_bytes": nb["relative"]["weight_bytes"],
            "relative_packed_weight_bytes": nb["relative_packed"]["weight_bytes"],
            "grouped_panels": grp.n_panels, "grouped_blocks": grp.blocks, "grouped_slots": grp.slots,
            "grouped_pad_fraction": (grp.slots - layer.nnz) / max(layer.nnz, 1),
            "grouped_weight_bytes": nb["grouped"]["weight_bytes"],
            "csr_bound_b1": nb["dense"]["total_bytes"] / nb["csr"]["total_bytes"],
            "relative_bound_b1": nb["dense"]["total_bytes"] / nb["relative"]["total_bytes"],
            "grouped_bound_b1": nb["dense"]["total_bytes"] / nb["grouped"]["total_bytes"],
        })
        del rel, grp
        for batch in args.batches:
            reps = args.reps if batch == 1 else reps_batch
            rows += bench.bench_layer_cpu(layer, batch, args.threads, reps, args.warmup, args.caches, flusher,
                                          bw_gbs, seed=args.seed + i, panel_cols=args.panel_cols)
            if gpu:
                rows += bench.bench_layer_gpu(layer, batch, reps, args.warmup, seed=args.seed + i)
        print(f"  {layer.network}.{layer.name} {layer.shape} density {layer.density:.3f} "
              f"({layer.fillers} fillers): {time.time() - t0:.0f} s", flush=True)
        del layer
        gc.collect()
    del flusher
    bw.append({"when": "end", **read_bandwidth(threads=args.threads)})
    meta["load_avg_end"] = os.getloadavg()
    meta["wall_s"] = round(time.time() - t_start, 1)
    for r in rows:
        r["load_run_start"], r["load_run_end"] = load_start[0], meta["load_avg_end"][0]
        r["cpu_model"] = meta["cpu"]["cpu_model"]

    summary = summarize(rows)
    e_rows = energy.network_rows(args.sram_mb) + energy.our_network_rows(args.runs, args.sram_mb)
    stacks = []
    for net in dict.fromkeys(L["network"] for L in layer_info):
        ls = [L for L in layer_info if L["network"] == net]
        agg = {k: sum(L[k] for L in ls) for k in ("weights", "nnz", "entries", "dense_weight_bytes",
                                                     "csr_weight_bytes", "relative_weight_bytes",
                                                     "relative_packed_weight_bytes")}
        stacks.append({"network": net, "layer": "+".join(L["layer"] for L in ls), **agg})
    for r in energy.layer_rows(stacks, args.sram_mb):
        r["scope"] = "fc stack"
        e_rows.append(r)

    write_csv(out / "timings.csv", rows)
    write_csv(out / "summary.csv", summary)
    totals = network_totals(rows)
    write_csv(out / "network_totals.csv", totals)
    write_csv(out / "layers.csv", layer_info)
    write_csv(out / "bandwidth.csv", bw)
    write_csv(out / "energy.csv", e_rows)
    (out / "tables.md").write_text(markdown_tables(rows, summary, totals, bw, meta))
    (out / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    if not args.no_figures:
        for cache in args.caches:
            figures.speedup_figure(rows, out, cache, f", {meta['cpu']['cpu_model']}, {args.threads} thread(s), "
                                                     f"median of {args.reps} (batch 1) / {reps_batch} reps")
        figures.energy_figure(e_rows, out, args.sram_mb)
    print_table(rows, summary)
    print("\n== fc6+fc7+fc8 per input, summed (us): " + "; ".join(
        f"{t['network']} b{t['batch']} {t['cache']} {t['kernel']} {t['per_input_us']:.0f}"
        for t in totals if t["kernel"] in ("dense", "csr_torch", "csr_blocked_torch", "csr_blocked_numba", *COMPRESSED)))
    print(f"\nbandwidth: start {bw[0]['median_GBps']:.1f} GB/s, end {bw[1]['median_GBps']:.1f} GB/s; "
          f"load avg start {load_start[0]:.2f}, end {meta['load_avg_end'][0]:.2f}; {meta['wall_s']} s; wrote {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
