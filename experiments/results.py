"""Results rows: one JSON file per run, written atomically (docs/results_row.md)."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

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


# Options added after rows were written: at these values they do what rows without them did, so
# they are left out of the comparison (an older row and a newer one at these values group together).
ADDED_LATER = {"prune": {"distill": 0.0, "distill_temperature": 4.0, "drop_dead_connections": False},
               "quantize": {"distill": 0.0, "distill_temperature": 4.0}}
# An option that means nothing while another is at this value is left out too (at any value).
MEANINGLESS_WHEN = {("prune", "distill_temperature"): ("distill", 0.0),
                    ("quantize", "distill_temperature"): ("distill", 0.0)}


def result_relevant(config: dict) -> dict:
    """The config minus what cannot change the results (where files go, logging, progress bars)."""
    cfg = {k: v for k, v in config.items() if k not in ("paths", "logger", "run_id", "write_row")}
    cfg["trainer"] = {k: v for k, v in cfg.get("trainer", {}).items()
                      if k not in ("enable_progress_bar", "log_every_n_steps")}
    for group, defaults in ADDED_LATER.items():
        if isinstance(cfg.get(group), dict):
            g = dict(cfg[group])
            for k, v in defaults.items():
                when = MEANINGLESS_WHEN.get((group, k))
                if k in g and (g[k] == v or (when is not None and g.get(when[0], when[1]) == when[1])):
                    g.pop(k)
            cfg[group] = g
    return cfg


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: never a partial file."""
    from compression.container import atomic_write

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(data))


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


def load_rows(results_dir: str | Path) -> list[dict]:
    rows = []
    for p in sorted(Path(results_dir).glob("runs/**/*.json")):
        with open(p) as f:
            row = json.load(f)
        row["_path"] = str(p)
        rows.append(row)
    return rows
