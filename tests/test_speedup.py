"""Correctness of the speedup benchmark's kernels, byte model and plumbing (no timing asserts)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from compression.sparse_format import decode_relative, encode_relative
from compression import kernels as K
from experiments.speedup.bandwidth import blocked_csr_bytes, csr_bytes, dense_bytes, grouped_bytes, relative_bytes
from experiments.speedup.energy import DRAM_PJ, SRAM_PJ, inference_energy
from experiments.speedup.layers import checkpoint_layers, linear_codebook, prepare_layer

RTOL = 1e-5


def _layer(rng, out_f, in_f, density, index_bits, empty_rows=(), weight_bits=5):
    mask = rng.random((out_f, in_f)) < density
    for r in empty_rows:
        mask[r] = False
    labels = np.where(mask, rng.integers(1, 1 << weight_bits, (out_f, in_f)), 0).astype(np.uint8)
    codebook = rng.standard_normal(1 << weight_bits).astype(np.float32)
    codebook[0] = 0.0
    return labels, codebook


def _close(y, ref):
    ref = np.asarray(ref, np.float64)
    scale = max(np.abs(ref).max(), 1.0)
    np.testing.assert_allclose(np.asarray(y, np.float64), ref, rtol=0, atol=RTOL * scale * 10)


CASES = [
    # out, in, density, index_bits, threads, empty rows
    (7, 40, 0.3, 3, 1, (2,)),  # tiny, many fillers (3-bit gaps), one empty row
    (50, 33, 0.05, 4, 3, (0, 49)),  # mostly empty rows, first and last empty, 3 chunks
    (64, 300, 1.0, 5, 2, ()),  # 100% density: no fillers
    (30, 1000, 0.01, 5, 1, (5, 6, 7)),  # long zero runs: 5-bit words of 8 fillers (byte overflow case)
    (30, 200, 0.02, 8, 2, ()),  # 8-bit gaps: scalar path
    (100, 300, 0.2, 6, 4, ()),  # 6-bit gaps: scalar path, 4 chunks
    (40, 257, 0.09, 4, 2, (39,)),  # width not a multiple of 8, trailing empty row
    (3, 5, 0.0, 4, 1, ()),  # all pruned: no entries at all
    (12, 9, 0.5, 4, 1, ()),  # rows narrower than one 8-entry word
]


@pytest.mark.parametrize("out_f,in_f,density,bits,threads,empty", CASES)
def test_relative_products_equal_dense(out_f, in_f, density, bits, threads, empty):
    rng = np.random.default_rng(out_f * 1000 + in_f)
    labels, cb = _layer(rng, out_f, in_f, density, bits, empty)
    W = cb[labels].astype(np.float64)
    symbols, gaps = encode_relative(labels.reshape(-1), bits)
    assert symbols.dtype == np.uint8 and gaps.dtype == np.uint8
    x = rng.standard_normal(in_f).astype(np.float32)
    X = rng.standard_normal((5, in_f)).astype(np.float32)
    # one stream as given, then column panels (a partial last panel; one panel per column)
    for panel_cols in (0, max(1, in_f // 3), 1):
        layer = K.RelativeLayer(symbols, gaps, cb, labels.shape, bits, threads, panel_cols=panel_cols)
        assert layer.n_panels == (1 if panel_cols in (0, in_f) else -(-in_f // panel_cols))
        assert layer.chunks.shape[0] == layer.n_panels
        _close(layer.mv(x), W @ x)
        _close(layer.mm(X), X @ W.T)


def _ungroup(layer):
    """The ``[out, in]`` labels a GroupedLayer holds, read back block by block (and its pads)."""
    o, n = layer.shape
    labels = np.zeros((o, n), np.int64)
    pads = 0
    for p in range(layer.n_panels):
        c0 = p * layer.panel_cols
        width = min(n, c0 + layer.panel_cols) - c0
        for r in range(o):
            for k in range(layer.bptr[p * o + r], layer.bptr[p * o + r + 1]):
                for c in layer.cols[4 * k:4 * k + 4]:
                    if c == width:
                        pads += 1
                    else:
                        assert c < width and labels[r, c0 + c] == 0  # every non-zero stored once
                        labels[r, c0 + c] = layer.syms[k]
    return labels, pads


@pytest.mark.parametrize("out_f,in_f,density,bits,threads,empty", CASES)
def test_grouped_products_equal_dense(out_f, in_f, density, bits, threads, empty):
    rng = np.random.default_rng(out_f * 1000 + in_f + 1)
    labels, cb = _layer(rng, out_f, in_f, density, bits, empty)
    W = cb[labels].astype(np.float64)
    symbols, gaps = encode_relative(labels.reshape(-1), bits)
    x = rng.standard_normal(in_f).astype(np.float32)
    X = rng.standard_normal((5, in_f)).astype(np.float32)
    for panel_cols in (0, max(1, in_f // 3), 1):
        layer = K.GroupedLayer(symbols, gaps, cb, labels.shape, bits, threads, panel_cols=panel_cols)
        assert layer.n_panels == (1 if panel_cols in (0, in_f) else -(-in_f // panel_cols))
        held, pads = _ungroup(layer)
        assert np.array_equal(held, labels)  # the same matrix, read from the blocks
        runs = sum(len(np.unique(labels[r, c0:c0 + layer.panel_cols][labels[r, c0:c0 + layer.panel_cols] > 0]))
                   for r in range(out_f) for c0 in range(0, in_f, layer.panel_cols))
        assert layer.blocks == layer.slots // 4 and pads <= 3 * runs and layer.slots == pads + int((labels > 0).sum())
        assert layer.blocks == sum(-(-int(((labels[r, c0:c0 + layer.panel_cols]) == s).sum()) // 4)
                                   for r in range(out_f) for c0 in range(0, in_f, layer.panel_cols)
                                   for s in range(1, 1 << 5))  # each (row, panel, symbol) run padded to 4
        _close(layer.mv(x), W @ x)
        _close(layer.mm(X), X @ W.T)


def test_grouped_layer_panels_and_errors():
    rng = np.random.default_rng(2)
    labels, cb = _layer(rng, 3, 70_000, 0.01, 5)
    s, g = encode_relative(labels.reshape(-1), 5)
    wide = K.GroupedLayer(s, g, cb, labels.shape, 5, batch=4)  # one panel would need 17-bit indices
    assert wide.n_panels == 2 and wide.panel_cols == 35_000
    X = rng.standard_normal((4, 70_000)).astype(np.float32)
    _close(wide.mm(X), X @ cb[labels].astype(np.float64).T)
    assert K.GroupedLayer(s, g, cb, labels.shape, 5).panel_cols <= K.l1d_bytes() // 8  # batch 1: half the L1
    with pytest.raises(ValueError, match="panel_cols"):
        K.grouped_blocks(s, g, labels.shape, 5, 70_000)
    with pytest.raises(ValueError, match="past the codebook"):
        K.GroupedLayer(s, g, cb[:4], labels.shape, 5)


def test_equal_blocks():
    # the fewest blocks of at most max_cols, equal widths: AlexNet fc6 3 x 3072, VGG-16 fc6 7 x 3584
    assert K.equal_blocks(9216, 4096) == 3072 and K.equal_blocks(25088, 4096) == 3584
    assert K.equal_blocks(4096, 4096) == 4096 and K.equal_blocks(4097, 4096) == 2049
    assert K.equal_blocks(100, 4096) == 100 and K.equal_blocks(0, 4096) == 4096
    blk = K.BlockedCSR(np.zeros(3, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32), (2, 9216),
                       block_cols=None)
    assert blk.n_blocks == -(-9216 // K.equal_blocks(9216, K.l1d_bytes() // 8))


def test_column_panels_are_the_relative_format_of_each_panel():
    rng = np.random.default_rng(11)
    labels, cb = _layer(rng, 6, 10, 0.4, 2, (2,))
    sym, gap = encode_relative(labels.reshape(-1), 2)
    psym, pgap, chunks = K.column_panels(sym, gap, labels.shape, 2, 4, n_chunks=2)
    assert chunks.shape == (3, 2, 4)  # panels of 4, 4 and 2 columns
    for b, (c0, c1) in enumerate([(0, 4), (4, 8), (8, 10)]):
        s, g = encode_relative(labels[:, c0:c1].reshape(-1), 2)
        e0, e1 = chunks[b, 0, 0], chunks[b, -1, 1]
        assert np.array_equal(psym[e0:e1], s) and np.array_equal(pgap[e0:e1], g)
        assert np.array_equal(chunks[b, :, 2], chunks[0, :, 2])  # same first rows in every panel
    layer = K.RelativeLayer(sym, gap, cb, labels.shape, 2, 2, panel_cols=4)
    assert layer.entries == psym.size and layer.nbytes == psym.size * 2 + cb.nbytes + chunks.nbytes
    # the default: panels of half the L1 data cache at batch 1, none at batch > 1
    wide = np.zeros((2, 3 * K.l1d_bytes() // 16), np.uint8)  # 1.5 panels of l1d / 8 inputs
    wide[:, ::5] = 1
    s, g = encode_relative(wide.reshape(-1), 4)
    assert K.RelativeLayer(s, g, cb, wide.shape, 4).n_panels == 2
    assert K.RelativeLayer(s, g, cb, wide.shape, 4, batch=8).n_panels == 1


def test_overflowing_5bit_word_takes_the_exact_path():
    # 8 non-zeros, then a 300-position gap: fillers every 32 -> a word of eight 31-gaps (sum 256)
    n_in = 1024
    labels = np.zeros((2, n_in), np.uint8)
    labels[0, :8] = 1
    labels[0, 8 + 300] = 2
    labels[0, 8 + 300 + 290] = 3
    labels[1, 3] = 4
    sym, gap = encode_relative(labels.reshape(-1), 5)
    words = K._words(gap)
    assert (words == np.uint64(int.from_bytes(bytes([31] * 8), "little"))).any()
    cb = np.arange(32, dtype=np.float32) / 7
    cb[0] = 0
    layer = K.RelativeLayer(sym, gap, cb, labels.shape, 5, 1)
    assert layer.swar and layer.check_allmax
    x = np.random.default_rng(0).standard_normal(n_in).astype(np.float32)
    _close(layer.mv(x), cb[labels].astype(np.float64) @ x)


@pytest.mark.parametrize("out_f,in_f,density,bits,threads,empty", CASES[:5])
def test_numba_csr_equals_dense(out_f, in_f, density, bits, threads, empty):
    rng = np.random.default_rng(7)
    labels, cb = _layer(rng, out_f, in_f, density, bits, empty)
    L = prepare_layer("t", "t", labels, cb, bits, 5, "random")
    x = rng.standard_normal(in_f).astype(np.float32)
    X = rng.standard_normal((4, in_f)).astype(np.float32)
    W = L.dense.astype(np.float64)
    _close(K.csr_mv(L.indptr, L.indices, L.data, x, out_f), W @ x)
    _close(K.csr_mm(L.indptr, L.indices, L.data, X, out_f), X @ W.T)


def test_prepared_formats_hold_the_same_matrix():
    rng = np.random.default_rng(3)
    labels, cb = _layer(rng, 20, 70, 0.1, 4, (4,))
    L = prepare_layer("t", "t", labels, cb, 4, 5, "random")
    assert np.array_equal(decode_relative(L.symbols, L.gaps, labels.size, 4).reshape(labels.shape), labels)
    import scipy.sparse as sp

    S = sp.csr_matrix((L.data, L.indices, L.indptr), shape=L.shape)
    assert np.array_equal(S.toarray(), L.dense)
    assert L.indices.dtype == np.int32 and L.indptr.dtype == np.int32
    assert L.nnz == int((labels != 0).sum()) and L.fillers == L.entries - L.nnz >= 0


@pytest.mark.parametrize("batch", [1, 3])
def test_every_benchmarked_kernel_matches_dense(batch):
    from experiments.speedup.bench import cpu_kernels

    rng = np.random.default_rng(11)
    labels, cb = _layer(rng, 33, 260, 0.08, 4, (0, 5))
    L = prepare_layer("t", "t", labels, cb, 4, 5, "random")
    fns, touch, _ = cpu_kernels(L, batch, 1, np.random.default_rng(0))
    x = touch[0]
    ref = (L.dense.astype(np.float64) @ x.T.astype(np.float64)).T
    for name, fn in fns.items():
        y = fn()
        y = y.numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
        _close(y.reshape(ref.shape), ref)


@pytest.mark.parametrize("shape,density,block_cols,threads", [
    ((33, 260), 0.08, 64, 1),       # several blocks, a partial last block
    ((40, 100), 1.0, 7, 2),         # 100% density, block width not dividing the row, 2 row chunks
    ((17, 90), 0.0, 16, 3),         # empty layer: every row empty
    ((9, 50), 0.05, 1000, 1),       # one block wider than the layer: plain CSR order
])
def test_blocked_csr_matches_dense(shape, density, block_cols, threads):
    import scipy.sparse as sp

    m = sp.random(*shape, density=density, format="csr", dtype=np.float32, random_state=3)
    m.indices = m.indices.astype(np.int32)
    m.indptr = m.indptr.astype(np.int32)
    B = K.BlockedCSR(m.indptr, m.indices, m.data, shape, block_cols=block_cols, n_threads=threads)
    assert B.n_blocks == -(-shape[1] // block_cols)
    assert B.indices.size == m.nnz and B.bptr.size == B.n_blocks * (shape[0] + 1)
    for b in range(B.n_blocks):  # every entry of block b lies in block b's columns
        lo, hi = B.bptr[b * (shape[0] + 1)], B.bptr[(b + 1) * (shape[0] + 1) - 1]
        assert ((B.indices[lo:hi] // block_cols) == b).all()
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape[1]).astype(np.float32)
    X = rng.standard_normal((3, shape[1])).astype(np.float32)
    dense = m.toarray().astype(np.float64)
    _close(B.mv(x), dense @ x)
    _close(B.mm(X), (dense @ X.T).T)
    # bytes: CSR's values and int32 indices, one row-pointer array per block
    assert blocked_csr_bytes(shape[0], shape[1], m.nnz, B.n_blocks, 1)["weight_bytes"] == B.nbytes
    # torch/MKL CSR over the same blocks: the same product and the same bytes
    T = K.TorchBlockedCSR(m.indptr, m.indices, m.data, shape, block_cols=block_cols)
    assert T.n_blocks == B.n_blocks and T.nbytes == B.nbytes
    _close(T.mv(torch.from_numpy(x)).numpy(), dense @ x)
    _close(T.mm(torch.from_numpy(X)).numpy(), (dense @ X.T).T)


def test_relative_chunks_are_row_aligned_and_cover_the_stream():
    rng = np.random.default_rng(5)
    labels, _ = _layer(rng, 64, 100, 0.1, 4, (10, 11, 12))
    _, gaps = encode_relative(labels.reshape(-1), 4)
    ch = K.relative_chunks(gaps, 100, 64, 4)
    assert ch[0, 0] == 0 and ch[-1, 1] == gaps.size
    assert np.array_equal(ch[1:, 0], ch[:-1, 1])
    pos = np.cumsum(gaps.astype(np.int64) + 1) - 1
    for b, e, row, col in ch:
        prev = pos[b - 1] if b > 0 else -1
        assert prev == row * 100 + col  # the decoder state just before the chunk
        assert (pos[b:e] // 100 >= row).all()


def test_balanced_start_rows_by_hand():
    # cumulative entries 5, 5, 10, 15, 20: entry 10 (the half) is row 3's first -> rows 0-2 | 3-4
    assert K.balanced_start_rows(np.array([5, 0, 5, 5, 5]), 2).tolist() == [0, 3]
    assert K.balanced_start_rows(np.array([5, 0, 5, 5, 5]), 4).tolist() == [0, 2, 3, 4]
    assert K.balanced_start_rows(np.array([10, 0, 0, 0]), 4).tolist() == [0]  # one heavy row: one chunk
    assert K.balanced_start_rows(np.array([3, 3]), 1).tolist() == [0]


def test_byte_counts_equal_a_hand_count():
    # 3 x 4 layer, non-zeros at flat positions 1, 2, 11 (row 0: 2, row 2: 1); 2-bit gaps
    labels = np.zeros(12, np.uint8)
    labels[[1, 2, 11]] = [1, 2, 3]
    sym, gap = encode_relative(labels, 2)
    # distances 2, 1, 9: the last needs (9-1)//4 = 2 fillers -> 5 entries
    assert sym.size == 5 and np.array_equal(gap, [1, 0, 3, 3, 0])
    assert dense_bytes(3, 4, 1) == {"weight_bytes": 48, "activation_bytes": 28, "total_bytes": 76}
    # CSR: 3 values * 4 + 3 cols * 4 + 4 row pointers * 4 = 40; x 16 + y 12 = 28
    assert csr_bytes(3, 4, 3, 1) == {"weight_bytes": 40, "activation_bytes": 28, "total_bytes": 68}
    # relative: 5 entries * (1 + 1) + 4-entry codebook * 4 + one 32-byte chunk row = 58
    assert relative_bytes(3, 4, 5, 4, 1, 1, 1, 32)["weight_bytes"] == 58
    # packed 2-bit symbols + 2-bit gaps: ceil(5 * 0.5) = 3 bytes + 16 + 32
    assert relative_bytes(3, 4, 5, 4, 1, 0.25, 0.25, 32)["weight_bytes"] == 51
    # batch 2: activations double, weights do not
    assert csr_bytes(3, 4, 3, 2)["total_bytes"] == 40 + 56
    # the harness counts the same way, at the widths the arrays actually have
    from experiments.speedup.bench import layer_bytes

    cb = np.array([0, 1, 2, 3], np.float32)
    L = prepare_layer("t", "t", labels.reshape(3, 4), cb, 2, 2, "random")
    nb = layer_bytes(L, K.RelativeLayer(L.symbols, L.gaps, L.codebook, L.shape, 2, 1), 1)
    assert nb["dense"]["total_bytes"] == 76 and nb["csr"]["total_bytes"] == 68
    assert nb["relative"]["weight_bytes"] == 58 and nb["relative_packed"]["weight_bytes"] == 51
    # weight-grouped: row 0 holds symbols 1 and 2 (two runs), row 2 symbol 3: 3 blocks of 4 slots, one panel.
    # 12 uint16 indices 24 + 3 symbols 3 + 4 block pointers 16 + codebook 16 + one 8-byte chunk row = 67
    assert grouped_bytes(3, 4, 12, 3, 1, 4, 1, 1, 8)["weight_bytes"] == 67
    G = K.GroupedLayer(L.symbols, L.gaps, L.codebook, L.shape, 2, 1)
    assert (G.slots, G.blocks, G.n_panels, G.nbytes) == (12, 3, 1, 67)
    assert layer_bytes(L, K.RelativeLayer(L.symbols, L.gaps, L.codebook, L.shape, 2, 1), 1,
                       grouped=G)["grouped"]["weight_bytes"] == 67
    assert G.cols.tolist() == [1, 4, 4, 4, 2, 4, 4, 4, 3, 4, 4, 4] and G.syms.tolist() == [1, 2, 3]


def test_linear_codebook():
    v = np.array([-0.5, -0.1, 0.2, 0.5, 0.49], np.float32)
    cb, lab = linear_codebook(v, 5)
    assert cb.size == 32 and cb[0] == 0.0 and (cb[1:] != 0).all()
    assert lab.min() >= 1 and lab.max() <= 31
    assert np.abs(cb[lab] - v).max() <= (0.5 - -0.5) / 30 / 2 + 1e-6
    cb, lab = linear_codebook(np.array([-1.0, 1.0]), 5)  # symmetric: linspace would hit 0 exactly
    assert (cb[1:] != 0).all()


def test_checkpoint_layers_fold_pruning_masks(tmp_path):
    w = torch.randn(6, 10)
    m = (torch.rand(6, 10) < 0.3).float()
    path = tmp_path / "ck.pt"
    torch.save({"state_dict": {"model.fc.weight_orig": w, "model.fc.weight_mask": m, "model.fc.bias": torch.zeros(6)}},
               path)
    (L,) = list(checkpoint_layers(str(path)))
    assert L.name == "fc" and L.shape == (6, 10)
    assert L.nnz == int(m.sum()) and np.array_equal(L.dense != 0, m.numpy() != 0)


def test_energy_model():
    e = inference_energy(4e6, macs=0, entries=0, sram_budget_bytes=8e6, codebook=False)
    assert e["fits_sram"] and e["fetch_uJ"] == pytest.approx(1e6 * SRAM_PJ * 1e-6)
    e = inference_energy(40e6, macs=10, entries=0, sram_budget_bytes=8e6, codebook=False)
    assert not e["fits_sram"] and e["fetch_uJ"] == pytest.approx(1e7 * DRAM_PJ * 1e-6)
    assert e["add_uJ"] == pytest.approx(10 * 0.9e-6)


def test_energy_uses_our_newest_row(tmp_path):
    from experiments.analysis.rows import experiment_config
    from experiments.speedup.energy import our_network_rows

    d = tmp_path / "lenet5"
    d.mkdir()
    layers = [{"name": "ip1", "nonzeros": 100, "entries": 120}, {"name": "ip2", "nonzeros": 10, "entries": 11}]
    for run_id, size in (("20260101-000000-aaaaaa", 9000), ("20260102-000000-bbbbbb", 8000)):
        (d / f"{run_id}.json").write_text(json.dumps({
            "run_id": run_id, "experiment": "lenet5", "model": "lenet5", "git_dirty": False,
            "config": experiment_config("lenet5"),  # the experiment file's own recipe
            "metrics": {"compressed/top1_err": 9.0}, "size": {"file_bytes": size}, "layers": layers}))
    rows = our_network_rows(tmp_path, [0.008])  # 8 KB SRAM: the 8,000-byte file fits
    assert {r["name"] for r in rows} == {"LeNet-5"} and {r["run_id"] for r in rows} == {"20260102-000000-bbbbbb"}
    dram, sram = sorted(rows, key=lambda r: r["sram_budget_mb"])
    assert dram["bytes"] == 8000 and not dram["fits_sram"] and sram["fits_sram"]
    # 2,000 32-bit reads from DRAM + 131 codebook reads (SRAM) + 110 adds
    assert dram["total_uJ"] == pytest.approx((2000 * DRAM_PJ + 131 * SRAM_PJ + 110 * 0.9) * 1e-6)


def test_command_end_to_end(tmp_path, monkeypatch):
    from experiments.speedup import __main__ as cli
    from experiments.speedup import layers

    monkeypatch.setattr(layers, "PAPER_LAYERS", [("alexnet", "fc8", 40, 300, 0.25, 4), ("vgg16", "fc7", 30, 260, 0.04, 5)])
    out = tmp_path / "speedup"
    assert cli.main(["--reps", "3", "--warmup", "1", "--batches", "1", "4", "--out", str(out), "--no-gpu",
                     "--runs", str(tmp_path / "no-rows")]) == 0
    rows = list(csv.DictReader(open(out / "timings.csv")))
    assert {r["kernel"] for r in rows} == {"dense", "csr_torch", "csr_blocked_torch", "csr_scipy", "csr_numba",
                                           "csr_blocked_numba", "relative_numba", "grouped_numba"}
    assert len(rows) == 2 * 2 * 2 * 8  # layers x batches x caches x kernels
    assert max(float(r["max_rel_err"]) for r in rows) < 1e-4
    for name in ("summary.csv", "layers.csv", "bandwidth.csv", "energy.csv", "fig9_speedup_cold.png",
                 "fig9_speedup_warm.pdf", "fig10_energy.png"):
        assert (out / name).is_file(), name
    meta = json.loads((out / "meta.json").read_text())
    assert meta["threads"] == 1 and "load_avg_end" in meta and meta["gpu"].startswith("skipped")
    assert len(meta["git_commit"]) == 40 and meta["git_dirty"] in (True, False)


def test_checkpoint_layers_find_alexnet_fc_layers(tmp_path):
    g = torch.Generator().manual_seed(0)
    sd = {}
    for path, shape in (("net.classifier.1", (8, 12)), ("net.classifier.4", (8, 8)), ("net.classifier.6", (3, 8))):
        w = torch.randn(*shape, generator=g) * (torch.rand(*shape, generator=g) < 0.5)
        sd[f"{path}.weight"] = w
    # fc8 stored through the project's weight-sharing parametrization
    cb = torch.tensor([0.0, -0.5, 0.25, 1.0])
    labels = torch.randint(0, 4, (3, 8), generator=g)
    sd.pop("net.classifier.6.weight")
    sd["net.classifier.6.parametrizations.weight.original"] = cb
    sd["net.classifier.6.parametrizations.weight.0.labels"] = labels
    path = tmp_path / "alex.pt"
    torch.save(sd, path)
    layers = list(checkpoint_layers(str(path)))
    assert [(L.network, L.name, L.index_bits) for L in layers] == [("alexnet", n, 4) for n in ("fc6", "fc7", "fc8")]
    assert layers[2].nnz == int((labels != 0).sum())
    assert np.array_equal(layers[0].dense != 0, sd["net.classifier.1.weight"].numpy() != 0)


@pytest.mark.parametrize("batch", [1, 3])
def test_gpu_path_runs_on_any_device(batch):
    """The cuBLAS-vs-cuSPARSE path, run on the CPU device: same rows, same checks, wall-clock timing."""
    from experiments.speedup.bench import bench_layer_gpu

    rng = np.random.default_rng(4)
    labels, cb = _layer(rng, 20, 70, 0.1, 4)
    L = prepare_layer("t", "t", labels, cb, 4, 5, "random")
    rows = bench_layer_gpu(L, batch, reps=3, warmup=1, device="cpu")
    assert [r["kernel"] for r in rows] == ["dense", "csr_torch"]
    assert all(r["device"] == "cpu" and r["reps"] == 3 and r["batch"] == batch for r in rows)
    assert max(r["max_rel_err"] for r in rows) < 1e-5 and rows[0]["speedup_vs_dense"] == 1.0
    # the GPU table of tables.md, fed these rows under the paper's layer name
    from experiments.speedup.__main__ import markdown_tables

    for r in rows:
        r.update(device="cuda:test", network="alexnet", layer="fc6")
    md = markdown_tables(rows, [], [], [{"median_GBps": 1.0}], {"cpu": {"cpu_model": "x"}, "threads": 1,
                         "load_avg_start": [0.0], "load_avg_end": [0.0], "reps_batch1": 3, "reps_larger_batch": 3})
    cells = [[c.strip() for c in x.strip().strip("|").split("|")] for x in md.splitlines() if x.startswith("|")]
    line = next(c for c in cells if c[:2] == ["alexnet fc6", str(batch)])
    # last cell: DC Table 8, Titan X, AlexNet fc6 at batch 1, 541.5 / 134.8 us; no paper value at batch 3
    assert line[-1] == {1: "4.02x", 3: ""}[batch]


def test_summary_compares_with_mkl_and_the_fastest_csr():
    from experiments.speedup.__main__ import network_totals, summarize

    def row(layer, kernel, us):
        return {"device": "cpu", "cache": "cold", "batch": 1, "network": "n", "layer": layer, "kernel": kernel,
                "median_us": us, "per_input_us": us, "speedup_vs_dense": 20.0 / us, "bandwidth_bound_speedup": 4.0,
                "fraction_of_bound": 5.0 / us, "fraction_of_stream_bw": 0.5, "max_rel_err": 0.0}

    rows = [row("a", "dense", 20.0), row("a", "csr_torch", 10.0), row("a", "csr_numba", 5.0), row("a", "grouped_numba", 4.0),
            row("b", "dense", 20.0), row("b", "csr_torch", 4.0), row("b", "csr_numba", 8.0), row("b", "grouped_numba", 8.0)]
    g = next(s for s in summarize(rows) if s["kernel"] == "grouped_numba")
    assert g["geomean_speedup_vs_csr_torch"] == pytest.approx((10 / 4 * 4 / 8) ** 0.5)
    assert g["geomean_speedup_vs_best_csr"] == pytest.approx((5 / 4 * 4 / 8) ** 0.5)  # the fastest CSR per layer
    t = next(t for t in network_totals(rows) if t["kernel"] == "grouped_numba")
    assert t["per_input_us"] == 12.0 and t["speedup_vs_best_csr"] == pytest.approx(13 / 12)  # MKL 14, numba 13
