"""Resumable runs: a snapshot after every unit of work, and Lightning's last-epoch checkpoint inside it.

Units, in order: ``dense``, ``prune_r1`` ... ``prune_rN``, ``prune``, ``quantize``, ``encode``.
After a unit finishes, ``<run dir>/state/<unit>.pt`` holds the row so far and the model's
compression state (plain weights, pruning masks, codebooks and assignments), and
``state/progress.json`` lists the finished units (both written atomically). Re-running the
same command (same run folder) restores the last finished unit and continues; inside an
unfinished unit Lightning resumes from ``ckpt/<unit>/last.ckpt``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrize, prune

from compression.atomic import atomic_write_bytes
from compression.lowrank import LowRank
from compression.prune import current_mask
from compression.quantize import SharedWeights
from compression.specs import LayerSpec, module_of
from experiments.errors import UserError
from experiments.models.state import clean_state_dict

log = logging.getLogger(__name__)


def snapshot(model: nn.Module, specs: list[LayerSpec]) -> dict:
    """Everything needed to rebuild the model's compression state on a fresh instance."""
    snap = {"plain": {k: v.cpu() for k, v in clean_state_dict(model, specs).items()}, "masks": {}, "shared": {},
            "dropout_p": {p: model.get_submodule(p).p for p in getattr(model, "dropout_inputs", {})},
            "lowrank": {}}
    for s in specs:
        module = module_of(model, s)
        if parametrize.is_parametrized(module, s.param):
            plist = module.parametrizations[s.param]
            p = plist[0]
            if isinstance(p, LowRank):
                snap["lowrank"][s.name] = {"U": p.U.detach().cpu().clone(), "V": p.V.detach().cpu().clone()}
                continue
            snap["shared"][s.name] = {"codebook": plist.original.detach().cpu().clone(), "labels": p.labels.cpu(),
                                      "mask": p.mask.cpu() if p.sparse else None}
        elif prune.is_pruned(module) and hasattr(module, s.param + "_mask"):
            snap["masks"][s.name] = current_mask(module, s.param).cpu()
    return snap


def restore(model: nn.Module, specs: list[LayerSpec], snap: dict) -> None:
    """Inverse of ``snapshot`` on a freshly built model."""
    model.load_state_dict(snap["plain"], strict=True)
    for path, p in snap.get("dropout_p", {}).items():
        model.get_submodule(path).p = p
    by_name = {s.name: s for s in specs}
    for name, mask in snap["masks"].items():
        prune.custom_from_mask(module_of(model, by_name[name]), by_name[name].param, mask)
    for name, f in snap.get("lowrank", {}).items():
        s = by_name[name]
        module = module_of(model, s)
        parametrize.register_parametrization(module, s.param, LowRank(f["U"], f["V"]))
        module.parametrizations[s.param].original.requires_grad_(False)
    for name, v in snap["shared"].items():
        s = by_name[name]
        module = module_of(model, s)
        p = SharedWeights(v["codebook"], v["labels"], v["mask"])
        parametrize.register_parametrization(module, s.param, p, unsafe=True)
        with torch.no_grad():
            module.parametrizations[s.param].original.copy_(v["codebook"])


class RunBusy(UserError):
    """Another process holds the run folder: the same command is running."""


class RunLock:
    """One writer per run folder: an exclusive ``flock`` on ``<run dir>/.lock`` for the whole run.

    A second process with the same command (the same folder) ends at once naming the holder; it never
    trains a duplicate or writes a second row. The kernel drops the lock when its process ends, however it
    ends (SIGKILL included), so a killed run never leaves a stale lock: the same command then resumes it.
    Only global rank 0 locks (the other DDP ranks are the same run). Without ``fcntl`` (Windows) no lock.
    """

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> "RunLock":
        if not _env_rank_zero():
            return self
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(fd)
            os.close(fd)
            folder = self.path.parent
            raise RunBusy(f"{folder} is in use by {holder}: the same command is running. Wait for it to finish "
                          f"(then this command reports its row), stop it, or give this run its own folder "
                          f"(hydra.run.dir=...)") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                 "command": " ".join(sys.argv)}).encode())
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = None


