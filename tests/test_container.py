import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from compression import container
from compression.container import CompressedFileError, LayerInput, inspect, read_compressed, write_compressed

ROOT = Path(__file__).resolve().parents[1]
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable


def _quantize(w: torch.Tensor, bits: int, sparse: bool, density: float, rng):
    """Toy prune + quantize: keep the largest |w|, codebook of evenly spaced centroids."""
    k = 1 << bits
    flat = w.detach().numpy().reshape(-1)
    if sparse:
        keep = np.abs(flat) >= np.quantile(np.abs(flat), 1 - density)
        cb = np.concatenate([[0.0], np.linspace(flat.min(), flat.max(), k - 1)]).astype(np.float32)
        lab = np.where(keep, 1 + np.abs(flat[:, None] - cb[None, 1:]).argmin(1), 0)
    else:
        cb = np.linspace(flat.min(), flat.max(), k).astype(np.float32)
        lab = np.abs(flat[:, None] - cb[None, :]).argmin(1)
    return cb, lab.reshape(w.shape)


def _tiny(tmp_path, sparse_fc=True, name="m.dcz"):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 10))
    cb1, lab1 = _quantize(model[0].weight, 8, True, 0.6, rng)
    cb2, lab2 = _quantize(model[2].weight, 5, sparse_fc, 0.1, rng)
    layers = [
        LayerInput("0.weight", "conv1", "conv", tuple(model[0].weight.shape), cb1, torch.from_numpy(lab1), 8, 4),
        LayerInput("2.weight", "fc1", "fc", tuple(model[2].weight.shape), cb2, lab2, 5, 3, sparse=sparse_fc),
    ]
    raw = {"0.bias": model[0].bias, "2.bias": model[2].bias.detach().numpy()}
    path = tmp_path / name
    rep = write_compressed(path, layers, raw, {"model": "tiny", "experiment": "test", "run_id": "r1"})
    return model, layers, raw, path, rep


@pytest.mark.parametrize("sparse_fc", [True, False])
def test_roundtrip_identical(tmp_path, sparse_fc):
    model, layers, raw, path, rep = _tiny(tmp_path, sparse_fc)
    sd, meta, rep2 = read_compressed(path)
    assert meta == {"model": "tiny", "experiment": "test", "run_id": "r1"}
    assert list(sd) == ["0.weight", "2.weight", "0.bias", "2.bias"]
    for l in layers:
        want = torch.from_numpy(l.codebook[np.asarray(l.labels)])
        assert sd[l.key].dtype == torch.float32 and sd[l.key].shape == want.shape
        assert torch.equal(sd[l.key], want)
    assert torch.equal(sd["0.bias"], model[0].bias.detach())
    assert torch.equal(sd["2.bias"], torch.from_numpy(raw["2.bias"]))
    assert rep2 == rep
    assert rep["size"]["file_bytes"] == os.path.getsize(path)
    assert rep["layers"][1]["sparse"] is sparse_fc
    model.load_state_dict(sd)  # the keys and shapes fit the model
    assert not list(tmp_path.glob("*.tmp"))


def test_empty_and_full_layers(tmp_path):
    cb = np.array([0.0, 1.0, 2.0, 3.0], np.float32)
    layers = [
        LayerInput("a", "fc1", "fc", (5, 7), cb, np.zeros((5, 7), np.int64), 2, 3),  # all pruned: no entries
        LayerInput("b", "fc2", "fc", (3, 3), cb, np.full((3, 3), 2), 2, 3),  # 100% density, one symbol
        LayerInput("c", "fc3", "fc", (0, 4), cb, np.zeros((0, 4), np.int64), 2, 3),  # zero-size
    ]
    rep = write_compressed(tmp_path / "e.dcz", layers, {}, {})
    assert rep["layers"][0]["entries"] == 0 and rep["layers"][1]["entries"] == 9
    sd, _, _ = read_compressed(tmp_path / "e.dcz")
    assert not sd["a"].any() and (sd["b"] == 2.0).all() and sd["c"].shape == (0, 4)


