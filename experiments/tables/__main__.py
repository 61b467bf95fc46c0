"""python -m experiments.tables [--runs results/runs] [--out results/tables]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.tables import __doc__ as DOC
from experiments.tables import write_tables


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.tables", description=DOC.split("\n\n")[0])
    ap.add_argument("--runs", default="results/runs", help="folder of result rows (default: results/runs)")
    ap.add_argument("--out", default="results/tables", help="output folder (default: results/tables)")
    args = ap.parse_args(argv)
    if not Path(args.runs).is_dir():
        print(f"tables: no such folder: {args.runs}", file=sys.stderr)
        return 2
    for p in write_tables(args.runs, args.out):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
