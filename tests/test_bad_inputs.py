"""Bad command lines, as a new user types them: each ends with exit code 2 and a message of one or two
lines naming the key (and the fix), and writes nothing -- no run folder, no row.

Most cases run ``run.py``'s own gate in this process (``run.gate``: what ``python run.py ...`` does before
Hydra starts); a handful run ``run.py`` as a subprocess, from an empty working directory so that a
stray ``outputs/`` folder would show. Also here: what a per-layer dict on the command line means, and
one run folder, one writer (the same command started twice trains once)."""

import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import PY, ROOT

sys.path.insert(0, str(ROOT))
import run as cli  # noqa: E402  (run.py: the command line's entry point)

from experiments.gate import check  # noqa: E402
from experiments.pipeline.plan import forget_checked_data  # noqa: E402

E = "+experiment=lenet300"
S = "data=mnist_sample"

# (command line, words the message must contain: the key first)
CASES = [
    # Hydra's composition, reworded: unknown keys however written, wrong types, unknown group options
    ([E, "prune.densty.ip1=0.1"], ["prune.densty", "prune.density"]),
    ([E, "+prune.densty.ip1=0.1"], ["prune.densty", "prune.density"]),
    ([E, "+dense.epoch=3"], ["dense.epoch", "dense.epochs"]),
    ([E, "+trainer.max_epochs=3"], ["trainer.max_epochs", "trainer.epochs_cap"]),
    ([E, "+trainer.foo=1"], ["trainer.foo"]),
    ([E, "+foo=1"], ["foo"]),
    ([E, "foo=1"], ["foo"]),
    ([E, "quantize.bits.fc=0.5"], ["quantize.bits.fc", "0.5"]),
    ([E, "dense.epochs=abc"], ["dense.epochs", "abc", "integer"]),
    ([E, "prune.density=0.1"], ["prune.density", "{*:"]),
    ([E, "prune.density.ip9=0.1"], ["prune.density", "ip9", "+prune.density.ip9=0.1"]),
    (["+experiment=lenet301"], ["experiment", "lenet301", "+experiment=lenet300"]),
    (["experiment=lenet300"], ["experiment", "+experiment=lenet300"]),
    ([E, "data=cifar"], ["data", "cifar", "mnist_sample"]),
    ([E, "model=lenet3000"], ["model", "lenet3000", "lenet300"]),
    ([E, "prune=densty"], ["prune", "densty", "density"]),
    ([E, "hydra/launcher=joblb"], ["hydra/launcher", "joblib"]),
    ([E, "prune.density={ip1:0.1"], ["prune.density", "quote"]),
    ([E, "model.checkpoint=outputs/lenet300/seed=0/dense.pt"], ["model.checkpoint", "contains '='", '"outputs/']),
    # the schema's checks: empty per-layer dicts and impossible values
    ([E, "prune.density={}"], ["prune.density", "{*:"]),
    ([E, "quantize.bits={}"], ["quantize.bits", "{*:"]),
    ([E, "prune.density.ip1=1.5"], ["prune.density.ip1", "1.5"]),
    ([E, "quantize.bits.fc=17"], ["quantize.bits.fc", "17"]),
    ([E, "encode.index_bits.fc=0"], ["encode.index_bits.fc"]),
    ([E, "seed=-1"], ["seed", "-1"]),
    ([E, "dense.lr=0"], ["dense.lr"]),
    ([E, "dense.schedule=cosin"], ["dense.schedule", "cosine"]),
    ([E, "prune.method=magnitude"], ["prune.method"]),
    ([E, "trainer.threads=-1"], ["trainer.threads"]),
    ([E, "trainer.limit_train_batches=1.5"], ["trainer.limit_train_batches"]),
    ([E, "trainer.accelerator=tpux"], ["trainer.accelerator"]),
    ([E, "data.batch_size=0"], ["data.batch_size"]),
    (["-m", E, "seed=0,-1"], ["seed", "-1"]),  # one bad job of a sweep stops the sweep before any job
    # what needs the model, the plug-ins and the data (torch, still before anything is written)
    ([E, S, "+prune.density.ip9=0.1"], ["prune.density", "ip9", "ip1"]),
    ([E, S, "quantize.quantizer.init=kmeans++"], ["quantize.quantizer", "kmeans++"]),
    ([E, S, "+quantize.quantizer.inti=random"], ["quantize.quantizer.inti", "init"]),
    ([E, S, "+data.bogus=1"], ["data.bogus"]),
    ([E, S, "+model.bogus=1"], ["model.bogus"]),
    ([E, S, "model.pretrained=true"], ["model.pretrained"]),
    ([E, S, "model.checkpoint=missing.pt"], ["model.checkpoint", "missing.pt", "does not exist"]),
    ([E, S, "quantize=none"], ["quantize=kmeans"]),
    ([E, S, "quantize.bits.fc=0"], ["quantize.bits"]),
    ([E, S, "+sweep=bits", "model.checkpoint=missing.pt"], ["model.checkpoint", "missing.pt", "+experiment=lenet300"]),
    ([E, "data=mnist", "data.root=nothing", "data.download=false"], ["data.root", "idx files"]),
    ([E, S, "data._target_=experiments.data.Nope"], ["data._target_", "Nope"]),
    ([E, S, "+logger.foo=1"], ["logger.foo", "CSVLogger"]),
    ([E, S, "trainer.strategy=foo"], ["strategy=foo"]),
    ([E, S, "+data.val_size=600"], ["data.val_size", "data.val_size=600"]),  # Hydra's hint is the fix
    ([E, S, "prune/criterion=obs", "prune.per_block=true"], ["prune.per_block", "OBS", "magnitude"]),
]


