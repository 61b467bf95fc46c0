"""The pipeline: dense -> prune (iterative, retrain) -> quantize (weight sharing, fine-tune centroids)
-> encode (sparse format + entropy coding into one file) -> decode that file -> evaluate it -> row.

``run(cfg)`` is the task function (``run.py`` is only its Hydra wrapper). The order of the stages
is ``STAGES`` below; each stage is a function of the run context (``context.Run``) in a module of
its own. Every number in the row is measured on the test split; nothing here selects anything
on the test split.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from omegaconf import DictConfig

from experiments.checkpoints import is_rank_zero
from experiments.errors import UserError
from experiments.pipeline.context import Run
from experiments.pipeline.dense import dense_stage
from experiments.pipeline.encode import encode_stage
from experiments.pipeline.lowrank import lowrank_stage
from experiments.pipeline.prune import prune_stage, storage_prune_stage
from experiments.pipeline.quantize import quantize_stage, storage_quantize_stage
from experiments.results import row_dir, write_row

log = logging.getLogger(__name__)

# (unit name, stage, the config group whose `enabled` switches it on; None = always)
STAGES = [("dense", dense_stage, None), ("lowrank", lowrank_stage, "lowrank"), ("prune", prune_stage, "prune"),
          ("quantize", quantize_stage, "quantize")]
STORAGE_STAGES = [("prune", storage_prune_stage, "prune"), ("quantize", storage_quantize_stage, "quantize")]


def run(cfg: DictConfig) -> dict:
    """Run every enabled stage and write the results row. Returns the row."""
    r = Run(cfg)
    _check_stage_combination(r)
    if r.progress.done("row"):
        log.info("run %s is complete (row written); nothing to do", r.row["run_id"])
        return r.progress.final_row()
    for stage, fn, switch in (STORAGE_STAGES if r.storage_only else STAGES):
        if (switch is not None and not getattr(r.conf, switch).enabled) or r.progress.done(stage):
            continue
        r.start_clock(stage)
        fn(r)
        r.clock_into_row()
        r.progress.save(stage, r.row, r.model, r.specs)
    if r.conf.encode.enabled:
        t = time.time()
        encode_stage(r)
        r.row["time_s"]["encode"] = round(time.time() - t, 2)
    r.row["time_s"]["total"] = round(sum(v for k, v in r.row["time_s"].items()
                                         if k not in ("total", "prune_criterion")), 2)
    if r.conf.write_row and is_rank_zero():
        publish(r)
    r.progress.finish(r.row)
    return r.row


def _check_stage_combination(r: Run) -> None:
    """Combinations that cannot work fail before any training."""
    c = r.conf
    if r.storage_only and not c.encode.enabled:
        raise UserError("storage_only=true measures storage: it needs encode=huffman (and usually prune/quantize)")
    if c.lowrank.enabled and (c.prune.enabled or c.quantize.enabled or c.encode.enabled or r.storage_only):
        raise UserError("lowrank=svd is the SVD baseline on its own: use it with prune=none quantize=none encode=none")
    if c.encode.enabled:
        if not c.quantize.enabled:
            raise UserError("encode=huffman stores weight-shared layers: it needs quantize=kmeans")
        floats = [s.name for s in r.specs if int(r.value("quantize.bits", s)) == 0]
        if floats:
            raise UserError(f"quantize.bits is 0 (unquantized) for {floats}, which encode=huffman cannot store; "
                            f"give them bits or use encode=none")


def publish(r: Run) -> None:
    """Move the compressed file next to the row, then write the row (both renames, in that order)."""
    c = r.conf
    staged = r.row["artifacts"].get("compressed_file")
    if staged:
        final = row_dir(c.paths.results_dir, c.experiment, c.sweep) / Path(staged).name
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)
        r.row["artifacts"]["compressed_file"] = str(final)
    path = write_row(c.paths.results_dir, relative_paths(r.row, c.paths.root_dir))
    r.row["artifacts"]["row"] = str(path)


def relative_paths(obj, root: str):
    """The row names files relative to the repository, never by this machine's absolute paths."""
    root = str(root).rstrip("/")
    if isinstance(obj, dict):
        return {k: relative_paths(v, root) for k, v in obj.items()}
    if isinstance(obj, list):
        return [relative_paths(v, root) for v in obj]
    if isinstance(obj, str) and root and (obj == root or obj.startswith(root + "/")):
        return obj[len(root) + 1:] or "."
    return obj
