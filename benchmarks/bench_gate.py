"""How long a bad command line takes to fail: ``python run.py`` with a range error (checked torch-free,
before the heavy imports) and with an unknown layer name (checked against the model: needs torch),
each run ``--repeats`` times from an empty working directory. Prints medians; checks exit code 2 and
that nothing was written. The issue's target: a range error ends within 5 s on a quiet machine.

    .venv/bin/python benchmarks/bench_gate.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {
    "range error (prune.density.ip1=1.5)": ["+experiment=lenet300", "prune.density.ip1=1.5"],
    "misspelt key (+prune.densty.ip1=0.1)": ["+experiment=lenet300", "+prune.densty.ip1=0.1"],
    "unknown layer (+prune.density.ip9=0.1)": ["+experiment=lenet300", "data=mnist_sample", "+prune.density.ip9=0.1"],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    print(f"{os.cpu_count()} logical CPUs; 1-min load average {os.getloadavg()[0]:.2f} at start")
    times = {k: [] for k in CASES}
    for _ in range(a.repeats):  # interleaved: drifting load hits every case alike
        for name, args in CASES.items():
            with tempfile.TemporaryDirectory() as cwd:
                t = time.perf_counter()
                p = subprocess.run([sys.executable, os.path.join(ROOT, "run.py"), *args], cwd=cwd,
                                   capture_output=True, text=True)
                times[name].append(time.perf_counter() - t)
                assert p.returncode == 2, p.stderr
                assert os.listdir(cwd) == [], os.listdir(cwd)  # nothing written
    for name, ts in times.items():
        print(f"{name:42s} median {statistics.median(ts):5.2f} s  (min {min(ts):.2f}, max {max(ts):.2f}, "
              f"n={len(ts)})")
    print(f"1-min load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
