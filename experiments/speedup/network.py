"""Whole networks from their compressed files: torch dense, torch CSR and the runtime (DC Fig. 9, per network).

    python -m experiments.speedup.network [--reps 40] [--reps-batch 10] [--threads 1 2] [--batches 1 64]
                                          [--caches cold warm] [--max-load 0.5 --wait 1800]
                                          [--out results/speedup/network]

Per network -- the file of the row Table 1 uses (``experiments.analysis.rows.paper_recipe``): the
LeNets' complete rows, the storage-only AlexNet (the paper's Caffe model) and VGG-16 -- three models:

* ``dense``: ``compression.architecture.decode_model`` (fp32 weights, torch/MKL/oneDNN);
* ``csr``: ``compression.runtime.load(backend="torch")``: every fc layer a torch CSR tensor (MKL
  sparse BLAS), the rest decoded dense;
* ``runtime``: ``compression.runtime.load``: the compressed kernels (``docs/runtime.md``).

Two parts: ``network`` (the whole forward on ``[B, C, H, W]`` inputs) and ``classifier`` (the fc
layers chained as the model's layer specs declare them -- fc6, ReLU, fc7, ReLU, fc8 -- on ``[B,
features]``, with the model's own modules). Cold: as ``experiments.speedup.bench``, the models'
calls interleaved, each after a read of 3x the last-level cache; warm: each model's calls back to
back (``time_consecutive``); median and percentiles; every output checked against dense. A GPU
(``--device cuda``) runs dense and CSR only, warm, timed with CUDA events. Writes timings.csv, memory.csv, conv.csv, meta.json,
tables.md, fig9_network.{png,pdf} under ``--out``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

VARIANTS = ("dense", "csr", "runtime")
LABEL = {"dense": "torch dense", "csr": "torch CSR (decoded)", "runtime": "runtime (compressed)"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m experiments.speedup.network", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default="results/runs", help="experiment rows and their .dcz files")
    p.add_argument("--networks", nargs="+", default=["lenet300", "lenet5", "alexnet", "vgg16"])
    p.add_argument("--parts", nargs="+", default=["network", "classifier"], choices=["network", "classifier"])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--caches", nargs="+", default=["cold", "warm"], choices=["cold", "warm"])
    p.add_argument("--reps", type=int, default=40, help="timed calls per model at batch 1 (default 40)")
    p.add_argument("--reps-batch", type=int, default=10, help="timed calls at larger batches (default 10)")
    p.add_argument("--budget-s", type=float, default=60.0,
                   help="fewer reps (at least 3) where one setting's calls would take longer than this")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--max-load", type=float, default=None,
                   help="wait (up to --wait seconds) until the 1-minute load average is at most this")
    p.add_argument("--wait", type=float, default=1800.0)
    p.add_argument("--device", default=None, help="also time dense and CSR on this device (default: cuda, if any)")
    p.add_argument("--out", default="results/speedup/network")
    p.add_argument("--no-figures", action="store_true")
    return p.parse_args(argv)


def files(runs_dir, networks) -> dict[str, Path]:
    """Each network's compressed file: the one of the row Table 1 uses."""
    from experiments import paper_values as pv
    from experiments.analysis import rows as R

    df = R.load_runs(runs_dir)
    out = {}
    for net in networks:
        _, row = R.paper_recipe(df, pv.NETWORKS[net]["experiment"])
        path = Path(runs_dir) / pv.NETWORKS[net]["experiment"] / f"{row['run_id']}.dcz" if row is not None else None
        if path is None or not path.is_file():
            raise SystemExit(f"error: no compressed file for {net} under {runs_dir} (run its experiment first)")
        out[net] = path
    return out


def classifier(model):
    """The model's fc layers chained as its layer specs say (``next``, ``via``), from its own modules:
    the trailing run of fc specs, e.g. fc6 -> ReLU -> fc7 -> ReLU -> fc8; with its input width."""
    from torch import nn

    specs = model.layer_specs()
    chain = []
    for s in reversed(specs):
        if s.kind != "fc" or (chain and (s.next != chain[0].name or s.via not in ("relu", "identity"))):
            break
        chain.insert(0, s)
    mods = []
    for s in chain:
        mods.append(model.get_submodule(s.module))
        if s.next is not None and s.via == "relu":
            mods.append(nn.ReLU())
    first = mods[0]
    return nn.Sequential(*mods).eval(), int(first.in_features), "+".join(s.name for s in chain)