@pytest.fixture(scope="module", autouse=True)
def _forget_data():
    yield
    forget_checked_data()  # the data modules the in-process gate set up (one per data config, shared)




@pytest.mark.parametrize("argv,words", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_command_line(argv, words, empty_cwd, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.gate(argv)
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2
    assert err.startswith("error: ") and len(err.splitlines()) <= 2, err
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)
    assert list(empty_cwd.iterdir()) == []  # no outputs/, no multirun/, no results/


def test_a_good_command_passes_the_gate_and_writes_nothing(empty_cwd):
    checked = cli.gate([E, S, "prune.density.ip1=0.1", "trainer=smoke"])
    assert checked.mode == "run"
    folder = "data=mnist_sample,prune.density.ip1=0.1,trainer=smoke"
    assert checked.run_dir == empty_cwd / "outputs" / "lenet300" / folder
    assert checked.existed == [False]
    assert list(empty_cwd.iterdir()) == []


def test_a_cluster_sweep_leaves_the_data_to_its_jobs(empty_cwd):
    # the login node need not hold the data that the compute nodes read from their local disks
    checked = check(["-m", E, "hydra/launcher=submitit_slurm", "seed=0,1", "data=mnist", "data.root=nothing",
                     "data.download=false"], str(ROOT / "run.py"))
    assert "Slurm" in checked.launcher and len(checked.jobs) == 2
    assert list(empty_cwd.iterdir()) == []


def test_hydras_own_commands_are_not_gated(empty_cwd):
    assert check(["--help"], str(ROOT / "run.py")) is None
    assert check([E, "--cfg", "job"], str(ROOT / "run.py")) is None


# -- the file tools: decode and evaluate name the user's paths ---------------------------------------
def _a_file() -> str:
    return str(sorted((ROOT / "results" / "runs" / "lenet300").glob("*.dcz"))[-1])


@pytest.mark.parametrize("tool,args,words", [
    ("decode", lambda d: [_a_file(), str(d)], ["is a directory"]),
    ("decode", lambda d: [_a_file(), str(d / "missing" / "out.pt")], ["missing", "does not exist"]),
    ("decode", lambda d: [str(d / "nothing.dcz"), str(d / "out.pt")], ["nothing.dcz", "no such file"]),
    ("evaluate", lambda d: [str(d / "nothing.dcz"), S], ["nothing.dcz", "no such file"]),
    ("evaluate", lambda d: [_a_file(), "data=cifar"], ["cifar", "mnist_sample"]),
], ids=["decode-to-a-folder", "decode-to-a-missing-folder", "decode-a-missing-file", "evaluate-a-missing-file",
        "evaluate-unknown-data"])
def test_bad_file_tool_command_line(tool, args, words, empty_cwd, capsys):
    if tool == "decode":
        from compression.__main__ import main
        argv = ["decode", *args(empty_cwd)]
    else:
        from experiments.evaluate import main
        argv = args(empty_cwd)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) <= 2 and "Traceback" not in err, err
    assert ".tmp" not in err  # the user's path, never a temporary file's
    for w in words:
        assert w in err, (w, err)
    assert list(empty_cwd.iterdir()) == []


# -- what a per-layer dict on the command line means ------------------------------------------------
def _job(argv):
    (job,) = check(argv, str(ROOT / "run.py"), heavy=False).jobs
    return job


