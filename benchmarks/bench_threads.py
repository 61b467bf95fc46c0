"""How many threads should a training run use? LeNet-300-100 and LeNet-5 training epochs with 1 and 2
intra-op threads, on a quiet machine and beside one competing CPU-bound process (a busy loop: what
another user's job, or a second sweep job, does to a shared 2-core machine). Prints medians and
ratios; the default of ``trainer.threads`` (conf/trainer/default.yaml) is the fastest overall.

    .venv/bin/python benchmarks/bench_threads.py [--repeats 3] [--batches 300] [--threads 1 2]
    .venv/bin/python benchmarks/bench_threads.py --readme [--readme-repeats 2]   # also time the README's
                                                                       # first command, quiet and loaded

Each timing runs in a fresh process (torch's inter-op pool can be sized only once per process), the
(model, threads) cells interleaved so that drifting load from other users hits them alike; the 1-minute
load average is printed before and after each condition, since on a shared machine "quiet" is a claim
that must be checked. An epoch is ``--batches`` SGD steps of batch 64 on in-memory 28x28 images through
the pipeline's own LitClassifier and a Lightning Trainer (the data's values do not change the speed);
"per epoch" scales it to Fashion-MNIST's 55,000 training images (860 batches).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCH_BATCHES = 860  # Fashion-MNIST: 55,000 training images / batch 64


def _epoch(model: str, threads: int, batches: int) -> float:
    """One timed training run in this (fresh) process; returns seconds."""
    import logging
    import warnings

    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)
    sys.path.insert(0, ROOT)
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    import pytorch_lightning as pl

    from experiments.classifier import LitClassifier
    from experiments.models.lenet import LeNet5, LeNet300

    g = torch.Generator().manual_seed(0)
    n = batches * 64
    x = torch.randn(n, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64, shuffle=True)
    torch.manual_seed(0)
    lit = LitClassifier({"lenet300": LeNet300, "lenet5": LeNet5}[model](), 10, lr=0.01, schedule="constant")
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_model_summary=False, enable_progress_bar=False, num_sanity_val_steps=0)
    t = time.perf_counter()
    trainer.fit(lit, train_dataloaders=loader)
    return time.perf_counter() - t


def _time_in_child(model: str, threads: int, batches: int) -> float:
    code = (f"import sys; sys.path.insert(0, {os.path.join(ROOT, 'benchmarks')!r}); import bench_threads as b; "
            f"print(b._epoch({model!r}, {threads}, {batches}))")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _busy(stop) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


class Competitor:
    """One CPU-bound process (a Python busy loop) for the duration of a ``with`` block."""

    def __enter__(self):
        self.stop = mp.Event()
        self.proc = mp.Process(target=_busy, args=(self.stop,), daemon=True)
        self.proc.start()
        time.sleep(1.0)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def epochs(args) -> dict:
    cells = [(m, t) for m in ("lenet300", "lenet5") for t in args.threads]
    out = {}
    for condition in ("quiet", "loaded"):
        times = {c: [] for c in cells}
        load_start = _load()
        ctx = Competitor() if condition == "loaded" else None
        if ctx:
            ctx.__enter__()
        try:
            for _ in range(args.repeats):
                for c in cells:
                    times[c].append(_time_in_child(*c, args.batches))
        finally:
            if ctx:
                ctx.__exit__(None, None, None)
        print(f"\n{condition}: 1-min load average {load_start} at start, {_load()} at end "
              f"({'with' if ctx else 'without'} the competing process)")
        for (m, t), v in times.items():
            med = statistics.median(v)
            per_epoch = med * EPOCH_BATCHES / args.batches
            out[f"{condition}/{m}/{t}"] = {"median_s": med, "per_epoch_s": per_epoch, "all_s": v}
            print(f"  {m:9s} threads={t}: median {med:6.2f} s for {args.batches} batches "
                  f"(~{per_epoch:6.1f} s per Fashion-MNIST epoch; min {min(v):.2f}, max {max(v):.2f}, n={len(v)})")
    print("\nratios (median time; below 1 = faster)")
    for m in ("lenet300", "lenet5"):
        for t in args.threads[1:]:
            for cond in ("quiet", "loaded"):
                r = out[f"{cond}/{m}/{t}"]["median_s"] / out[f"{cond}/{m}/{args.threads[0]}"]["median_s"]
                print(f"  {m:9s} {cond:6s}: {t} threads / {args.threads[0]} thread = {r:.2f}")
        for t in args.threads:
            r = out[f"loaded/{m}/{t}"]["median_s"] / out[f"quiet/{m}/{t}"]["median_s"]
            print(f"  {m:9s} threads={t}: loaded / quiet = {r:.2f}")
    return out


def readme_command(args) -> dict:
    """The README's first command (`make run`), end to end through run.py, quiet and loaded."""
    out = {}
    for threads in args.readme_threads:
        for condition in ("quiet", "loaded"):
            ts = []
            load_start = _load()
            ctx = Competitor() if condition == "loaded" else None
            if ctx:
                ctx.__enter__()
            try:
                for _ in range(args.readme_repeats):
                    with tempfile.TemporaryDirectory() as tmp:
                        cmd = [sys.executable, os.path.join(ROOT, "run.py"), "+experiment=lenet300",
                               "data=mnist_sample", "trainer.enable_progress_bar=false", f"trainer.threads={threads}",
                               f"paths.results_dir={tmp}/results", f"hydra.run.dir={tmp}/out"]
                        t = time.perf_counter()
                        subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True, timeout=1800)
                        ts.append(time.perf_counter() - t)
            finally:
                if ctx:
                    ctx.__exit__(None, None, None)
            med = statistics.median(ts)
            out[f"{condition}/{threads}"] = {"median_s": med, "all_s": ts, "load_start": load_start}
            print(f"README command, trainer.threads={threads}, {condition}: median {med:.1f} s "
                  f"(all {', '.join(f'{x:.1f}' for x in ts)}; load average {load_start} at start, {_load()} at end)")
        q, l = out[f"quiet/{threads}"]["median_s"], out[f"loaded/{threads}"]["median_s"]
        print(f"  loaded / quiet = {l / q:.2f}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", type=int, default=300)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--readme", action="store_true", help="also time the README's first command")
    ap.add_argument("--readme-only", action="store_true")
    ap.add_argument("--readme-threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--readme-repeats", type=int, default=2)
    ap.add_argument("--json", help="also write the numbers here")
    a = ap.parse_args()
    import torch

    print(f"torch {torch.__version__}, {os.cpu_count()} logical CPUs, "
          f"{len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} usable; "
          f"1-min load average {_load()}")
    res = {"load_avg_start": list(os.getloadavg())}
    if not a.readme_only:
        res["epochs"] = epochs(a)
    if a.readme or a.readme_only:
        res["readme"] = readme_command(a)
    res["load_avg_end"] = list(os.getloadavg())
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