def input_shape(model_meta: dict) -> tuple[int, ...]:
    from compression.architecture import architecture

    a = architecture(model_meta)
    return (a.get("in_channels", 1), a.get("image_size", 28), a.get("image_size", 28))


def stats_ms(ts) -> dict:
    ms = np.asarray(ts) * 1e3
    return {"median_ms": float(np.median(ms)), "p10_ms": float(np.percentile(ms, 10)), "p90_ms": float(
        np.percentile(ms, 90)), "min_ms": float(ms.min()), "mean_ms": float(ms.mean()), "reps": int(ms.size)}


def max_rel_err(y, ref) -> float:
    y, ref = y.detach().double().cpu(), ref.detach().double().cpu()
    return float((y - ref).abs().max() / max(float(ref.abs().max()), 1e-30))


def bench_cpu(net, part, models, x, batch, threads, caches, reps, warmup, budget_s, flusher) -> list[dict]:
    """Every model on one input, interleaved; one row per (cache, variant)."""
    import torch

    from experiments.speedup.bench import time_interleaved

    fns = {v: (lambda m=m: m(x)) for v, m in models.items()}
    with torch.inference_mode():
        for _ in range(max(1, warmup)):  # the runtime's first call also measures its conv layers' two ways
            t0 = time.perf_counter()
            outs = {v: f() for v, f in fns.items()}
            per_call = (time.perf_counter() - t0) / len(fns)  # the last round's
            if per_call > 1.0:  # calls of seconds (VGG-16 at batch 64): one round warms them
                break
        errs = {v: max_rel_err(y, outs["dense"]) for v, y in outs.items()}
        reps = max(3, min(reps, int(budget_s / max(per_call * len(fns), 1e-9))))
        rows = []
        for cache in caches:
            load0 = os.getloadavg()[0]
            if cache == "cold":
                ts = time_interleaved(fns, reps, 0, flusher, (x.numpy(),))
            else:
                ts = time_consecutive(fns, reps, settle=per_call < 1.0)
            load1 = os.getloadavg()[0]
            dense = float(np.median(ts["dense"]))
            for v, t in ts.items():
                st = stats_ms(t)
                rows.append({"device": "cpu", "network": net, "part": part, "batch": batch, "threads": threads,
                             "cache": cache, "variant": v, **st, "per_input_ms": st["median_ms"] / batch,
                             "speedup_vs_dense": dense / float(np.median(t)),
                             "speedup_p10": dense / float(np.percentile(t, 90)),
                             "speedup_p90": dense / float(np.percentile(t, 10)),
                             "max_rel_err": errs[v], "load_start": load0, "load_end": load1})
    return rows


def time_consecutive(fns: dict, reps: int, block: int = 5, settle: bool = True) -> dict:
    """Warm: each model's calls back to back, ``block`` timed calls after an untimed one, the models'
    order rotating per block (single interleaved calls would let a 1 MB dense LeNet-300 stay in the
    1 MB L2 while the others evict the runtime's 50 KB: not warm for both)."""
    names, out, r = list(fns), {n: [] for n in fns}, 0
    while min(len(v) for v in out.values()) < reps:
        k, r = r % len(names), r + 1
        for n in names[k:] + names[:k]:
            if settle:
                fns[n]()
            for _ in range(min(block, reps - len(out[n]))):
                t0 = time.perf_counter()
                fns[n]()
                out[n].append(time.perf_counter() - t0)
    return {n: np.array(v) for n, v in out.items()}


def bench_device(net, part, models, x, batch, reps, warmup, device) -> list[dict]:
    """Dense and CSR on a torch device (CUDA events on a GPU; the wall clock elsewhere, as the tests run it)."""
    import torch

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    x = x.to(dev)
    fns = {v: (lambda m=m: m(x)) for v, m in models.items()}
    with torch.inference_mode():
        outs = {v: f() for v, f in fns.items()}
        errs = {v: max_rel_err(y, outs["dense"]) for v, y in outs.items()}
        for _ in range(warmup):
            for f in fns.values():
                f()
        sync()
        ts = {v: [] for v in fns}
        for _ in range(reps):
            for v, f in fns.items():
                if cuda:
                    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    a.record()
                    f()
                    b.record()
                    sync()
                    ts[v].append(a.elapsed_time(b) * 1e-3)
                else:
                    t0 = time.perf_counter()
                    f()
                    ts[v].append(time.perf_counter() - t0)
    name = f"cuda:{torch.cuda.get_device_name(dev)}" if cuda else str(dev)
    dense = float(np.median(ts["dense"]))
    return [{"device": name, "network": net, "part": part, "batch": batch, "threads": torch.get_num_threads(),
             "cache": "warm", "variant": v, **stats_ms(t), "per_input_ms": float(np.median(t)) * 1e3 / batch,
             "speedup_vs_dense": dense / float(np.median(t)), "max_rel_err": errs[v]} for v, t in ts.items()]


