"""Entry point: ``python run.py +experiment=lenet300 [key=value ...]``.

A thin Hydra wrapper around ``experiments.pipeline.run``; returns the headline metric
(compressed top-1 error if the run encodes, else the last stage's) for sweepers.

Before Hydra starts (and creates the run folder), ``experiments.gate.check`` composes the
command's config -- every job's, with ``-m`` -- and checks it: a bad command ends with exit code 2
and one or two lines naming the key, having written nothing (docs/cli.md). The run then holds
its folder's lock (``experiments.checkpoints.RunLock``): the same command started twice trains once.
"""

import logging
import shutil
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from experiments.errors import UserError
from experiments.gate import check, register, replace_per_layer_dicts
from experiments.results import is_percent

register()
log = logging.getLogger("run")
CHECKED = None  # what the gate found for this command line (experiments.gate.Checked)


def _fail(e: Exception) -> None:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


def _remove_unstarted(run_dir: str) -> None:
    """A run that failed a check the gate could not make (e.g. a checkpoint that does not fit the model)
    before it started leaves no folder, if this command created it (never another process's folder)."""
    d = Path(run_dir).resolve()
    if CHECKED is None or CHECKED.mode != "run" or CHECKED.existed[0] or d != CHECKED.run_dir.resolve():
        return
    if (d / "state").exists() or (d / "ckpt").exists():
        return  # it started: keep what a resume needs
    shutil.rmtree(d, ignore_errors=True)
    cwd = Path.cwd().resolve()
    for parent in d.parents:  # outputs/<experiment>/ and outputs/, if this left them empty
        if parent == cwd or cwd not in parent.parents:
            break
        try:
            parent.rmdir()
        except OSError:
            break


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    from experiments.checkpoints import RunBusy, RunLock
    from experiments.pipeline import run

    hc = HydraConfig.get()
    replace_per_layer_dicts(cfg, list(hc.overrides.task))  # what a dict on the command line means (docs/cli.md)
    try:
        with RunLock(hc.runtime.output_dir):
            row = run(cfg)
    except RunBusy as e:
        if "MULTIRUN" in str(hc.mode):  # a sweep launched twice: the other one runs this job
            log.warning("skipping this job: %s", e)
            return float("nan")
        _fail(e)
    except UserError as e:
        _remove_unstarted(hc.runtime.output_dir)
        _fail(e)
    m = row["metrics"]
    for k, v in m.items():
        print(f"{k:28s} {v:8.2f}" + (" %" if is_percent(k) else ""))
    for k, v in row.get("ratio", {}).items():
        print(f"ratio/{k:22s} {v:8.1f} x")
    if "row" in row["artifacts"]:
        print(f"row: {row['artifacts']['row']}")
    for key in ("compressed/top1_err", "quantized/top1_err", "pruned/top1_err", "dense/top1_err"):
        if key in m:
            return m[key]
    return float("nan")


def gate(argv: list[str]):
    """The gate (experiments/gate.py) for this command line: exit code 2 and a message if it cannot run."""
    try:
        return check(argv, __file__)
    except UserError as e:
        _fail(e)


if __name__ == "__main__":
    CHECKED = gate(sys.argv[1:])
    if CHECKED is not None and CHECKED.rewritten:  # a per-layer dict with new entries: Hydra needs its + form
        sys.argv[1:] = [CHECKED.rewritten.get(a, a) for a in sys.argv[1:]]
    main()
