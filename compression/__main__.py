"""Command line for compressed model files.

    python -m compression inspect FILE       per-layer table + totals; verifies checksum and streams
    python -m compression decode FILE OUT    torch.save(state_dict) to OUT (atomically)

A missing, truncated or damaged file prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _fmt_table(rep: dict) -> str:
    cols = ["layer", "kind", "shape", "density", "entries", "fillers", "w P+Q", "w P+Q+H",
            "idx P+Q", "idx P+Q+H", "P+Q %", "P+Q+H %"]
    rows = []
    for r in rep["layers"]:
        rows.append([
            r["name"], r["kind"] + ("" if r["sparse"] else "/dense"), "x".join(map(str, r["shape"])),
            f"{100 * r['density']:.1f}%", f"{r['entries']:,}", f"{r['fillers']:,}",
            str(r["weight_bits_pq"]), f"{r['weight_bits_pqh']:.2f}",
            str(r["index_bits_pq"]), f"{r['index_bits_pqh']:.2f}",
            f"{r['pct_pq']:.2f}", f"{r['pct_pqh']:.2f}",
        ])
    t = rep["total"]
    rows.append([
        "total", "", f"{t['weights']:,}", f"{100 * t['density']:.1f}%", f"{t['entries']:,}", f"{t['fillers']:,}",
        f"{t['weight_bits_pq']:.2f}", f"{t['weight_bits_pqh']:.2f}",
        f"{t['index_bits_pq']:.2f}", f"{t['index_bits_pqh']:.2f}",
        f"{t['pct_pq']:.2f}", f"{t['pct_pqh']:.2f}",
    ])
    width = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) if i > 2 else c.ljust(w) for i, (c, w) in enumerate(zip(row, width)))
             for row in [cols] + rows]
    lines.insert(1, "  ".join("-" * w for w in width))
    lines.insert(len(lines) - 1, "  ".join("-" * w for w in width))
    return "\n".join(lines)


def cmd_inspect(path: str) -> int:
    from .container import inspect

    rep = inspect(path, decode=True)
    s, q = rep["size"], rep["ratio"]
    print(f"{rep['path']}: Deep Compression file v{rep['format_version']}, sha256 {rep['sha256'][:16]}..., "
          f"verified: {rep['verified']}")
    if rep["meta"]:
        print("meta: " + ", ".join(f"{k}={v}" for k, v in rep["meta"].items()))
    print(_fmt_table(rep))
    print(f"raw tensors: {len(rep['raw'])} ({rep['total']['raw_elements']:,} elements, {rep['total']['raw_bytes']:,} bytes)")
    print(f"dense {s['dense_bytes']:,} B | P+Q {s['pq_bytes']:,} B | P+Q+H {s['pqh_bytes']:,} B | "
          f"file {s['file_bytes']:,} B")
    print(f"ratio: pruning {q['p']:.1f}x, P+Q {q['pq']:.1f}x, P+Q+H {q['pqh']:.1f}x")
    return 0


def cmd_decode(path: str, out: str) -> int:
    import torch

    from .atomic import atomic_write
    from .container import read_compressed

    sd, _meta, _rep = read_compressed(path)
    dest = Path(out)
    atomic_write(dest, lambda f: torch.save(sd, f))
    print(f"wrote {dest} ({len(sd)} tensors)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m compression", description="Deep Compression model files (.dcz)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("inspect", help="per-layer table and totals; verifies the file")
    p.add_argument("file")
    p = sub.add_parser("decode", help="decode to a torch state_dict file")
    p.add_argument("file")
    p.add_argument("out")
    args = ap.parse_args(argv)

    from .container import CompressedFileError

    try:
        if args.cmd == "inspect":
            return cmd_inspect(args.file)
        return cmd_decode(args.file, args.out)
    except CompressedFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
