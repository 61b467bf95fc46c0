"""End-to-end: the real command on the offline MNIST sample, tiny epochs, into tmp folders."""
import json

import pytest

from conftest import compose_cfg, rows_in, run_cli
from experiments.pipeline import run

TINY = ["data=mnist_sample", "dense.epochs=1", "prune.rounds=2", "prune.epochs_per_round=1", "quantize.epochs=1",
        "logger=none", "trainer.enable_progress_bar=false"]


@pytest.fixture(scope="module")
def lenet300_row(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    p = run_cli(["+experiment=lenet300", *TINY], tmp)
    assert p.returncode == 0, p.stderr[-3000:]
    rows = rows_in(tmp)
    assert len(rows) == 1
    return json.loads(rows[0].read_text()), p.stdout, tmp


def test_row_has_required_keys(lenet300_row):
    row, out, _ = lenet300_row
    for k in ("experiment", "model", "dataset", "seed", "git_commit", "git_dirty", "config", "metrics", "params",
              "time_s", "layers", "ratio", "rounds"):
        assert k in row, k
    assert row["experiment"] == "lenet300" and row["model"] == "lenet300" and row["dataset"] == "mnist_sample"
    assert row["params"]["weights"] == 266200
    assert row["config"]["dense"]["epochs"] == 1  # the resolved config
    for stage in ("dense", "pruned", "quantized"):
        assert 0.0 <= row["metrics"][f"{stage}/top1_err"] <= 100.0
    assert "dense/top1_err" in out  # printed for the user


def test_row_pruning_fields(lenet300_row):
    row, _, _ = lenet300_row
    names = [l["name"] for l in row["layers"]]
    assert names == ["ip1", "ip2", "ip3"]
    want = {"ip1": 0.08, "ip2": 0.09, "ip3": 0.26}
    for l in row["layers"]:
        assert l["kind"] == "fc"
        assert l["density"] == pytest.approx(want[l["name"]], abs=1e-3)
        assert l["nonzeros"] == round(want[l["name"]] * l["weights"])
        assert "dead_in" in l and "dead_out" in l
    total = sum(l["weights"] for l in row["layers"])
    assert row["ratio"]["p"] == pytest.approx(total / sum(l["nonzeros"] for l in row["layers"]), rel=1e-3)
    assert len(row["rounds"]) == 2
    assert row["rounds"][-1]["density"] == pytest.approx(total and sum(l["nonzeros"] for l in row["layers"]) / total, abs=1e-4)


def test_same_seed_same_numbers(tmp_path):
    a = run(compose_cfg(["dense.epochs=1", "write_row=false", "logger=none", "trainer.enable_progress_bar=false",
                         "trainer.deterministic=true"], tmp_path / "a"))
    b = run(compose_cfg(["dense.epochs=1", "write_row=false", "logger=none", "trainer.enable_progress_bar=false",
                         "trainer.deterministic=true"], tmp_path / "b"))
    assert a["metrics"] == b["metrics"]
    assert not (tmp_path / "a" / "results").exists()  # write_row=false writes nothing


def test_row_storage_fields_come_from_the_file(lenet300_row):
    import os

    row, _, tmp = lenet300_row
    path = row["artifacts"]["compressed_file"]
    assert os.path.isfile(path)
    assert row["size"]["file_bytes"] == os.path.getsize(path)
    assert 0 < row["size"]["file_bytes"] - row["size"]["pqh_bytes"] < 1024  # fixed header only
    assert row["size"]["dense_bytes"] == 4 * (266200 + 410)
    assert row["ratio"]["pqh"] == pytest.approx(row["size"]["dense_bytes"] / row["size"]["pqh_bytes"], rel=1e-3)
    for l in row["layers"]:
        for k in ("weight_bits_pq", "weight_bits_pqh", "index_bits_pq", "index_bits_pqh", "pct_pq", "pct_pqh",
                  "entries", "fillers"):
            assert k in l, k
        assert l["weight_bits_pq"] == 6


def test_compressed_file_decodes_to_the_reported_error(lenet300_row, tmp_path):
    import subprocess

    from conftest import PY, ROOT

    row, _, _ = lenet300_row
    out = subprocess.run([PY, "-m", "experiments.evaluate", row["artifacts"]["compressed_file"], "data=mnist_sample"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"top1_err {row['metrics']['compressed/top1_err']:.2f}" in out.stdout
