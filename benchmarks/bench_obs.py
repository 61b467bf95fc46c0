"""Pruning criteria, timed: magnitude, OBD and layer-wise OBS on LeNet-300-100 at the paper's densities.

    .venv/bin/python benchmarks/bench_obs.py [--repeats 3] [--threads 2] [--data fashion_mnist]

One pruning step straight to ip1 8%, ip2 9%, ip3 26% (DC Table 2), as `prune.rounds=1` runs it: the
criterion's prepare (OBD: Hessian diagonal over 8 batches of 64; OBS: layer Hessians over 8 batches)
plus every layer's prune. Prints the median wall time over the repeats per criterion, its parts for
OBS, and the load average (the target, under 2 minutes on 2 cores, is for a quiet machine). The
weights are a dense LeNet-300-100 trained for 2 epochs (the time hardly depends on them).
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from compression.criteria.magnitude import Magnitude  # noqa: E402
from compression.criteria.obd import OBD  # noqa: E402
from compression.criteria.obs import OBS  # noqa: E402
from compression.prune import keep_count  # noqa: E402
from compression.specs import specs_of  # noqa: E402
from experiments.models.lenet import LeNet300  # noqa: E402

DENSITY = {"ip1": 0.08, "ip2": 0.09, "ip3": 0.26}


def _data(name: str):
    from experiments import data as D

    dm = {"fashion_mnist": D.FashionMNISTDataModule, "mnist_sample": D.MNISTSampleDataModule}[name](download=False)
    dm.setup()
    return dm


def _dense(dm) -> dict:
    torch.manual_seed(0)
    model = LeNet300()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(2):
        for x, y in dm.train_dataloader():
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return model.state_dict()


def one_step(criterion, state, dm) -> dict:
    model = LeNet300()
    model.load_state_dict(state)
    specs = specs_of(model)
    t0 = time.perf_counter()
    criterion.prepare(model, specs, iter(dm.train_dataloader()) if criterion.needs_data else None)
    t1 = time.perf_counter()
    parts = {}
    for s in specs:
        m = model.get_submodule(s.module)
        t = time.perf_counter()
        criterion.prune(m, s.param, keep_count(m, s.param, density=DENSITY[s.name]))
        parts[s.name] = time.perf_counter() - t
    return {"total": time.perf_counter() - t0, "prepare": t1 - t0, **parts}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default="fashion_mnist", choices=["fashion_mnist", "mnist_sample"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dm = _data(a.data)
    state = _dense(dm)
    print(f"LeNet-300-100, {a.data}, one step to ip1 8% / ip2 9% / ip3 26%, {a.threads} threads, "
          f"load average {os.getloadavg()[0]:.2f} at start")
    results = {}
    for name, make in (("magnitude", Magnitude), ("obd", lambda: OBD(batches=8)), ("obs", lambda: OBS(batches=8))):
        runs = [one_step(make(), state, dm) for _ in range(a.repeats)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        results[name] = med
        print(f"{name:10s} median {med['total']:8.2f} s  (" + ", ".join(f"{k} {v:.2f}" for k, v in med.items()
                                                                      if k != "total") + ")")
    print(f"OBS / magnitude: {results['obs']['total'] / results['magnitude']['total']:.0f}x; "
          f"OBS under 2 minutes: {'yes' if results['obs']['total'] < 120 else 'no'}; "
          f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
