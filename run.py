"""Entry point: ``python run.py +experiment=lenet300 [key=value ...]``.

A thin Hydra wrapper around ``experiments.pipeline.run``; returns the headline metric
(compressed top-1 error if the run encodes, else the last stage's) for sweepers.
"""

import logging
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from experiments.config import register_configs
from experiments.errors import UserError

register_configs()
log = logging.getLogger("run")


def run_key(override_dirname: str) -> str:
    """The run folder name: the command's overrides, so re-running the same command resumes it."""
    import hashlib

    key = (override_dirname or "default").replace("/", "_")
    if len(key) > 80:
        key = key[:60] + "-" + hashlib.sha1(key.encode()).hexdigest()[:10]
    return key


OmegaConf.register_new_resolver("run_key", run_key, replace=True)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    from experiments.pipeline import run

    try:
        row = run(cfg)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    m = row["metrics"]
    for k, v in m.items():
        print(f"{k:28s} {v:8.2f} %")
    for k, v in row.get("ratio", {}).items():
        print(f"ratio/{k:22s} {v:8.1f} x")
    if "row" in row["artifacts"]:
        print(f"row: {row['artifacts']['row']}")
    for key in ("compressed/top1_err", "quantized/top1_err", "pruned/top1_err", "dense/top1_err"):
        if key in m:
            return m[key]
    return float("nan")


if __name__ == "__main__":
    main()
