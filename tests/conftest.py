import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("WANDB_MODE", "offline")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers on two cores: one thread each, set before torch, numpy and numba start
    # their pools (two 2-thread pools on 2 cores run many times slower: docs/cli.md).
    from experiments.results import thread_env

    os.environ.update(thread_env(1))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: longer than the CI budget allows; run with -m slow")


CONF_DIR = str(ROOT / "conf")
PY = str(Path(sys.executable))


def compose_cfg(overrides, tmp_path):
    """Compose the real config as run.py would, with outputs under tmp_path."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from experiments.config import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONF_DIR):
        cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.root_dir = str(ROOT)
        cfg.paths.results_dir = str(tmp_path / "results")
        cfg.paths.output_dir = str(tmp_path / "out")
        del cfg["hydra"]
    return cfg


def run_cli(args, tmp_path, timeout=600):
    """Run run.py as a user would, outputs and rows under tmp_path."""
    import subprocess

    cmd = [PY, str(ROOT / "run.py"), *args, f"paths.results_dir={tmp_path / 'results'}",
           f"hydra.run.dir={tmp_path / 'out'}", "trainer.enable_progress_bar=false"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "HYDRA_FULL_ERROR": "0"})


def rows_in(tmp_path):
    return sorted((tmp_path / "results").glob("runs/**/*.json"))


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    """An empty working directory (run.py's outputs/ and results/ land there) and the environment restored."""
    monkeypatch.chdir(tmp_path)
    env = dict(os.environ)
    yield tmp_path
    os.environ.clear()
    os.environ.update(env)