def _holder(fd: int) -> str:
    """Who holds the lock, from what it wrote into the lock file (it may not have written yet)."""
    for _ in range(20):
        try:
            info = json.loads(os.pread(fd, 4096, 0).decode() or "null")
        except (OSError, ValueError):
            info = None
        if info:
            return (f"process {info.get('pid')} on {info.get('host')} (started {info.get('started')}: "
                    f"{info.get('command')})")
        time.sleep(0.05)
    return "another process"


def _env_rank_zero() -> bool:
    """Global rank 0 from the environment, as Lightning reads it (RANK, LOCAL_RANK, SLURM_PROCID, ...)."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if key in os.environ:
            return os.environ[key] == "0"
    return True


def is_rank_zero() -> bool:
    """Under DDP every rank runs the pipeline; only global rank 0 writes files."""
    from lightning_fabric.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def rank_digest(model: nn.Module, specs: list[LayerSpec]) -> str:
    """A hash of every mask, codebook and assignment: equal on all ranks or the run is wrong."""
    import hashlib

    h = hashlib.sha256()
    snap = snapshot(model, specs)
    for group in ("masks", "shared"):
        for name in sorted(snap[group]):
            v = snap[group][name]
            for t in (v.values() if isinstance(v, dict) else [v]):
                if t is not None:
                    h.update(t.numpy().tobytes())
    return h.hexdigest()


class Progress:
    """Finished units of one run folder (written by rank 0 only)."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir) / "state"
        self.file = self.dir / "progress.json"
        self.units: list[str] = json.loads(self.file.read_text())["units"] if self.file.is_file() else []

    def done(self, unit: str) -> bool:
        return unit in self.units

    def save(self, unit: str, row: dict, model: nn.Module, specs: list[LayerSpec]) -> None:
        if not is_rank_zero():
            self.units.append(unit)
            return
        buf = io.BytesIO()
        torch.save({"row": row, "model": snapshot(model, specs)}, buf)
        atomic_write_bytes(self.dir / f"{unit}.pt", buf.getvalue())
        self.units.append(unit)
        atomic_write_bytes(self.file, json.dumps({"units": self.units}).encode())

    def finish(self, row: dict) -> None:
        """The row is written: keep it (a re-run of the same command reports it) and mark the run complete."""
        if not is_rank_zero():
            return
        atomic_write_bytes(self.dir / "row.json", json.dumps(row, default=str).encode())
        self.units.append("row")
        atomic_write_bytes(self.file, json.dumps({"units": self.units}).encode())

    def final_row(self) -> dict:
        return json.loads((self.dir / "row.json").read_text())

    def started_config(self) -> dict | None:
        """The config the run in this folder started with (written before its first epoch)."""
        f = self.dir / "config.json"
        return json.loads(f.read_text()) if f.is_file() else None

    def start(self, config: dict) -> None:
        if is_rank_zero():
            atomic_write_bytes(self.dir / "config.json", json.dumps(config, default=str).encode())

    def has_anything(self) -> bool:
        return self.dir.exists() or (self.dir.parent / "ckpt").exists()

    def archive(self, run_id: str) -> Path:
        """Move this folder's state and checkpoints aside so a new run starts clean."""
        target = self.dir.parent / f"previous-{run_id}"
        target.mkdir(parents=True, exist_ok=True)
        for name in ("state", "ckpt"):
            if (self.dir.parent / name).exists():
                (self.dir.parent / name).rename(target / name)
        self.units = []
        return target

    def load_last(self) -> dict | None:
        for unit in reversed(self.units):
            f = self.dir / f"{unit}.pt"
            if f.is_file():
                return torch.load(f, map_location="cpu", weights_only=False)
        return None


def last_checkpoint(ckpt_dir: Path) -> str | None:
    """Lightning's last-epoch checkpoint of an unfinished unit, if it can be read."""
    f = Path(ckpt_dir) / "last.ckpt"
    if not f.is_file():
        return None
    try:
        torch.load(f, map_location="cpu", weights_only=False)
    except Exception as e:  # killed mid-write: start the unit again
        log.warning("ignoring unreadable checkpoint %s (%s)", f, e)
        f.unlink()
        return None
    return str(f)