def test_multichunk_layer(tmp_path):
    rng = np.random.default_rng(5)
    n = 300 * 784
    lab = np.where(rng.random(n) < 0.08, rng.integers(1, 64, n), 0).reshape(300, 784)
    cb = np.concatenate([[0.0], rng.normal(size=63)]).astype(np.float32)
    path = tmp_path / "big.dcz"
    rep = write_compressed(path, [LayerInput("ip1.weight", "ip1", "fc", (300, 784), cb, lab, 6, 5)],
                           {"ip1.bias": np.zeros(300, np.float32)}, {}, chunk_size=1000)
    assert rep["layers"][0]["offset_bits"] > 0
    sd, _, _ = read_compressed(path)
    assert torch.equal(sd["ip1.weight"], torch.from_numpy(cb[lab]))


def test_lenet300_fixed_overhead_below_1k(tmp_path):
    rng = np.random.default_rng(0)
    layers, raw = [], {}
    for name, shape, d in [("ip1", (300, 784), 0.08), ("ip2", (100, 300), 0.09), ("ip3", (10, 100), 0.26)]:
        n = int(np.prod(shape))
        lab = np.where(rng.random(n) < d, rng.integers(1, 64, n), 0).reshape(shape)
        cb = np.concatenate([[0.0], np.sort(rng.normal(size=63))]).astype(np.float32)
        layers.append(LayerInput(f"{name}.weight", name, "fc", shape, cb, lab, 6, 5))
        raw[f"{name}.bias"] = np.zeros(shape[0], np.float32)
    meta = {"model": "lenet300", "experiment": "lenet300", "run_id": "20261129-061500-3f2a"}
    rep = write_compressed(tmp_path / "l.dcz", layers, raw, meta)
    s = rep["size"]
    assert s["file_bytes"] == os.path.getsize(tmp_path / "l.dcz")
    assert s["file_bytes"] - s["pqh_bytes"] < 1024
    assert s["dense_bytes"] == 4 * (266200 + 410)


def _damage(path: Path, out: Path, fn):
    data = bytearray(path.read_bytes())
    out.write_bytes(bytes(fn(data)))
    return out


def _flip(i):
    def f(d):
        d[i] ^= 0x01
        return d
    return f


def test_damaged_files_raise(tmp_path):
    _, _, _, path, _ = _tiny(tmp_path)
    size = os.path.getsize(path)
    hlen = struct.unpack_from("<I", path.read_bytes(), 10)[0]
    cases = {
        "truncated": (lambda d: d[: size - 10], "truncated"),
        "truncated_tiny": (lambda d: d[:5], "magic"),
        "payload_flip": (_flip(22 + hlen + 40), "checksum"),
        "header_flip": (_flip(22 + 5), "checksum"),
        "checksum_flip": (_flip(size - 1), "checksum"),
        "magic": (lambda d: b"PK\x03\x04" + d[4:], "magic"),
        "trailing": (lambda d: d + b"\x00", "trailing"),
        "version": (lambda d: d[:8] + struct.pack("<H", 99) + d[10:], "version"),
        "empty": (lambda d: b"", "magic"),
    }
    for name, (fn, word) in cases.items():
        bad = _damage(path, tmp_path / f"{name}.dcz", fn)
        with pytest.raises(CompressedFileError, match=word) as ei:
            read_compressed(bad)
        assert str(bad) in str(ei.value)
        with pytest.raises(CompressedFileError):
            inspect(bad, decode=False)
    with pytest.raises(CompressedFileError, match="no such file"):
        read_compressed(tmp_path / "missing.dcz")