def test_a_dict_on_the_command_line_replaces_the_experiments_dict(empty_cwd):
    assert dict(_job([E])["prune"]["density"]) == {"*": 1.0, "ip1": 0.08, "ip2": 0.09, "ip3": 0.26}
    # Hydra alone would merge: {*: 1.0, ip1: 0.1, ip2: 0.09, ip3: 0.26}, and {*: 0.1} would change nothing
    assert dict(_job([E, "prune.density={ip1:0.1,ip2:0.2,ip3:0.3}"])["prune"]["density"]) == \
        {"ip1": 0.1, "ip2": 0.2, "ip3": 0.3}
    assert dict(_job([E, "prune.density={*:0.1}"])["prune"]["density"]) == {"*": 0.1}
    assert dict(_job([E, "quantize.bits={fc:4}"])["quantize"]["bits"]) == {"fc": 4}
    # one entry: changed, the others kept
    assert dict(_job([E, "prune.density.ip1=0.1"])["prune"]["density"]) == {"*": 1.0, "ip1": 0.1, "ip2": 0.09,
                                                                           "ip3": 0.26}
    # a sweep's jobs: each dict replaces the experiment's
    jobs = check(["-m", E, "quantize.bits={conv:0,fc:1},{conv:0,fc:2}"], str(ROOT / "run.py"), heavy=False).jobs
    assert [dict(j["quantize"]["bits"]) for j in jobs] == [{"conv": 0, "fc": 1}, {"conv": 0, "fc": 2}]


def test_a_dict_with_entries_the_experiment_lacks_needs_no_plus(empty_cwd):
    # Hydra would refuse {fc:...} for lenet5 (its dict has conv1, conv2, ip1, ip2, '*') without a leading +
    checked = check(["+experiment=lenet5", "quantize.bits={*:4}", "prune.density={conv:0.5,fc:0.1}"],
                    str(ROOT / "run.py"), heavy=False)
    assert dict(checked.jobs[0]["quantize"]["bits"]) == {"*": 4}
    assert dict(checked.jobs[0]["prune"]["density"]) == {"conv": 0.5, "fc": 0.1}
    assert checked.rewritten == {"quantize.bits={*:4}": "+quantize.bits={*:4}",
                                 "prune.density={conv:0.5,fc:0.1}": "+prune.density={conv:0.5,fc:0.1}"}


def test_a_replaced_dict_that_misses_a_layer_names_it(empty_cwd, capsys):
    # lenet5 has conv layers: a dict of only fc entries leaves conv1 without a density
    with pytest.raises(SystemExit):
        cli.gate(["+experiment=lenet5", S, "prune.density={fc:0.1}", "quantize.bits.fc=4"])
    assert "prune.density has no value for layer conv1" in capsys.readouterr().err


def test_sweep_jobs_divide_the_cores(empty_cwd):
    checked = check(["-m", E, "seed=0,1,2", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
                    str(ROOT / "run.py"), heavy=False)
    assert checked.mode == "multirun" and len(checked.jobs) == 3 and checked.parallel_jobs == 2
    from experiments.results import thread_share, usable_cores

    assert thread_share(0, 2) == max(1, usable_cores() // 2)
    assert thread_share(8, 1) == usable_cores() and thread_share(1, 1) == 1
    assert os.environ["OMP_NUM_THREADS"] == "1"  # sized before torch, numpy and numba start their pools


# -- through the real command line (subprocesses) ---------------------------------------------------
def _cli(args, cwd, timeout=600):
    return subprocess.run([PY, str(ROOT / "run.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "HYDRA_FULL_ERROR": "0"})


@pytest.mark.parametrize("args,key", [([E, "prune.density.ip1=1.5"], "prune.density.ip1"),
                                      (["+experiment=lenet301"], "experiment")])
def test_cli_fails_fast_writes_nothing(args, key, tmp_path):
    p = _cli(args, tmp_path)
    assert p.returncode == 2 and key in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) <= 2
    assert list(tmp_path.iterdir()) == []


def test_a_check_only_the_run_can_make_removes_the_folder_it_made(tmp_path):
    """A checkpoint that exists but does not fit the model fails in the run (the gate does not load weights):
    the folder Hydra made for it goes again, and with it outputs/."""
    torch.save({"foo": torch.zeros(1)}, tmp_path / "other.pt")
    p = _cli([E, S, "model.checkpoint=other.pt", "trainer=smoke"], tmp_path)
    assert p.returncode == 2 and "other.pt" in p.stderr and "does not match" in p.stderr, p.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["other.pt"]


def test_the_same_command_twice_at_once_trains_once(tmp_path):
    """One run folder, one writer: the second process ends at once naming the first (or, if the first has
    already finished, reports its row); one row either way. The command's dict replaces the experiment's."""
    args = [E, S, "trainer=smoke", "logger=none", "prune.rounds=1", "prune.density={*:0.5}"]
    procs = [subprocess.Popen([PY, str(ROOT / "run.py"), *args], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes in ([0, 0], [0, 2]), outs
    if codes == [0, 2]:
        err = next(e for (o, e), p in zip(outs, procs) if p.returncode == 2)
        assert "is in use by process" in err and "outputs/lenet300" in err
    rows = list((tmp_path / "results" / "runs" / "lenet300").glob("*.json"))
    assert len(rows) == 1
    row = json.loads(rows[0].read_text())
    assert row["config"]["prune"]["density"] == {"*": 0.5}
    assert row["machine"]["threads"]["torch"] >= 1 and "model" in row["machine"]["cpu"]
