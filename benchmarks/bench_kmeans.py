"""1-D k-means speed: AlexNet fc6 after pruning (9% of 4096x9216 = 3.4M weights) into 32 clusters.

    .venv/bin/python benchmarks/bench_kmeans.py [--repeats 5]

Prints the median wall time per init (target: <= 2 s on a 2-core machine) and the number of
Lloyd iterations; also share_weights() on the whole fc6 tensor (masking included).
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from compression.quantize import kmeans_1d, share_weights  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    # pruned fc weights are bimodal (LWC Fig. 7): |w| above the threshold, both signs
    n = int(0.09 * 4096 * 9216)
    w = np.sign(rng.standard_normal(n)) * (0.01 + np.abs(rng.normal(0, 0.01, n)))
    print(f"{n:,} weights, k=32, load avg {os.getloadavg()[0]:.2f}")
    for init in ("linear", "random", "density"):
        ts = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            kmeans_1d(w, 32, init=init)
            ts.append(time.perf_counter() - t)
        print(f"kmeans_1d init={init:8s} median {statistics.median(ts):.3f} s (min {min(ts):.3f}, max {max(ts):.3f})")
    full = torch.zeros(4096 * 9216)
    idx = torch.from_numpy(rng.choice(full.numel(), n, replace=False))
    full[idx] = torch.from_numpy(w).float()
    full = full.view(4096, 9216)
    mask = full != 0
    ts = []
    for _ in range(a.repeats):
        t = time.perf_counter()
        share_weights(full, bits=5, mask=mask)
        ts.append(time.perf_counter() - t)
    print(f"share_weights(fc6 4096x9216, 5 bits, masked) median {statistics.median(ts):.3f} s")


if __name__ == "__main__":
    main()