def load_models(path, device="cpu") -> dict:
    from compression.architecture import decode_model
    from compression.runtime import load

    models = {"dense": decode_model(path).eval().to(device), "csr": load(path, backend="torch", device=device)}
    if str(device) == "cpu":
        models["runtime"] = load(path)
    return models


def memory_rows(net, path, runtime, csr) -> list[dict]:
    from compression.runtime.memory import memory_report

    rep, rows = memory_report(runtime), []
    c = rep["caches"]
    held_csr = sum(t.numel() * t.element_size() for t in (*csr.parameters(), *csr.buffers())) + sum(
        getattr(m, "weight_nbytes", 0) for m in csr.modules())
    for scope in ("network", "classifier"):
        d = rep[scope]
        rows.append({"network": net, "file": path.name, "scope": scope, "layers": d.get("layers", "all"),
                     "resident_bytes": d["resident_bytes"], "file_bytes": d["file_bytes"],
                     "dense_bytes": d["dense_bytes"], "resident_over_file": d["resident_bytes"] / d["file_bytes"],
                     "csr_resident_bytes": held_csr if scope == "network" else None,
                     **{k: v for k, v in d.items() if "_fits_" in k}, "l2_bytes": c["l2_bytes"],
                     "llc_bytes": c["llc_bytes"]})
    for r in rep["layers"]:
        rows.append({"network": net, "file": path.name, "scope": "layer", "layers": r["layer"],
                     "runs_as": r["runs_as"], "resident_bytes": r["resident_bytes"], "file_bytes": r["file_bytes"],
                     "dense_bytes": r["dense_bytes"], "resident_over_file": r["resident_bytes"] / r["file_bytes"]})
    return rows


def conv_rows(net, runtime) -> list[dict]:
    from compression.runtime.modules import CompressedConv2d

    out = []
    for name, m in runtime.named_modules():
        if isinstance(m, CompressedConv2d):
            for (shape, tt, nt), way in m.choices.items():
                t = m.timings[(shape, tt, nt)]
                out.append({"network": net, "layer": m.name, "input": "x".join(map(str, shape)), "threads": tt,
                            "chose": way, "dense_ms": t["dense_s"] * 1e3,
                            "sparse_ms": None if t["sparse_s"] is None else t["sparse_s"] * 1e3,
                            "layout": "+".join(sorted({p.layout for p in m.parts}))})
    return out


def wait_for_quiet(max_load: float | None, wait_s: float) -> dict:
    t0 = time.time()
    while max_load is not None and os.getloadavg()[0] > max_load and time.time() - t0 < wait_s:
        print(f"load average {os.getloadavg()[0]:.2f} > {max_load}: waiting", flush=True)
        time.sleep(30)
    load = os.getloadavg()
    return {"load_avg_start": load, "waited_s": round(time.time() - t0), "max_load": max_load,
            "quiet": max_load is None or load[0] <= max_load}


