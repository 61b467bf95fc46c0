"""Command line for compressed model files.

    python -m compression inspect FILE       per-layer table + totals; verifies checksum and streams
    python -m compression decode FILE OUT    torch.save(state_dict) to OUT (atomically)
    python -m compression run FILE --input X.npy [--output Y.npy]
                                             run the network on X straight from the file (compression.runtime)
    python -m compression run FILE --bench [--batch 1 64] [--reps N]
                                             time it against the decoded dense model; memory against the caches

A missing, truncated or damaged file, an input that does not fit, or an output path that cannot
be written prints one line on stderr (naming the user's path) and exits with status 2, before
any long work.
"""

from __future__ import annotations

import argparse
import os
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


class UsageError(ValueError):
    """A path or value on the command line that cannot work; the message names it and the fix."""


def writable_output(out: str, example: str = "model.pt") -> Path:
    """``out`` as a path that a file can be written to, or a ``UsageError`` naming it."""
    dest = Path(out)
    if dest.is_dir():
        raise UsageError(f"{out}: is a directory; give a file name, e.g. {dest / example}")
    parent = dest.parent if str(dest.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{out}: the folder {parent} does not exist; create it first (mkdir -p {parent})")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{out}: cannot write into {parent} (permission denied)")
    return dest


def write_to(dest: Path, write) -> None:
    """``atomic_write``, with any OS error naming ``dest`` rather than the temporary file beside it."""
    from .atomic import atomic_write

    try:
        atomic_write(dest, write)
    except OSError as e:
        raise UsageError(f"{dest}: cannot write: {e.strerror or e}") from None


def cmd_decode(path: str, out: str) -> int:
    import torch

    from .container import read_compressed

    dest = writable_output(out)
    sd, _meta, _rep = read_compressed(path)
    write_to(dest, lambda f: torch.save(sd, f))
    print(f"wrote {dest} ({len(sd)} tensors)")
    return 0


def _read_input(path: str, meta: dict):
    """The ``--input`` array as float32, checked against the channels the file's model takes."""
    import numpy as np

    from .architecture import architecture

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: no such file (--input takes a .npy array, e.g. np.save('x.npy', images))")
    try:
        x = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise UsageError(f"{path}: not a .npy array ({e}); write it with numpy.save") from None
    if x.dtype.kind not in "fiub":
        raise UsageError(f"{path}: holds {x.dtype} values; the network takes numbers (float32)")
    c = architecture(meta).get("in_channels")
    if x.ndim == 3 and c is not None and x.shape[0] == c:
        x = x[None]  # one image
    if x.ndim == 4 and c is not None and x.shape[1] != c:
        raise UsageError(f"{path}: shape {x.shape}: the network takes {c} input channels ([N, {c}, H, W])")
    return x.astype(np.float32, copy=False)


def _forward(model, x, path: str):
    import torch

    try:
        with torch.inference_mode():
            return model(torch.from_numpy(x))
    except RuntimeError as e:
        raise UsageError(f"{path}: an input of shape {tuple(x.shape)} does not fit the network "
                         f"({str(e).splitlines()[0]})") from None


def _timed(fn, reps: int) -> list[float]:
    import time

    for _ in range(2):  # warm-up; the first call also measures each conv layer's two ways
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return ts


def cmd_run(args) -> int:
    import numpy as np
    import torch

    from .container import inspect
    from .runtime import load
    from .runtime.memory import format_report, memory_report

    for name in ("reps", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if min(args.batch) < 1:
        raise UsageError(f"--batch sizes must be at least 1, got {args.batch}")
    meta = inspect(args.file, decode=False)["meta"]  # the checksum, before anything long
    if not args.input and not args.bench:
        raise UsageError("run needs --input X.npy (the images to run) or --bench")
    if args.output and not args.input:
        raise UsageError("--output needs --input")
    x = _read_input(args.input, meta) if args.input else None
    dest = writable_output(args.output, "outputs.npy") if args.output else None
    if args.bench and not args.threads:
        args.threads = 1  # a timing on a shared machine: one thread unless asked (docs/speedup.md, "Threads")
    if args.threads:
        from .kernels import set_threads

        torch.set_num_threads(args.threads)
        set_threads(args.threads)
    model = load(args.file, conv=args.conv, threads=args.threads)
    if x is not None:
        y = _forward(model, x, args.input).numpy()
        if dest is not None:
            write_to(dest, lambda f: np.save(f, y))
            print(f"wrote {dest} (outputs {tuple(y.shape)})")
        else:
            for i, row in enumerate(y.reshape(len(y), -1)[:10]):
                print(f"input {i}: class {int(row.argmax())} (output {float(row.max()):.4g})")
            if len(y) > 10:
                print(f"... {len(y) - 10} more (--output Y.npy writes them all)")
    if args.bench:
        _bench(args, model, x, meta)
    print(format_report(memory_report(model)))
    return 0


def _bench(args, model, x, meta) -> None:
    import numpy as np
    import torch

    from .architecture import architecture, decode_model

    dense = decode_model(args.file).eval()
    a = architecture(meta)
    shape = x.shape[1:] if x is not None else (a.get("in_channels", 1), a.get("image_size", 28), a.get("image_size", 28))
    print(f"batch  dense ms (p10-p90)        runtime ms (p10-p90)      dense / runtime   "
          f"(torch {torch.get_num_threads()} threads, warm, {args.reps} calls)")
    for b in args.batch:
        xb = torch.from_numpy(np.random.default_rng(0).standard_normal((b, *shape), dtype=np.float32))
        with torch.inference_mode():
            td = np.array(_timed(lambda: dense(xb), args.reps)) * 1e3
            tr = np.array(_timed(lambda: model(xb), args.reps)) * 1e3
        q = lambda t: f"{np.median(t):9.3f} ({np.percentile(t, 10):.3f}-{np.percentile(t, 90):.3f})"  # noqa: E731
        print(f"{b:5d}  {q(td):27s} {q(tr):25s} {np.median(td) / np.median(tr):6.2f}x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m compression", description="Deep Compression model files (.dcz)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("inspect", help="per-layer table and totals; verifies the file")
    p.add_argument("file")
    p = sub.add_parser("decode", help="decode to a torch state_dict file")
    p.add_argument("file")
    p.add_argument("out")
    p = sub.add_parser("run", help="run the network straight from the file (no dense weights)")
    p.add_argument("file")
    p.add_argument("--input", help="a .npy array: [N, C, H, W] images (or whatever the model's forward takes)")
    p.add_argument("--output", help="write the outputs here (.npy); without it, print each row's top class")
    p.add_argument("--bench", action="store_true", help="time the runtime against the decoded dense model")
    p.add_argument("--batch", type=int, nargs="+", default=[1], help="batch sizes for --bench (default 1)")
    p.add_argument("--reps", type=int, default=20, help="timed calls per model and batch for --bench (default 20)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch and numba threads (default: theirs; 1 with --bench)")
    p.add_argument("--conv", choices=["auto", "dense", "sparse"], default="auto",
                   help="conv layers: measured per layer (auto), decoded dense, or sparse over the unfolded input")
    args = ap.parse_args(argv)

    from .architecture import ArchitectureError
    from .container import CompressedFileError

    try:
        if args.cmd == "inspect":
            return cmd_inspect(args.file)
        if args.cmd == "run":
            return cmd_run(args)
        return cmd_decode(args.file, args.out)
    except (CompressedFileError, UsageError, ArchitectureError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
