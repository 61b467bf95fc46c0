"""Sweeps (conf/sweep/): jobs start from a saved run, write one row each under
results/sweeps/<experiment>/<sweep>/, and a re-launch skips the finished jobs."""
import json
import subprocess

import pytest

from conftest import PY, ROOT, run_cli


def _sweep(tmp_path, sweep, *overrides):
    cmd = [PY, str(ROOT / "run.py"), "-m", "+experiment=lenet300", f"+sweep={sweep}", "data=mnist_sample",
           "trainer=smoke", "logger=none", f"paths.results_dir={tmp_path / 'results'}",
           f"hydra.sweep.dir={tmp_path / 'multirun'}", *overrides]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    return p


def test_prune_sweep_two_jobs_rows_and_relaunch_skips(tmp_path):
    start = run_cli(["+experiment=lenet300", "data=mnist_sample", "trainer=smoke", "logger=none", "write_row=false"],
                    tmp_path)
    assert start.returncode == 0, start.stderr[-3000:]
    dense = tmp_path / "out" / "dense.pt"
    assert dense.is_file() and (tmp_path / "out" / "pruned.pt").is_file()
    args = (f"model.checkpoint={dense}", "prune.uniform_density=0.5,0.2", "prune.epochs_per_round=0",
            "prune.regularization=l2")
    _sweep(tmp_path, "prune", *args)  # joblib launcher, 2 jobs
    rows_dir = tmp_path / "results" / "sweeps" / "lenet300" / "prune"
    paths = sorted(rows_dir.glob("*.json"))
    assert len(paths) == 2
    rows = [json.loads(p.read_text()) for p in paths]
    assert len({r["run_id"] for r in rows}) == 2
    assert all(r["sweep"] == "prune" and r["weights_source"] == "checkpoint" for r in rows)
    assert all(len(r["checkpoint_sha256"]) == 64 for r in rows)
    got = {}
    for r in rows:
        w = sum(l["weights"] for l in r["layers"])
        dropped = sum(r["rounds"][-1].get("dead_connections_dropped", {}).values())
        got[r["config"]["prune"]["uniform_density"]] = (sum(l["nonzeros"] for l in r["layers"]) + dropped) / w
    assert set(got) == {0.5, 0.2}
    # each job pruned to its density (less the connections of units left dead, LWC 3.4)
    assert abs(got[0.5] - 0.5) < 1e-3 and abs(got[0.2] - 0.2) < 1e-3
    # the dense stage only evaluated the loaded weights: both jobs report the same dense error
    assert rows[0]["metrics"]["dense/top1_err"] == rows[1]["metrics"]["dense/top1_err"]
    mtimes = [p.stat().st_mtime_ns for p in paths]

    _sweep(tmp_path, "prune", *args)  # same command again: nothing reruns, nothing is rewritten
    assert sorted(rows_dir.glob("*.json")) == paths
    assert [p.stat().st_mtime_ns for p in paths] == mtimes
    assert not (tmp_path / "results" / "runs").exists()  # sweep rows never land among experiment rows


def test_sweep_without_its_start_checkpoint_fails_fast(tmp_path):
    p = subprocess.run([PY, str(ROOT / "run.py"), "+experiment=lenet300", "+sweep=bits", "data=mnist_sample",
                        "start=pruned", f"model.checkpoint={tmp_path / 'missing.pt'}", "quantize.bits={conv:2,fc:2}",
                        f"paths.results_dir={tmp_path / 'results'}", f"hydra.run.dir={tmp_path / 'out'}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2
    assert "missing.pt" in p.stderr and "+experiment=lenet300" in p.stderr
    assert not (tmp_path / "results").exists()


def test_unquantized_kind_and_encode_is_refused(tmp_path):
    p = run_cli(["+experiment=lenet5", "data=mnist_sample", "trainer=smoke", "quantize.bits.fc=0"], tmp_path)
    assert p.returncode == 2 and "quantize.bits is 0" in p.stderr
    assert not (tmp_path / "results").exists()


def test_slurm_launcher_config_composes(tmp_path):
    from conftest import compose_cfg
    from hydra.core.hydra_config import HydraConfig

    compose_cfg(["hydra/launcher=slurm_gpu", "+experiment=alexnet", "trainer=ddp"], tmp_path)
    launcher = HydraConfig.get().launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.gpus_per_node == launcher.tasks_per_node == 8  # one DDP rank per GPU


@pytest.mark.slow
def test_submitit_local_launcher_runs_two_jobs(tmp_path):
    """The submitit launcher end to end without a cluster: its local executor, two smoke jobs."""
    cmd = [PY, str(ROOT / "run.py"), "-m", "hydra/launcher=submitit_local", "+experiment=lenet300", "data=mnist_sample",
           "trainer=smoke", "logger=none", "seed=0,1", f"paths.results_dir={tmp_path / 'results'}",
           f"hydra.sweep.dir={tmp_path / 'multirun'}"]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    rows = [json.loads(q.read_text()) for q in (tmp_path / "results" / "runs" / "lenet300").glob("*.json")]
    assert sorted(r["seed"] for r in rows) == [0, 1]


def test_diverged_centroid_fine_tuning_fails_clearly(tmp_path):
    p = run_cli(["+experiment=lenet300", "data=mnist_sample", "trainer=smoke", "logger=none", "quantize.lr=1e30"],
                tmp_path)
    assert p.returncode == 2, p.stderr[-2000:]
    assert "centroid fine-tuning diverged" in p.stderr and "quantize.lr" in p.stderr
    assert not (tmp_path / "results").exists()
