"""Every experiment runs end to end with smoke settings; storage-only rows."""
import json
import subprocess

import pytest

from conftest import PY, ROOT, rows_in, run_cli


def test_storage_only_lenet5_needs_no_data(tmp_path):
    p = run_cli(["+experiment=lenet5", "storage_only=true", "data=mnist", f"data.root={tmp_path / 'absent'}"], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    (row_path,) = rows_in(tmp_path)
    row = json.loads(row_path.read_text())
    assert row["storage_only"] is True and row["weights_source"] == "initialized" and row["dataset"] == "none"
    assert row["metrics"] == {}
    want = {"conv1": 0.66, "conv2": 0.12, "ip1": 0.08, "ip2": 0.19}
    for l in row["layers"]:
        assert l["density"] == pytest.approx(want[l["name"]], abs=2e-3)
        assert l["weight_bits_pq"] == (8 if l["kind"] == "conv" else 5)
    assert row["size"]["file_bytes"] > row["size"]["pqh_bytes"]


def _multirun(tmp_path, experiments, data):
    cmd = [PY, str(ROOT / "run.py"), "-m", f"+experiment={experiments}", f"data={data}", "trainer=smoke", "logger=none",
           f"paths.results_dir={tmp_path / 'results'}", f"hydra.sweep.dir={tmp_path / 'multirun'}"]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3000)
    assert p.returncode == 0, p.stderr[-3000:]
    return p


def test_multirun_lenets_smoke(tmp_path):
    _multirun(tmp_path, "lenet300,lenet5", "mnist_sample")
    rows = [json.loads(p.read_text()) for p in rows_in(tmp_path)]
    assert sorted(r["experiment"] for r in rows) == ["lenet300", "lenet5"]
    assert all("compressed/top1_err" in r["metrics"] for r in rows)


@pytest.mark.slow
def test_multirun_imagenet_models_smoke(tmp_path):
    """AlexNet and VGG-16 through every stage on fake ImageNet, incl. k-means + Huffman of all 61M / 138M weights."""
    _multirun(tmp_path, "alexnet,vgg16", "fake_imagenet")
    rows = {json.loads(p.read_text())["experiment"]: json.loads(p.read_text()) for p in rows_in(tmp_path)}
    assert set(rows) == {"alexnet", "vgg16"}
    assert rows["alexnet"]["params"]["weights"] == 60954656  # the paper's Caffe AlexNet (DC Table 4)
    assert rows["vgg16"]["params"]["weights"] == 138344128
    for r in rows.values():
        assert r["ratio"]["pqh"] > 20