def main(argv=None) -> int:
    args = parse_args(argv)
    import numba
    import torch

    from compression.container import inspect
    from compression.kernels import set_threads
    from experiments.speedup import bench
    from experiments.speedup.__main__ import _git, write_csv

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = files(args.runs, args.networks)
    quiet = wait_for_quiet(args.max_load, args.wait)
    device = args.device or ("cuda" if torch.cuda.is_available() else None)
    meta = {"command": " ".join(["python", "-m", "experiments.speedup.network", *(argv or sys.argv[1:])]),
            "started": _dt.datetime.now().isoformat(timespec="seconds"), **quiet, **_git(),  # as the per-layer run
            "files": {n: str(p) for n, p in paths.items()}, "threads": args.threads, "batches": args.batches,
            "caches": args.caches, "reps_batch1": args.reps, "reps_larger_batch": args.reps_batch,
            "budget_s": args.budget_s, "warmup": args.warmup, "cpu": bench.cpu_info(),
            "gpu": device or "not run: torch.cuda.is_available() is False",
            "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
                         "numba": numba.__version__}}
    print(f"CPU {meta['cpu']['cpu_model']}, load average {quiet['load_avg_start'][0]:.2f}; GPU: {meta['gpu']}",
          flush=True)
    flusher = bench.Flusher() if "cold" in args.caches else None
    t_start = time.time()
    rows, mem, convs = [], [], []
    rng = np.random.default_rng(0)
    for net, path in paths.items():
        models = load_models(path)
        mem += memory_rows(net, path, models["runtime"], models["csr"])
        shape = input_shape(inspect(path, decode=False)["meta"])
        heads = {v: classifier(m) for v, m in models.items()}
        for threads in args.threads:
            torch.set_num_threads(threads)
            set_threads(threads)
            for batch in args.batches:
                for part in args.parts:
                    if part == "network":
                        x, ms = rng.standard_normal((batch, *shape), dtype=np.float32), models
                    else:
                        x = rng.standard_normal((batch, heads["dense"][1]), dtype=np.float32)
                        ms = {v: h[0] for v, h in heads.items()}
                    r = bench_cpu(net, part, ms, torch.from_numpy(x), batch, threads, args.caches,
                                  args.reps if batch == 1 else args.reps_batch, args.warmup, args.budget_s, flusher)
                    for row in r:
                        row["layers"] = "all" if part == "network" else heads["dense"][2]
                    rows += r
                    _print(r)
        convs += conv_rows(net, models["runtime"])
        if device and device != "cpu":
            dm = load_models(path, device)
            hd = {v: classifier(m) for v, m in dm.items()}
            for batch in args.batches:
                rows += bench_device(net, "network", dm, torch.randn(batch, *shape), batch, 20, 3, device)
                rows += bench_device(net, "classifier", {v: h[0] for v, h in hd.items()},
                                     torch.randn(batch, hd["dense"][1]), batch, 20, 3, device)
        del models
    meta["load_avg_end"] = os.getloadavg()
    meta["wall_s"] = round(time.time() - t_start, 1)
    write_csv(out / "timings.csv", rows)
    write_csv(out / "memory.csv", mem)
    write_csv(out / "conv.csv", convs)
    (out / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    (out / "tables.md").write_text(tables(rows, mem, convs, meta))
    if not args.no_figures:
        figure(rows, out, meta)
    print(f"wrote {out}/ in {meta['wall_s']} s; load average {meta['load_avg_end'][0]:.2f} at the end")
    return 0


def _print(rows) -> None:
    for r in (r for r in rows if r["variant"] == "dense"):
        cells = ", ".join(f"{s['variant']} {_ratio_cell(s)}" for s in rows if s["cache"] == r["cache"])
        print(f"{r['network']:8s} {r['part']:10s} batch {r['batch']:3d} {r['threads']}T {r['cache']}: {cells}", flush=True)


def _ratio_cell(r) -> str:
    return f"{r['median_ms']:.3f} ({r['speedup_vs_dense']:.2f}x)"


def tables(rows, mem, convs, meta) -> str:
    """tables.md: the timings (median ms, speedup over dense), memory, the conv layers' choices."""
    lines = [f"CPU: {meta['cpu']['cpu_model']}; load average {meta['load_avg_start'][0]:.2f} at the start, "
             f"{meta['load_avg_end'][0]:.2f} at the end; commit {meta['git_commit']} (dirty: {meta['git_dirty']}); "
             f"GPU: {meta['gpu']}.", "",
             "Median ms per call (speedup over torch dense; p10-p90 of the speedup in timings.csv).", ""]
    cpu = [r for r in rows if r["device"] == "cpu"]
    keys = list(dict.fromkeys((r["threads"], r["batch"], r["cache"]) for r in cpu))
    for threads, batch, cache in keys:
        lines += [f"**{threads} thread(s), batch {batch}, {cache} cache**", "",
                  "| network | part | " + " | ".join(LABEL[v] for v in VARIANTS) + " | runtime vs CSR |",
                  "|---|---|" + "---|" * (len(VARIANTS) + 1)]
        for net, part in dict.fromkeys((r["network"], r["part"]) for r in cpu):
            sub = {r["variant"]: r for r in cpu if (r["network"], r["part"], r["threads"], r["batch"], r["cache"])
                   == (net, part, threads, batch, cache)}
            if not sub:
                continue
            name = part if part == "network" else f"classifier ({sub['dense']['layers']})"
            lines.append(f"| {net} | {name} | " + " | ".join(_ratio_cell(sub[v]) for v in VARIANTS)
                         + f" | {sub['csr']['median_ms'] / sub['runtime']['median_ms']:.2f}x |")
        lines.append("")
    gpu = [r for r in rows if r["device"] != "cpu"]
    lines += ["**GPU**: " + ("not run (no CUDA device on this machine)." if not gpu else ""), ""]
    for r in gpu:
        lines.append(f"- {r['device']} {r['network']} {r['part']} batch {r['batch']} {r['variant']}: {_ratio_cell(r)}")
    lines += ["", "**Memory**: weights resident in the runtime against the file and the dense fp32 weights; "
              f"caches: L2 {mem[0]['l2_bytes']:,} B per core, last level {mem[0]['llc_bytes']:,} B.", "",
              "| network | scope | resident B | file B | resident / file | dense B | torch CSR model B | "
              "resident fits L2 / LLC | dense fits L2 / LLC |", "|---|---|---|---|---|---|---|---|---|"]
    yn = {True: "yes", False: "no"}
    for m in mem:
        if m["scope"] == "layer":
            continue
        csr = f"{m['csr_resident_bytes']:,}" if m.get("csr_resident_bytes") else ""
        lines.append(f"| {m['network']} | {m['scope']} ({m['layers']}) | {m['resident_bytes']:,} | "
                     f"{m['file_bytes']:,} | {m['resident_over_file']:.2f} | {m['dense_bytes']:,} | {csr} | "
                     f"{yn[m['resident_fits_l2']]} / {yn[m['resident_fits_llc']]} | "
                     f"{yn[m['dense_fits_l2']]} / {yn[m['dense_fits_llc']]} |")
    lines += ["", "**Per layer**: how the runtime holds and runs it.", "",
              "| network | layer | runs as | resident B | file B | dense B |", "|---|---|---|---|---|---|"]
    for m in mem:
        if m["scope"] == "layer":
            lines.append(f"| {m['network']} | {m['layers']} | {m['runs_as']} | {m['resident_bytes']:,} | "
                         f"{m['file_bytes']:,} | {m['dense_bytes']:,} |")
    lines += ["", "**Conv layers**: the measured rule's choice at each input shape and thread count "
              "(fastest of its timed calls, ms).", "", "| network | layer | input | threads | dense ms | "
              "sparse ms | chose |", "|---|---|---|---|---|---|---|"]
    for c in convs:
        sp = "not tried (unfolded input too large)" if c["sparse_ms"] is None else f"{c['sparse_ms']:.3f}"
        lines.append(f"| {c['network']} | {c['layer']} | {c['input']} | {c['threads']} | {c['dense_ms']:.3f} | "
                     f"{sp} | {c['chose']} |")
    return "\n".join(lines) + "\n"


def figure(rows, out: Path, meta) -> list[Path]:
    """Speedup over torch dense at batch 1 (dense = 1, as DC Fig. 9 normalizes), per network and
    classifier, torch CSR beside the runtime; one panel per cache state and thread count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from experiments.speedup.bench import geomean

    cpu = [r for r in rows if r["device"] == "cpu" and r["batch"] == 1]
    panels = list(dict.fromkeys((r["threads"], r["cache"]) for r in cpu))
    groups = list(dict.fromkeys((r["network"], r["part"]) for r in cpu))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), sharey=True, squeeze=False)
    colors = {"csr": "#4c72b0", "runtime": "#8c1c20"}
    for ax, (threads, cache) in zip(axes[0], panels):
        for i, v in enumerate(("csr", "runtime")):
            vals = [next((r["speedup_vs_dense"] for r in cpu if (r["network"], r["part"], r["threads"], r["cache"],
                                                                  r["variant"]) == (n, p, threads, cache, v)), np.nan)
                    for n, p in groups]
            vals.append(geomean(vals))
            xs = np.arange(len(vals)) + (i - 0.5) * 0.38
            ax.bar(xs, vals, 0.38, color=colors[v], label=LABEL[v])
            for xx, yy in zip(xs, vals):
                ax.text(xx, yy, f"{yy:.1f}", ha="center", va="bottom", fontsize=6)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(np.arange(len(groups) + 1))
        ax.set_xticklabels([f"{n} {'fc' if p == 'classifier' else 'all'}" for n, p in groups] + ["geo mean"],
                           fontsize=7, rotation=45, ha="right")
        ax.set_title(f"batch 1, {cache} cache, {threads} thread(s)", fontsize=9)
    axes[0][0].set_ylabel("speedup over torch dense")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Whole networks from their compressed files ({meta['cpu']['cpu_model']}); "
                 "'fc' = classifier layers only", fontsize=9)
    paths = []
    for ext in ("png", "pdf"):
        paths.append(out / f"fig9_network.{ext}")
        fig.savefig(paths[-1], dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


if __name__ == "__main__":
    sys.exit(main())
