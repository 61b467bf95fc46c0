"""docs/extending.md, run as printed: every `# file:` block goes into a scratch copy of its folder, and the
pipeline runs the new network, dataset, criterion, quantizer and coder together; no other edit."""

import gzip
import importlib
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, compose_cfg, rows_in

DOC = ROOT / "docs" / "extending.md"
BLOCK = re.compile(r"```(?:python|yaml)\n# (file|in the repository): (\S+)\n(.*?)```", re.S)
PACKAGES = ("experiments.models", "experiments", "compression.criteria", "compression.coders", "compression")


def _blocks(kind: str) -> dict[str, str]:
    return {path: body for k, path, body in BLOCK.findall(DOC.read_text()) if k == kind}


@pytest.fixture
def plugins(tmp_path):
    """The doc's files under tmp_path, importable (package __path__) and composable (hydra.searchpath)."""
    for rel, body in _blocks("file").items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body)
    added = []
    for pkg in PACKAGES:
        extra = tmp_path / pkg.replace(".", "/")
        if extra.is_dir():
            importlib.import_module(pkg).__path__.append(str(extra))
            added.append((pkg, str(extra)))
    yield tmp_path
    for pkg, extra in added:
        importlib.import_module(pkg).__path__.remove(extra)
    for name in [m for m in sys.modules if m.split(".")[-1] in ("tiny_mlp", "taylor", "uniform_quantizer", "fixed",
                                                                  "kmnist_data")]:
        del sys.modules[name]


def _idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_the_doc_names_one_file_and_one_yaml_per_plugin():
    files = sorted(_blocks("file"))
    assert files == sorted(["experiments/models/tiny_mlp.py", "conf/model/tiny_mlp.yaml",
                            "compression/criteria/taylor.py", "conf/prune/criterion/taylor.yaml",
                            "compression/uniform_quantizer.py", "conf/quantize/quantizer/uniform.yaml",
                            "compression/coders/fixed.py", "conf/encode/coder/fixed.yaml",
                            "experiments/kmnist_data.py", "conf/data/kmnist.yaml"])
    for rel in files:
        assert not (ROOT / rel).exists(), f"{rel} is an example of the doc, not a file of the repository"


def test_the_alexnet_walkthrough_matches_the_repository():
    for rel, body in _blocks("in the repository").items():
        text = (ROOT / rel).read_text()
        for line in body.splitlines():
            assert line.strip() in text, (rel, line)


def test_every_example_plugin_through_the_pipeline(plugins, tmp_path):
    from compression.architecture import decode_model
    from compression.container import inspect
    from experiments.data import MNISTDataModule
    from experiments.evaluate import test_errors as decoded_test_errors
    from experiments.pipeline import run

    data = tmp_path / "kmnist"
    data.mkdir()
    g = np.random.default_rng(0)
    ytr, yte = g.integers(0, 10, 600), g.integers(0, 10, 200)
    xtr = g.random((600, 28, 28)) * 10 + ytr[:, None, None] * 25  # random images, brightness ~ class
    xte = g.random((200, 28, 28)) * 10 + yte[:, None, None] * 25
    for name, arr in (("train-images-idx3-ubyte", xtr), ("train-labels-idx1-ubyte", ytr),
                      ("t10k-images-idx3-ubyte", xte), ("t10k-labels-idx1-ubyte", yte)):
        _idx(data / f"{name}.gz", arr)
    cfg = compose_cfg([f"hydra.searchpath=[file://{plugins / 'conf'}]", "data=kmnist", f"data.root={data}",
                       "data.val_size=100", "data.download=false", "model=tiny_mlp", "prune=density",
                       'prune.density={*:0.1}', "prune/criterion=taylor", "prune.rounds=2", "prune.epochs_per_round=1",
                       "quantize=kmeans", "quantize/quantizer=uniform", "quantize.bits={conv:4,fc:4}",
                       "encode=huffman", "encode/coder=fixed", "dense.epochs=1", "logger=none",
                       "trainer.enable_progress_bar=false"], tmp_path / "run")
    row = run(cfg)
    assert rows_in(tmp_path / "run") and row["dataset"] == "kmnist" and row["model"] == "tiny_mlp"
    c = row["config"]
    assert (c["prune"]["criterion"]["_target_"], c["quantize"]["quantizer"]["_target_"], c["encode"]["coder"]["_target_"]) \
        == ("compression.criteria.taylor.Taylor", "compression.uniform_quantizer.Uniform", "compression.coders.fixed.Fixed")
    dropped = row["rounds"][-1].get("dead_connections_dropped", {})  # the density target, less LWC 3.4's drop
    assert [l["nonzeros"] for l in row["layers"]] == [round(0.1 * 784 * 64) - dropped.get("hidden", 0),
                                                      round(0.1 * 64 * 10) - dropped.get("out", 0)]
    path = row["artifacts"]["compressed_file"]
    assert inspect(path)["coder"] == "fixed"
    dm = type("D", (MNISTDataModule,), {"name": "kmnist"})(root=str(data), val_size=100, download=False)
    dm.setup()
    err = decoded_test_errors(decode_model(path), dm.test_dataloader(), 10)["top1_err"]
    assert err == pytest.approx(row["metrics"]["compressed/top1_err"], abs=1e-6)