def test_consistent_but_lying_header_is_rejected(tmp_path):
    """A header edited with a recomputed checksum (e.g. a buggy writer) must still not decode wrong."""
    import hashlib

    _, _, _, path, _ = _tiny(tmp_path)
    data = path.read_bytes()
    hlen = struct.unpack_from("<I", data, 10)[0]
    header = json.loads(zlib.decompress(data[22:22 + hlen]))

    def rebuild(h, version=container.FORMAT_VERSION):
        hb = json.dumps(h, separators=(",", ":")).encode()
        hb = zlib.compress(hb) if version >= 3 else hb
        body = data[22 + hlen:-32]
        prefix = struct.pack("<8sHIQ", container.MAGIC, version, len(hb), 22 + len(hb) + len(body) + 32)
        blob = prefix + hb + body
        out = tmp_path / "lie.dcz"
        out.write_bytes(blob + hashlib.sha256(blob).digest())
        return out

    h = json.loads(json.dumps(header))
    h["layers"][0]["nz"] -= 1  # wrong non-zero count
    with pytest.raises(CompressedFileError, match="non-zeros"):
        read_compressed(rebuild(h))
    h = json.loads(json.dumps(header))
    h["layers"][0]["shape"] = [4, 2, 3, 2]  # fewer weights than the entries reach (72 -> 48)
    with pytest.raises(CompressedFileError, match="past the end"):
        read_compressed(rebuild(h))
    with pytest.raises(CompressedFileError, match="version"):  # a format-3 header behind a format-2 prefix
        read_compressed(rebuild(json.loads(json.dumps(header)), version=2))
    h = json.loads(json.dumps(header))
    h["layers"][0]["w"][0] += 8  # stream one byte longer than the payload holds
    with pytest.raises(CompressedFileError, match="payload bytes"):
        read_compressed(rebuild(h))


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    _, layers, raw, path, _ = _tiny(tmp_path)
    before = path.read_bytes()
    # invalid input: nothing is created, the existing file is untouched
    bad = LayerInput("x", "fc9", "fc", (2, 2), np.array([0.0, 1.0], np.float32), np.array([[0, 5], [1, 1]]), 1, 2)
    with pytest.raises(ValueError):
        write_compressed(path, [bad], {}, {})
    with pytest.raises(ValueError):  # sparse codebook without 0.0 at index 0
        write_compressed(path, [LayerInput("x", "f", "fc", (2,), np.array([1.0, 2.0], np.float32),
                                           np.array([0, 1]), 1, 2)], {}, {})
    # failure during the write itself (disk error at fsync)
    def boom(fd):
        raise OSError(28, "No space left on device")

    from compression import atomic

    monkeypatch.setattr(atomic.os, "fsync", boom)
    with pytest.raises(OSError):
        write_compressed(path, layers, raw, {})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.dcz"]


