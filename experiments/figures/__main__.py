"""python -m experiments.figures [--results results] [--out results/figures] [--experiment ...]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.figures import __doc__ as DOC
from experiments.figures import write_figures


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    ap = argparse.ArgumentParser(prog="python -m experiments.figures", description=DOC.split("\n\n")[0])
    ap.add_argument("--results", default="results", help="folder holding runs/ and sweeps/ (default: results)")
    ap.add_argument("--out", default="results/figures", help="output folder (default: results/figures)")
    ap.add_argument("--experiment", nargs="+", default=None,
                    help="experiments to draw (default: every experiment with rows)")
    args = ap.parse_args(argv)
    if not Path(args.results).is_dir():
        print(f"figures: no such folder: {args.results}", file=sys.stderr)
        return 2
    for p in write_figures(args.results, args.out, args.experiment):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
