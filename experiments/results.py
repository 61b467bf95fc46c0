"""Results rows: one JSON file per run, written atomically (docs/results_row.md)."""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from compression.atomic import atomic_write_bytes

SCHEMA = 1
NOT_READ_BY_RUNS = [f":(exclude){p}" for p in ("results", "docs", "tests", "notebooks", "*.md", "Makefile", ".ci")]


def is_percent(metric: str) -> bool:
    """Errors and BLEU are percentages; perplexity is not."""
    return not metric.endswith("perplexity")


def metric_text(name: str, value: float) -> str:
    return f"{value:.2f}%" if is_percent(name) else f"{value:.2f}"


def new_run_id() -> str:
    """Sortable by time, unique across parallel sweep jobs."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def git_info(root: str | Path) -> dict[str, Any]:
    """HEAD commit and whether tracked files that can change a result had uncommitted changes.

    Counted: code and configs. Not counted: results/, docs/, tests/, notebooks/, Markdown files,
    the Makefile and CI scripts (none of them is read by a run), and untracked files (committed
    code cannot import them on a fresh clone).
    """
    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    try:
        head = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no", "--", ".", *NOT_READ_BY_RUNS)
    except (OSError, subprocess.TimeoutExpired):
        return {"git_commit": None, "git_dirty": None}
    if head.returncode != 0:
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": head.stdout.strip(), "git_dirty": bool(status.stdout.strip())}


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a cluster job's allocation), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def jobs_at_once(n_jobs: Any) -> int:
    """How many sweep jobs the joblib launcher runs at once for its ``n_jobs`` (joblib's rule: -1 = one per
    usable core, -2 = all but one, ...); 1 for a launcher without it (one job at a time, or a cluster)."""
    if not isinstance(n_jobs, int) or isinstance(n_jobs, bool):
        return 1
    return max(1, n_jobs if n_jobs > 0 else usable_cores() + 1 + n_jobs)


def thread_share(requested: int, parallel_jobs: int = 1) -> int:
    """Threads for one run: ``trainer.threads`` (0 = every usable core), at most the usable cores divided
    among the sweep jobs that run at once, and at least 1."""
    share = max(1, usable_cores() // max(1, parallel_jobs))
    return max(1, min(requested or share, share))


def thread_env(n: int) -> dict[str, str]:
    """The variables that size the thread pools of OpenMP (torch), MKL, OpenBLAS (numpy) and numba when
    they start: set before those libraries are imported."""
    return {k: str(n) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")}


SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
              "avx_vnni", "amx_tile", "amx_bf16", "asimd", "sve")
VERSIONS = ("torch", "torchvision", "pytorch-lightning", "torchmetrics", "numpy", "numba", "hydra-core", "omegaconf")


def cpu_info() -> dict[str, Any]:
    """CPU model and the vector-instruction flags that change kernel speed and float summation order."""
    info: dict[str, Any] = {"model": platform.processor() or platform.machine(), "machine": platform.machine(),
                            "logical_cpus": os.cpu_count(), "usable_cpus": usable_cores()}
    try:
        txt = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    m = re.search(r"^model name\s*:\s*(.+)$", txt, re.M)
    if m:
        info["model"] = m.group(1).strip()
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", txt, re.M)
    if flags:
        have = set(flags.group(1).split())
        info["flags"] = [f for f in SIMD_FLAGS if f in have]
    return info


def versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in VERSIONS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine_info(threads: dict[str, int], gpus: list[str]) -> dict[str, Any]:
    """What shapes a row's numbers beyond its config: threads, CPU, GPUs, library versions, load at start."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {"cpu": cpu_info(), "gpus": gpus, "threads": threads, "versions": versions(), "load_avg_start": load}


def machine_label(machine: dict | None) -> str:
    """A short name of a row's hardware for tables ("AMD EPYC, AVX-512, 1 thread"); "" when not recorded."""
    if not machine:
        return ""
    cpu = machine.get("cpu", {})
    parts = [str(cpu.get("model", "?"))]
    if "flags" in cpu:
        parts.append("AVX-512" if "avx512f" in cpu["flags"] else "no AVX-512")
    parts += list(machine.get("gpus") or [])
    n = (machine.get("threads") or {}).get("torch")
    if n:
        parts.append(f"{n} thread{'s' if n != 1 else ''}")
    return ", ".join(parts)


def row_dir(results_dir: str | Path, experiment: str, sweep: str | None = None) -> Path:
    """results/runs/<experiment>/ for experiment runs, results/sweeps/<experiment>/<sweep>/ for sweep jobs."""
    if sweep:
        return Path(results_dir) / "sweeps" / experiment / sweep
    return Path(results_dir) / "runs" / experiment


def write_row(results_dir: str | Path, row: dict) -> Path:
    path = row_dir(results_dir, row["experiment"], row.get("sweep")) / f"{row['run_id']}.json"
    atomic_write_bytes(path, (json.dumps(row, indent=1, sort_keys=False, default=_jsonable) + "\n").encode())
    return path


def _jsonable(x):
    if hasattr(x, "item"):
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serializable: {type(x)}")
