"""Results rows: one JSON file per run, written atomically (docs/results_row.md)."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

from compression.atomic import atomic_write_bytes

SCHEMA = 1
NOT_READ_BY_RUNS = [f":(exclude){p}" for p in ("results", "docs", "tests", "notebooks", "*.md", "Makefile", ".ci")]


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
