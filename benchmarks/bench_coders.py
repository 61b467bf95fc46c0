"""Bits per symbol of each entropy coder against each stream's empirical entropy (issue: an arithmetic
coder beside Huffman), on the streams of committed compressed files.

    .venv/bin/python benchmarks/bench_coders.py [FILES ...] [--csv results/coders.csv]

For every layer of every file (default: each network's file of Table 1's row under results/runs/), both symbol
streams the file codes -- the weight indices of the stored entries and, for a sparse layer, the
relative-index gaps (DC section 2 and 4) -- coded by each coder (``compression.coders``) as the file
would code them (one chunk). Per stream: symbols, empirical entropy (bits/symbol, order 0), and each
coder's payload and table, in bits per symbol; then totals per file. Sizes, not speed: one run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compression.coders import coder_named  # noqa: E402
from compression.container import read_layers  # noqa: E402
from compression.sparse_format import encode_relative  # noqa: E402

CODERS = ("huffman", "rans")


def entropy_bits(symbols: np.ndarray, alphabet: int) -> float:
    p = np.bincount(symbols, minlength=alphabet) / max(len(symbols), 1)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def streams(path: Path):
    """(layer, stream name, symbols, alphabet) for each stream the file codes."""
    layers, _raw, _meta, _report = read_layers(path)
    for layer in layers:
        labels = np.asarray(layer.labels).ravel()
        k = 1 << int(layer.weight_bits)
        if layer.sparse:
            symbols, gaps = encode_relative(labels, int(layer.index_bits))
            yield layer.name, "weights", np.asarray(symbols, np.int64), k
            yield layer.name, "gaps", np.asarray(gaps, np.int64), 1 << int(layer.index_bits)
        else:
            yield layer.name, "weights", labels.astype(np.int64), k


def measure(path: Path) -> list[dict]:
    rows = []
    for layer, stream, sym, alphabet in streams(path):
        r = {"file": f"{path.parent.name}/{path.name}", "layer": layer, "stream": stream, "symbols": len(sym),
             "entropy_bps": entropy_bits(sym, alphabet)}
        for name in CODERS:
            s = coder_named(name).encode(sym, alphabet, max(1, len(sym)))
            r[f"{name}_payload_bps"] = s.n_bits / max(len(sym), 1)
            r[f"{name}_total_bps"] = (s.n_bits + 8 * len(s.table)) / max(len(sym), 1)
        rows.append(r)
    return rows


def table1_files(runs: Path) -> list[Path]:
    """Each network's file of the row Table 1 uses (as the whole-network benchmark)."""
    from experiments.speedup.network import files

    return list(files(runs, ["lenet300", "lenet5", "alexnet", "vgg16"]).values())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--runs", type=Path, default=ROOT / "results" / "runs")
    ap.add_argument("--csv", type=Path, default=None, help="also write the per-stream table here")
    args = ap.parse_args(argv)
    files = args.files or table1_files(args.runs)
    if not files:
        print(f"no .dcz files given or under {args.runs}", file=sys.stderr)
        return 2
    import pandas as pd

    df = pd.DataFrame([r for f in files for r in measure(f)])
    pd.set_option("display.width", 200)
    print(df.round(4).to_string(index=False))
    bits = lambda c: (df[c] * df.symbols).groupby(df.file).sum() / 8  # noqa: E731
    tot = pd.DataFrame({"symbols": df.groupby("file").symbols.sum(), "entropy_B": bits("entropy_bps"),
                        **{f"{c}_B": bits(f"{c}_total_bps") for c in CODERS}})
    for c in CODERS:
        tot[f"{c}_over_entropy"] = tot[f"{c}_B"] / tot["entropy_B"]
    tot["rans_vs_huffman"] = tot["rans_B"] / tot["huffman_B"]
    print("\nper file (bytes of both streams, tables included):")
    print(tot.round(4).to_string())
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