def test_cli(tmp_path):
    _, _, _, path, _ = _tiny(tmp_path)
    r = subprocess.run([PY, "-m", "compression", "inspect", str(path)], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "conv1" in r.stdout and "fc1" in r.stdout and "checksum+decode" in r.stdout
    bad = _damage(path, tmp_path / "bad.dcz", _flip(100))
    out = tmp_path / "out.pt"
    r = subprocess.run([PY, "-m", "compression", "decode", str(bad), str(out)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "checksum" in r.stderr
    assert not out.exists() and not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))
    r = subprocess.run([PY, "-m", "compression", "decode", str(path), str(out)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    sd = torch.load(out)
    assert torch.equal(sd["0.weight"], read_compressed(path)[0]["0.weight"])


def _fixture_tensors():
    """The tensors both committed fixtures (tests/data/format_v1.dcz, format_v2.dcz) were written from:
    a sparse 4-bit fc layer with its codebook, a dense-quantized 3-bit conv layer with its codebook, a bias."""
    rng = np.random.default_rng(7)
    cb = np.sort(rng.standard_normal(16).astype(np.float32))
    cb[0] = 0.0
    lab = rng.integers(0, 16, size=(12, 20))
    lab[rng.random((12, 20)) < 0.7] = 0
    cb2 = np.sort(rng.standard_normal(8).astype(np.float32))
    lab2 = rng.integers(0, 8, size=(4, 3, 3, 3))
    bias = rng.standard_normal(12).astype(np.float32)
    return cb, lab, cb2, lab2, bias


def test_format_v1_file_still_decodes():
    # tests/data/format_v1.dcz was written by the format-1 writer (all 2**bits float32 centroids
    # before the weight table, fixed-width tables) from exactly these tensors.
    cb, lab, cb2, lab2, bias = _fixture_tensors()
    path = ROOT / "tests" / "data" / "format_v1.dcz"
    sd, meta, rep = read_compressed(path)
    assert meta["note"] == "format v1 fixture"
    assert torch.equal(sd["fc.weight"], torch.from_numpy(cb[lab]))
    assert torch.equal(sd["conv.weight"], torch.from_numpy(cb2[lab2]))
    assert torch.equal(sd["fc.bias"], torch.from_numpy(bias))
    assert rep["layers"][0]["codebook_bits"] == 32 * 16
    info = inspect(path)
    assert info["format_version"] == 1 and info["file_bytes"] == os.path.getsize(path)


def test_format_v2_file_still_decodes():
    # tests/data/format_v2.dcz was written by the format-2 writer (plain JSON header), float16,
    # from the same tensors as the format-1 fixture: sparse 4-bit fc (3-bit gaps), dense 3-bit conv.
    cb, lab, cb2, lab2, bias = _fixture_tensors()
    path = ROOT / "tests" / "data" / "format_v2.dcz"
    sd, meta, rep = read_compressed(path)
    assert meta["note"] == "format v2 fixture"
    half = lambda a: torch.from_numpy(a.astype(np.float16).astype(np.float32))  # noqa: E731
    assert torch.equal(sd["fc.weight"], half(cb)[torch.from_numpy(lab)])
    assert torch.equal(sd["conv.weight"], half(cb2)[torch.from_numpy(lab2)])
    assert torch.equal(sd["fc.bias"], half(bias))
    info = inspect(path)
    assert info["format_version"] == 2 and info["file_bytes"] == os.path.getsize(path)


def test_header_is_deflated_and_checked(tmp_path):
    import hashlib

    _, _, _, path, _ = _tiny(tmp_path)
    data = path.read_bytes()
    version, hlen = struct.unpack_from("<HI", data, 8)
    assert version == 4 and json.loads(zlib.decompress(data[22:22 + hlen]))["v"] == 4
    body = data[22 + hlen:-32]

    def with_header(hb):
        blob = struct.pack("<8sHIQ", container.MAGIC, 4, len(hb), 22 + len(hb) + len(body) + 32) + hb + body
        out = tmp_path / "h.dcz"
        out.write_bytes(blob + hashlib.sha256(blob).digest())
        return out

    plain = zlib.decompress(data[22:22 + hlen])
    for bad in (plain,  # not deflated behind a version-4 prefix
                zlib.compress(plain)[:-3],  # cut short
                zlib.compress(plain) + b"xx"):  # trailing bytes
        with pytest.raises(CompressedFileError, match="invalid header"):
            read_compressed(with_header(bad))
    bomb = zlib.compress(b" " * (container.MAX_HEADER_BYTES + 1))
    with pytest.raises(CompressedFileError, match="inflates past"):
        read_compressed(with_header(bomb))


def test_only_present_centroids_are_stored(tmp_path):
    # 8-bit codebook (256 centroids) but the labels use 4 of them (3, 17, 200, 255) besides the
    # sparse 0 (and the fillers' 0): format 2 stores 4 float32 centroids = 16 bytes, not 1024.
    cb = np.linspace(-1, 1, 256).astype(np.float32)
    cb[0] = 0.0
    lab = np.zeros((10, 30), np.int64)
    lab[::2, ::3] = np.array([3, 17, 17, 200, 255])[np.arange(50) % 5].reshape(5, 10)
    layer = LayerInput("w", "fc1", "fc", (10, 30), cb, lab, 8, 4)
    rep = write_compressed(tmp_path / "a.dcz", [layer], {}, {})
    assert rep["layers"][0]["codebook_bits"] == 4 * 32 and rep["layers"][0]["fillers"] > 0
    sd, _, _ = read_compressed(tmp_path / "a.dcz")
    assert torch.equal(sd["w"], torch.from_numpy(cb[lab]))
    # a dense-quantized layer stores every centroid it uses (here 1, 3, 17, 200, 255)
    dense = LayerInput("w", "fc1", "fc", (10, 30), cb, np.where(lab == 0, 1, lab), 8, 0, sparse=False)
    rep = write_compressed(tmp_path / "b.dcz", [dense], {}, {})
    assert rep["layers"][0]["codebook_bits"] == 5 * 32
    sd, _, _ = read_compressed(tmp_path / "b.dcz")
    assert torch.equal(sd["w"], torch.from_numpy(cb[np.where(lab == 0, 1, lab)]))


def test_float16_storage(tmp_path):
    model, layers, raw, path32, rep32 = _tiny(tmp_path)
    path = tmp_path / "h.dcz"
    rep = write_compressed(path, layers, raw, {"model": "tiny"}, float_dtype="float16")
    sd, _, _ = read_compressed(path)
    for l in layers:  # the decoded weights are the float16-rounded centroids, exactly
        want = torch.from_numpy(l.codebook.astype(np.float16).astype(np.float32)[np.asarray(l.labels)])
        assert torch.equal(sd[l.key], want)
    assert sd["0.bias"].dtype == torch.float32  # float16 on disk, float32 in the state dict
    assert torch.equal(sd["0.bias"], model[0].bias.detach().half().float())
    stored = sum(r["codebook_bits"] for r in rep["layers"]) // 8
    assert stored * 2 == sum(r["codebook_bits"] for r in rep32["layers"]) // 8
    biases = sum(v.numel() for v in model.state_dict().values() if v.dim() == 1)
    assert rep32["pqh_bytes"] - rep["pqh_bytes"] == stored + 2 * biases
    with pytest.raises(ValueError, match="float16"):
        write_compressed(tmp_path / "big.dcz", [LayerInput("w", "fc1", "fc", (2, 2), np.array([0.0, 1e6], np.float32),
                                                           np.array([[0, 1], [1, 1]]), 1, 2)], {}, {}, float_dtype="float16")
    with pytest.raises(ValueError, match="float_dtype"):
        write_compressed(tmp_path / "x.dcz", layers, raw, {}, float_dtype="bfloat16")
    assert not list(tmp_path.glob("big.dcz*")) and not list(tmp_path.glob("x.dcz*"))


def test_lenet5_shaped_file_header_is_under_1_kib(tmp_path):
    """file_bytes - pqh_bytes is the fixed part: under 1 KiB for a LeNet-5 file (format 2: 1,032 B)."""
    rng = np.random.default_rng(0)
    layers = []
    for name, kind, shape, dens, bits in (("conv1", "conv", (20, 1, 5, 5), .66, 8), ("conv2", "conv", (50, 20, 5, 5), .12, 8),
                                          ("ip1", "fc", (500, 800), .08, 5), ("ip2", "fc", (10, 500), .19, 5)):
        cb = np.linspace(-1, 1, 1 << bits).astype(np.float32)
        cb[0] = 0.0
        lab = np.where(rng.random(shape) < dens, rng.integers(1, 1 << bits, shape), 0)
        layers.append(LayerInput(f"{name}.weight", name, kind, shape, cb, lab, bits, 10 if name == "ip1" else 5))
    raw = {f"{n}.bias": rng.standard_normal(k).astype(np.float32) for n, k in (("conv1", 20), ("conv2", 50),
                                                                               ("ip1", 500), ("ip2", 10))}
    meta = {"model": "lenet5", "num_classes": 10, "in_channels": 1, "image_size": 28, "run_id": "20261129-115618-1148c1"}
    rep = write_compressed(tmp_path / "l5.dcz", layers, raw, meta, float_dtype="float16")
    assert rep["file_bytes"] == os.path.getsize(tmp_path / "l5.dcz")
    assert 0 < rep["file_bytes"] - rep["pqh_bytes"] < 1024
