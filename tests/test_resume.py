"""A run killed with SIGKILL in the middle of a stage resumes from its last checkpoint and
produces the same complete row as a run that was never interrupted; nothing partial is left."""
import json
import os
import signal
import subprocess
import time

from compression.container import _load
from conftest import PY, ROOT, rows_in

ARGS = ["+experiment=lenet300", "data=mnist_sample", "dense.epochs=3", "prune.rounds=2", "prune.epochs_per_round=4",
        "quantize.epochs=1", "logger=none", "trainer.deterministic=true", "trainer.enable_progress_bar=false"]


def _cmd(tmp):
    return [PY, str(ROOT / "run.py"), *ARGS, f"paths.results_dir={tmp / 'results'}", f"hydra.run.dir={tmp / 'out'}"]


def _run(tmp):
    p = subprocess.run(_cmd(tmp), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return p


def _metrics(tmp):
    rows = rows_in(tmp)
    assert len(rows) == 1
    return json.loads(rows[0].read_text())


def test_sigkill_mid_stage_then_resume_gives_the_uninterrupted_row(tmp_path):
    ref_dir, kill_dir = tmp_path / "ref", tmp_path / "killed"
    _run(ref_dir)
    ref = _metrics(ref_dir)

    proc = subprocess.Popen(_cmd(kill_dir), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = kill_dir / "out" / "ckpt" / "prune_r1" / "last.ckpt"
    deadline = time.time() + 300
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed mid-stage"
    os.kill(proc.pid, signal.SIGKILL)  # mid prune round 1: after an epoch checkpoint, before the round ends
    proc.wait()
    progress = json.loads((kill_dir / "out" / "state" / "progress.json").read_text())["units"]
    assert progress == ["dense"]
    assert rows_in(kill_dir) == []  # no partial row
    assert not list((kill_dir / "results").glob("**/*.dcz"))  # no orphan file
    # The stage's time so far travels in the epoch checkpoint: mark it with 1000 s more than it was, and the
    # resumed row's prune time must count it (before, a resumed stage reported only its time after the resume).
    import torch

    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    elapsed = state["callbacks"]["_StageClock"]["elapsed_s"]
    assert 0 < elapsed < 300
    state["callbacks"]["_StageClock"]["elapsed_s"] = elapsed + 1000.0
    torch.save(state, ckpt)

    out = _run(kill_dir)
    row = _metrics(kill_dir)
    assert row["resumed"] == 1
    assert row["time_s"]["prune"] >= 1000 + elapsed, row["time_s"]
    assert ref["time_s"]["prune"] < 1000, ref["time_s"]
    assert row["run_id"] == json.loads(json.dumps(row))["run_id"]
    for k in ("dense/top1_err", "pruned/top1_err", "quantized/top1_err", "compressed/top1_err"):
        assert row["metrics"][k] == ref["metrics"][k], k
    # the same model in the same bytes; only the header's run_id differs, and deflate may code it a
    # byte shorter or longer, so file_bytes is compared through the file's parts
    same = ("dense_bytes", "pq_bytes", "pqh_bytes")
    assert {k: row["size"][k] for k in same} == {k: ref["size"][k] for k in same}
    (h1, p1, _, n1), (h2, p2, _, n2) = (_load(next((d / "results").glob("**/*.dcz"))) for d in (kill_dir, ref_dir))
    assert bytes(p1) == bytes(p2)
    assert {**h1, "meta": {**h1["meta"], "run_id": None}} == {**h2, "meta": {**h2["meta"], "run_id": None}}
    assert (n1, n2) == (row["size"]["file_bytes"], ref["size"]["file_bytes"])
    assert [r["top1_err_retrained"] for r in row["rounds"]] == [r["top1_err_retrained"] for r in ref["rounds"]]
    assert len(list((kill_dir / "results").glob("**/*.dcz"))) == 1

    # the same command again: complete, nothing rerun, still one row
    again = _run(kill_dir)
    assert "compressed/top1_err" in again.stdout
    assert len(rows_in(kill_dir)) == 1


def test_changed_config_in_the_same_folder_starts_a_new_run(tmp_path):
    base = [PY, str(ROOT / "run.py"), "data=mnist_sample", "logger=none", "trainer.enable_progress_bar=false",
            f"paths.results_dir={tmp_path / 'results'}", f"hydra.run.dir={tmp_path / 'out'}"]
    first = subprocess.run(base + ["dense.epochs=1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    # an interrupted unit of an old config must not be resumed either
    (tmp_path / "out" / "ckpt" / "dense").mkdir(parents=True)
    (tmp_path / "out" / "ckpt" / "dense" / "last.ckpt").write_bytes(b"from another config")
    second = subprocess.run(base + ["dense.epochs=2"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    rows = [json.loads(p.read_text()) for p in rows_in(tmp_path)]
    assert sorted(r["config"]["dense"]["epochs"] for r in rows) == [1, 2]
    assert len({r["run_id"] for r in rows}) == 2
    assert list((tmp_path / "out").glob("previous-*"))
