"""experiments.figures on hand-written rows: grouping rules, points, the paper's checks, files via main()."""

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest

from experiments import figures as F
from experiments.analysis import claims as C
from experiments.analysis import points as P
from experiments.analysis import readings as RD
from experiments.figures import __main__ as FM
from experiments.figures import runs as FR
from experiments.figures import style as S
from experiments.figures import sweeps as FS

DENSE_ERR = 10.0
LENET5_LAYERS = [  # conv1 500 + conv2 25,000 + ip1 400,000 + ip2 5,000 = 430,500 weights
    {"name": "conv1", "kind": "conv", "weights": 500, "nonzeros": 330, "weight_bits_pq": 2},
    {"name": "conv2", "kind": "conv", "weights": 25000, "nonzeros": 3000, "weight_bits_pq": 2},
    {"name": "ip1", "kind": "fc", "weights": 400000, "nonzeros": 32000, "weight_bits_pq": 2},
    {"name": "ip2", "kind": "fc", "weights": 5000, "density": 0.19, "weight_bits_pq": 2},
]
LENET300_LAYERS = [
    {"name": "ip1", "kind": "fc", "weights": 235200, "nonzeros": 18816},
    {"name": "ip2", "kind": "fc", "weights": 30000, "nonzeros": 2700},
    {"name": "ip3", "kind": "fc", "weights": 1000, "nonzeros": 260},
]


def _config(prune=True, bits=None, init="linear", lowrank=False, quantize=True, epochs_per_round=8, rounds=5,
            regularization="l2", epochs_cap=None):
    return {"trainer": {"epochs_cap": epochs_cap},
            "prune": {"enabled": prune, "epochs_per_round": epochs_per_round, "rounds": rounds,
                      "regularization": regularization},
            "quantize": {"enabled": quantize, "bits": bits if bits is not None else {"conv": 8, "fc": 5},
                         "init": init},
            "lowrank": {"enabled": lowrank}}


_COUNTER = [0]


def _row(exp, sweep=None, metrics=None, config=None, layers=None, ratio=None, dataset="fashion_mnist", **extra):
    _COUNTER[0] += 1
    row = {"schema": 1, "experiment": exp, "model": exp, "dataset": dataset,
           "run_id": f"20270101-{_COUNTER[0]:06d}-abcdef", "seed": 0, "git_commit": "0123456789abcdef",
           "git_dirty": False, "config": config or _config(),
           "metrics": {"dense/top1_err": DENSE_ERR, **(metrics or {})},
           "layers": copy.deepcopy(layers if layers is not None else (LENET5_LAYERS if exp == "lenet5"
                                                                      else LENET300_LAYERS)),
           "ratio": ratio or {}, **extra}
    if sweep is not None:
        row["sweep"] = sweep
    return row


# --- bits sweep (DC Fig. 7), LeNet-5: group -> method -> {bits: (err before fine-tuning, err after)}
BITS = {
    "conv": {RD.PQ: {2: (16.0, 14.0), 3: (13.0, 11.5), 4: (11.0, 10.6), 5: (10.5, 10.2), 8: (10.1, 10.0)},
             RD.Q_ONLY: {2: (15.0, 13.0), 4: (10.9, 10.5), 8: (10.1, 10.0)}},
    "fc": {RD.PQ: {2: (11.5, 10.8), 3: (10.6, 10.3), 4: (10.2, 10.1)},
           RD.Q_ONLY: {2: (11.0, 10.5), 4: (10.1, 10.0)}},
    "all": {RD.PQ: {2: (18.0, 15.0), 4: (11.2, 10.7), 8: (10.2, 10.1)}},
}
# --- init sweep (DC Fig. 8), LeNet-5: init -> {bits: err after fine-tuning}; linear best at 2 and 4, not at 3
INIT = {"linear": {2: 12.0, 3: 11.0, 4: 10.4}, "random": {2: 13.0, 3: 10.8, 4: 10.6},
        "density": {2: 12.5, 3: 11.5, 4: 10.5}}
# --- tradeoff sweep (DC Fig. 6): (method config, rate, final error)
TRADEOFF = [("pq", 40.0, 10.5), ("pq", 20.0, 10.2), ("p", 20.0, 11.0), ("p", 10.0, 10.1), ("q", 30.0, 12.0),
            ("q", 8.0, 10.1), ("svd", 5.0, 13.0)]
HUFF_W = [8, 4, 2, 2]  # Huffman lengths 1, 2, 3, 3 -> mean (8 + 8 + 6 + 6) / 16 = 1.75 bits, fixed 2
HUFF_G = [5, 5, 0, 0]  # lengths 1, 1, 0, 0 -> mean 1.0 bit


def _bits_cfg(group, bits):
    return {"conv": bits if group in ("conv", "all") else 0, "fc": bits if group in ("fc", "all") else 0}


def lenet5_rows() -> list[dict]:
    rows = []
    for group, methods in BITS.items():
        for m, pts in methods.items():
            for b, (e0, e1) in pts.items():
                rows.append(_row("lenet5", "bits", {"quantized_init/top1_err": e0, "quantized/top1_err": e1,
                                                    "pruned/top1_err": 10.2},
                                 _config(prune=m == RD.PQ, bits=_bits_cfg(group, b))))
    for init, pts in INIT.items():
        for b, e1 in pts.items():
            rows.append(_row("lenet5", "init", {"quantized_init/top1_err": e1 + 1, "quantized/top1_err": e1},
                             _config(bits={"*": b}, init=init)))
    for kind, rate, err in TRADEOFF:
        cfg = _config(prune=kind in ("pq", "p"), quantize=kind in ("pq", "q"), lowrank=kind == "svd")
        cfg["prune"]["uniform_density"], cfg["quantize"]["bits"] = 1 / rate, {"*": rate}  # one job per point
        key = {"pq": "pqh", "q": "pqh", "p": "p_sparse", "svd": "svd"}[kind]
        stage = {"pq": "compressed", "q": "quantized", "p": "pruned", "svd": "lowrank"}[kind]
        rows.append(_row("lenet5", "tradeoff", {f"{stage}/top1_err": err}, cfg, ratio={key: rate}))
    # prune sweep: density d in every layer -> fraction pruned 1 - d
    for label_cfg, pts in (({"epochs_per_round": 0, "rounds": 1, "regularization": "l1"}, {0.5: 11.0, 0.3: 14.0}),
                           ({"epochs_per_round": 0, "rounds": 1, "regularization": "l2"}, {0.5: 11.5, 0.3: 16.0}),
                           ({"epochs_per_round": 4, "rounds": 1, "regularization": "l2"}, {0.5: 10.1, 0.1: 11.0}),
                           ({"epochs_per_round": 4, "rounds": 5, "regularization": "l2"}, {0.1: 10.2})):
        for d, err in pts.items():
            layers = [{"name": l["name"], "kind": l["kind"], "weights": l["weights"], "density": d}
                      for l in LENET5_LAYERS]
            rows.append(_row("lenet5", "prune", {"pruned/top1_err": err}, _config(**label_cfg), layers=layers))
    # experiment row with histograms, codebooks and symbol counts
    edges = [-0.1, -0.05, 0.0, 0.05, 0.1]
    hist_d = {n: {"edges": edges, "counts": [5, 40, 40, 5]} for n in ("conv1", "conv2", "ip1", "ip2")}
    hist_p = {n: {"edges": edges, "counts": [5, 10, 10, 5]} for n in ("conv1", "conv2", "ip1", "ip2")}
    run = _row("lenet5", None, {"compressed/top1_err": 10.3}, histograms={"dense": hist_d, "pruned": hist_p})
    for l in run["layers"]:
        l.update({"codebook_init": [0.0, -0.08, 0.02, 0.07], "codebook": [0.0, -0.075, 0.025, 0.072],
                  "weight_symbol_counts": HUFF_W, "gap_symbol_counts": HUFF_G})
    old = _row("lenet5", None, {"compressed/top1_err": 10.3})  # an older row without the new keys
    old["run_id"] = "20260101-000000-000000"
    return rows + [run, old]


def lenet300_rows() -> list[dict]:
    rows = [_row("lenet300", "bits", {"quantized_init/top1_err": 10.0 + 4 / b, "quantized/top1_err": 10.0 + 1 / b},
                 _config(bits={"conv": 0, "fc": b})) for b in (2, 4, 6)]
    # conv-only bits on a model without conv layers quantizes nothing: not plotted
    rows.append(_row("lenet300", "bits", {"quantized/top1_err": 10.0}, _config(bits={"conv": 4, "fc": 0})))
    # a smoke row (trainer.epochs_cap) is never used
    rows.append(_row("lenet300", "init", {"quantized/top1_err": 50.0}, _config(bits={"*": 2}, epochs_cap=1)))
    rows.append(_row("lenet300", None, {"compressed/top1_err": 10.6}))  # no histograms, no symbol counts
    return rows


def write_results(root: Path) -> Path:
    """Hand-written rows under root/results (runs/ and sweeps/); returns the results folder."""
    res = Path(root) / "results"
    for r in lenet5_rows() + lenet300_rows():
        sub = (res / "sweeps" / r["experiment"] / r["sweep"]) if r.get("sweep") else (res / "runs" / r["experiment"])
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{r['run_id']}.json").write_text(json.dumps(r))
    return res


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    return F.load_rows(write_results(tmp_path_factory.mktemp("figs")))


# ----------------------------------------------------------------------------------------------
# Helpers: grouping rules against hand-computed values
# ----------------------------------------------------------------------------------------------
def test_bits_group_and_x():
    conv_model = {"layers": LENET5_LAYERS}
    fc_model = {"layers": LENET300_LAYERS}

    def g(model, bits):
        r = {**model, "config": {"quantize": {"bits": bits}}}
        grp = RD.bits_group(r)
        return grp, (RD.bits_x(r, grp) if grp else None)

    assert g(conv_model, {"conv": 4, "fc": 0}) == ("conv", 4)
    assert g(conv_model, {"conv": 0, "fc": 2}) == ("fc", 2)
    assert g(conv_model, {"conv": 3, "fc": 3}) == ("all", 3)
    assert g(conv_model, {"conv": 8, "fc": 5}) == ("all", None)  # unequal bits: no x in "all layers"
    assert g(conv_model, {"*": 3}) == ("all", 3)
    assert g(conv_model, {"*": 0, "fc": 2}) == ("fc", 2)
    assert g(conv_model, {"conv": 0, "fc": 0}) == (None, None)
    # no conv layers: fc is all; conv-only bits quantize nothing
    assert g(fc_model, {"conv": 0, "fc": 2}) == ("fc", 2)
    assert g(fc_model, {"conv": 4, "fc": 4}) == ("fc", 4)
    assert g(fc_model, {"conv": 4, "fc": 0}) == (None, None)
    assert RD.model_has_conv({"model": "lenet300"}) is False and RD.model_has_conv({"model": "lenet5"}) is True
    assert RD.uniform_bits({**fc_model, "config": {"quantize": {"bits": {"conv": 8, "fc": 3}}}}) == 3
    assert RD.uniform_bits({**conv_model, "config": {"quantize": {"bits": {"conv": 8, "fc": 3}}}}) is None


def test_tradeoff_method_rate_and_final_error():
    def r(**kw):
        return {"config": _config(**kw), "ratio": {"svd": 5.0, "p_sparse": 10.0, "pqh": 40.0}}

    cases = [(dict(lowrank=True), RD.SVD, 5.0), (dict(), RD.PQ, 40.0), (dict(quantize=False), RD.P_ONLY, 10.0),
             (dict(prune=False), RD.Q_ONLY, 40.0), (dict(prune=False, quantize=False), None, None)]
    for kw, method, rate in cases:
        row = r(**kw)
        assert RD.tradeoff_method(row) == method
        assert (RD.tradeoff_rate(row, method) if method else None) == rate
    m = {"dense/top1_err": 10, "pruned/top1_err": 11, "lowrank/top1_err": 12, "quantized/top1_err": 13}
    assert RD.final_top1_err({"metrics": m}) == 13
    assert RD.final_top1_err({"metrics": {**m, "compressed/top1_err": 14}}) == 14
    assert RD.final_top1_err({"metrics": {"dense/top1_err": 10, "pruned/top1_err": 11}}) == 11
    assert RD.final_top1_err({"metrics": {"dense/top1_err": 10}}) is None


def test_fraction_pruned_and_prune_curve():
    # 1 - (100 + round(0.1 * 3000)) / (1000 + 3000) = 1 - 400 / 4000 = 0.9
    row = {"layers": [{"weights": 1000, "nonzeros": 100}, {"weights": 3000, "density": 0.1}]}
    assert RD.fraction_pruned(row) == pytest.approx(0.9)
    assert RD.fraction_pruned({"layers": [{"weights": 10}]}) is None
    # the committed LeNet-300-100 layers: 1 - 21776 / 266200
    assert RD.fraction_pruned({"layers": LENET300_LAYERS}) == pytest.approx(1 - 21776 / 266200)
    c = lambda **kw: RD.prune_curve({"config": _config(**kw)})  # noqa: E731
    assert c(epochs_per_round=0, regularization="l1") == "L1 regularization, without retraining"
    assert c(epochs_per_round=0, rounds=5) == "L2 regularization, without retraining"
    assert c(rounds=1, regularization="l1") == "L1 regularization with retraining"
    assert c(rounds=5) == "iterative prune and retrain (L2)"
    assert c(prune=False) is None


def test_codebook_centroids_drop_reserved_zero_of_pruned_layers():
    layer = {"weights": 100, "nonzeros": 10, "codebook_init": [0.0, -0.1, 0.1], "codebook": [0.0, -0.12, 0.11]}
    assert RD.layer_pruned(layer)
    assert RD.codebook_centroids(layer, "codebook_init", True) == [-0.1, 0.1]
    assert RD.codebook_centroids(layer, "codebook", True) == [-0.12, 0.11]
    dense = {"weights": 100, "nonzeros": 100, "codebook_init": [0.0, -0.1, 0.1]}
    assert not RD.layer_pruned(dense)
    assert RD.codebook_centroids(dense, "codebook_init", False) == [0.0, -0.1, 0.1]


def test_pick_layers_and_hist_range():
    row = {"layers": [{"name": f"conv{i}", "kind": "conv", "weights": w} for i, w in enumerate((5, 50, 20))]
           + [{"name": f"fc{i}", "kind": "fc", "weights": w} for i, w in enumerate((900, 3000))]}
    assert RD.pick_layers(row, [l["name"] for l in row["layers"]]) == ["conv1", "fc1"]
    assert RD.pick_layers(row, ["fc0", "conv0"]) == ["conv0", "fc0"]  # few layers: all, model order
    # 98%: 1 weight below, 1 above: -3 + 2 * 1/10 = -2.8 and 1 + 2 * 9/10 = 2.8
    assert S.hist_range(np.array([-3.0, -1, 1, 3]), np.array([10, 80, 10])) == pytest.approx((-2.8, 2.8))


def test_load_rows_skips_smoke_and_classifies(rows):
    assert not any(r.get("config", {}).get("trainer", {}).get("epochs_cap") for r in rows)
    kinds = {(r["experiment"], r.get("sweep"), r["_kind"]) for r in rows}
    assert ("lenet5", "bits", "sweep") in kinds and ("lenet5", None, "run") in kinds
    assert ("lenet300", "init", "sweep") not in kinds  # its only row is a smoke row
    assert P.experiments_in(rows) == ["lenet300", "lenet5"]


def test_one_dataset_keeps_the_latest_rows_dataset():
    msgs = []
    rs = [{"run_id": "1", "dataset": "mnist_sample"}, {"run_id": "2", "dataset": "fashion_mnist"},
          {"run_id": "3", "dataset": "fashion_mnist"}]
    assert [r["run_id"] for r in P._one_dataset(rs, msgs.append, "x")] == ["2", "3"]
    assert msgs and "ignoring 1 rows" in msgs[0]


# ----------------------------------------------------------------------------------------------
# Points and the paper's checks
# ----------------------------------------------------------------------------------------------
def test_points(rows):
    bp = {(p["group"], p["method"], p["bits"]): p for p in P.bits_points(rows, "lenet5")}
    assert len(bp) == sum(len(v) for m in BITS.values() for v in m.values())
    p = bp[("conv", RD.PQ, 3)]
    assert (p["acc_init"], p["acc_final"], p["dense_acc"]) == pytest.approx((87.0, 88.5, 90.0))
    tp = {(p["method"], round(p["size_pct"], 4)): p["loss"] for p in P.tradeoff_points(rows, "lenet5")}
    # size = 100 / rate, loss = final - dense: P+Q rate 40 -> 2.5%, 10.5 - 10 = +0.5
    assert tp == pytest.approx({(RD.PQ, 2.5): 0.5, (RD.PQ, 5.0): 0.2, (RD.P_ONLY, 5.0): 1.0, (RD.P_ONLY, 10.0): 0.1,
                                (RD.Q_ONLY, round(100 / 30, 4)): 2.0, (RD.Q_ONLY, 12.5): 0.1, (RD.SVD, 20.0): 3.0})
    pp = {(p["curve"], round(p["pruned_pct"], 6)): p["loss"] for p in P.prune_points(rows, "lenet5")}
    assert pp[("L1 regularization, without retraining", 70.0)] == pytest.approx(4.0)
    assert pp[("iterative prune and retrain (L2)", 90.0)] == pytest.approx(0.2)
    assert len(pp) == 7


def test_aggregate_reruns_and_seeds():
    items = [{"k": "a", "x": 1, "seed": 0, "run_id": "1", "v": 5.0},
             {"k": "a", "x": 1, "seed": 0, "run_id": "2", "v": 3.0},  # rerun of seed 0 replaces run 1
             {"k": "a", "x": 1, "seed": 1, "run_id": "3", "v": 4.0}]
    (agg,) = P._aggregate(items, ("k", "x"), ("v",))
    assert agg["v"] == pytest.approx(3.5) and agg["n"] == 2 and agg["run_ids"] == ["2", "3"]


def test_min_bits_within():
    pts = lambda d: [{"bits": b, "acc_final": 90 - loss, "dense_acc": 90.0} for b, loss in d.items()]  # noqa: E731
    assert C.min_bits_within(pts({2: 4.0, 3: 1.5, 4: 0.6, 8: 0.0})) == 4
    assert C.min_bits_within(pts({2: 0.5, 3: 2.0, 4: 0.5})) == 4  # 2 is within but 3 is not
    assert C.min_bits_within(pts({2: 0.9, 4: 0.1})) == 2
    assert C.min_bits_within(pts({4: 1.5})) is None


def test_checks(rows):
    a = C.check_bits(rows, "lenet5")
    assert a["min_bits"][("conv", RD.PQ)][0] == 4 and a["min_bits"][("fc", RD.PQ)][0] == 2
    assert a["min_bits"][("all", RD.PQ)][0] == 4 and a["min_bits"][("conv", RD.Q_ONLY)][0] == 4
    assert a["fc_fewer_than_conv"] is True
    assert any("fc needs 2 bits, conv 4 bits" in l and "yes" in l for l in a["lines"])
    a300 = C.check_bits(rows, "lenet300")
    assert a300["fc_fewer_than_conv"] is None and any("not applicable" in l for l in a300["lines"])
    assert a300["min_bits"][("fc", RD.PQ)][0] == 2  # losses 0.5, 0.25, 0.17
    b = C.check_init(rows, "lenet5")
    assert (b["wins"], b["n"]) == (2, 3)
    assert any(l.startswith("3 bits:") and "at least as good: no" in l and "-0.20" in l for l in b["lines"])
    assert C.check_init(rows, "lenet300") is None  # only a smoke row
    c = C.check_tradeoff(rows, "lenet5")
    # P+Q 2.5% (+0.5) vs pruning 5% (+1.0): yes; vs quantization 3.33% (+2.0): yes
    # P+Q 5% (+0.2) vs pruning 5% (+1.0): yes; vs quantization 3.33% (+2.0): yes
    assert (c["wins"], c["n"]) == (4, 4)
    assert C.check_tradeoff(rows, "lenet300") is None


# ----------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------
def _line(ax, label):
    (line,) = [l for l in ax.get_lines() if l.get_label() == label]
    return list(line.get_xdata()), list(line.get_ydata())


def test_fig_bits_panels_and_data(rows):
    fig = FS.fig_bits(rows, "lenet5", note=lambda s: None)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["conv layers", "fc layers", "all layers"]
    x, y = _line(axes[0], f"{RD.PQ}, after fine-tuning")
    assert x == [2, 3, 4, 5, 8] and y == pytest.approx([86.0, 88.5, 89.4, 89.8, 90.0])
    x, y = _line(axes[1], f"{RD.Q_ONLY}, before fine-tuning")
    assert x == [2, 4] and y == pytest.approx([89.0, 89.9])
    assert _line(axes[0], f"{RD.Q_ONLY}, after fine-tuning")[0] == [2, 4, 8]
    assert _line(axes[0], "dense baseline")[1] == pytest.approx([90.0, 90.0])
    assert axes[0].get_xlabel() == "bits per weight" and axes[0].get_ylabel() == "top-1 accuracy (%)"
    text = " ".join(t.get_text() for t in (fig._suptitle, fig._supxlabel, *fig.texts) if t is not None)
    assert "LeNet-5 on Fashion-MNIST (not the paper's MNIST)" in text and "DC Fig. 7" in text
    assert "fc layers hold down to 2 bits" in text.replace("\n", " ")
    fig300 = FS.fig_bits(rows, "lenet300", note=lambda s: None)
    (ax,) = fig300.axes
    assert "no conv layers" in ax.get_title()
    assert _line(ax, f"{RD.PQ}, after fine-tuning") == ([2, 4, 6], pytest.approx([89.5, 89.75, 90 - 1 / 6]))


def test_fig_other_data(rows):
    fig = FS.fig_init(rows, "lenet5", note=lambda s: None)
    assert _line(fig.axes[0], "random, after fine-tuning") == ([2, 3, 4], pytest.approx([87.0, 89.2, 89.4]))
    fig = FS.fig_tradeoff(rows, "lenet5", note=lambda s: None)
    assert _line(fig.axes[0], RD.PQ) == ([2.5, 5.0], pytest.approx([0.5, 0.2]))
    assert _line(fig.axes[0], RD.SVD) == ([20.0], pytest.approx([3.0]))
    fig = FS.fig_prune(rows, "lenet5", note=lambda s: None)
    labels = [l.get_label() for l in fig.axes[0].get_lines() if not l.get_label().startswith("_")]
    assert sorted(labels) == sorted(["L1 regularization, without retraining", "L2 regularization, without retraining",
                                     "L2 regularization with retraining", "iterative prune and retrain (L2)"])
    assert _line(fig.axes[0], "L2 regularization with retraining") == ([50.0, 90.0], pytest.approx([0.1, 1.0]))


def test_fig_codebook_and_huffman_data(rows):
    fig = FR.fig_codebook(rows, "lenet5", note=lambda s: None)
    ax = fig.axes[0]
    (init,) = [l for l in ax.get_lines() if l.get_label().startswith("codebook before")]
    # reserved 0.0 dropped; each centroid at its bin's height: -0.08 -> bin 0 (5), 0.02 -> bin 2 (10), 0.07 -> 3 (5)
    assert list(init.get_xdata()) == [-0.08, 0.02, 0.07] and list(init.get_ydata()) == [5, 10, 5]
    fig = FR.fig_huffman(rows, "lenet5", note=lambda s: None)
    assert len(fig.axes) == 4 * 2 * 2  # 4 layers x (weights, gaps) x (bars + twin axis)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts.count("Huffman 1.75 bits/symbol\nfixed 2 bits") == 4
    assert texts.count("Huffman 1.00 bits/symbol\nfixed 2 bits") == 4
    lens = [list(l.get_ydata()) for ax in fig.axes for l in ax.get_lines()]
    assert [1, 2, 3, 3] in lens and [1, 1] in lens


def test_main_writes_png_and_pdf_atomically(tmp_path, capsys):
    res = write_results(tmp_path)
    out = tmp_path / "figures"
    assert FM.main(["--results", str(res), "--out", str(out)]) == 0
    # no criteria sweep rows and no per-example correctness here: those two are skipped
    stems = [s for s, _ in F.FIGURES if s not in ("pruning_criteria", "frontier")]
    expected = sorted([f"lenet5_{s}.{e}" for s in stems for e in ("png", "pdf")]
                      + [f"lenet300_fig7_bits.{e}" for e in ("png", "pdf")])
    assert sorted(p.name for p in out.iterdir()) == expected  # no temp files left behind
    for p in out.iterdir():
        head = p.read_bytes()[:4]
        assert head == (b"\x89PNG" if p.suffix == ".png" else b"%PDF"), p
    printed = capsys.readouterr().out
    assert str(out / "lenet5_fig5_huffman.pdf") in printed
    # lenet300: everything but the bits figure is skipped, with the missing rows / keys named
    assert "lenet300_fig8_init: skipped: no rows of sweep 'init'" in printed
    assert "lenet300_lwc_fig7_weights: skipped: no trained row in runs/lenet300/ has 'histograms'" in printed
    assert "lenet300_fig5_huffman: skipped" in printed and "weight_symbol_counts" in printed
    assert "quantizes no layer" in printed


def test_missing_inputs_skip_without_files(tmp_path, capsys):
    res = tmp_path / "results"
    (res / "runs" / "lenet5").mkdir(parents=True)
    old = _row("lenet5", None, {"compressed/top1_err": 10.3})  # an old row: none of the new keys
    (res / "runs" / "lenet5" / f"{old['run_id']}.json").write_text(json.dumps(old))
    # a bits sweep whose rows have no quantized metrics
    (res / "sweeps" / "lenet5" / "bits").mkdir(parents=True)
    bad = _row("lenet5", "bits", {}, _config(bits={"conv": 4, "fc": 0}))
    (res / "sweeps" / "lenet5" / "bits" / f"{bad['run_id']}.json").write_text(json.dumps(bad))
    out = tmp_path / "figures"
    assert FM.main(["--results", str(res), "--out", str(out), "--experiment", "lenet5"]) == 0
    assert not out.exists() or not any(out.iterdir())
    printed = capsys.readouterr().out
    for stem in (s for s, _ in F.FIGURES):
        assert f"lenet5_{stem}: skipped" in printed
    assert "1 rows of sweep 'bits' but none has metrics 'quantized/top1_err'" in printed
    assert FM.main(["--results", str(tmp_path / "nowhere")]) == 2


def test_storage_only_rows_feed_no_per_layer_figure(rows):
    run = [r for r in rows if r["experiment"] == "lenet5" and r["_kind"] == "run" and r.get("histograms")]
    assert run and FR.fig_weights(run, "lenet5", note=lambda s: None) is not None
    msgs = []
    storage = [{**r, "storage_only": True} for r in run]
    for fn in (FR.fig_weights, FR.fig_codebook, FR.fig_huffman):
        assert fn(storage, "lenet5", note=msgs.append) is None
    assert len(msgs) == 3 and all("1 of them storage-only" in m for m in msgs)


def test_figures_reject_nothing_silently():
    assert FR.fig_weights([], "lenet5", note=lambda s: None) is None
    msgs = []
    assert FS.fig_tradeoff([], "lenet5", note=msgs.append) is None and "tradeoff" in msgs[0]
    assert math.isclose(FR.mean_code_length(HUFF_W, [1, 2, 3, 3]), 1.75)


def test_dense_reference_ignores_jobs_started_from_pruned_weights():
    # a job started from pruned.pt reports the loaded pruned weights (8.57) under dense/;
    # jobs started from dense.pt (pruning disabled) report the dense model (7.91)
    pruned_start = _row("lenet5", "init", metrics={"dense/top1_err": 8.57, "quantized/top1_err": 8.7},
                        weights_source="checkpoint",
                        config=_config(prune=True, rounds=1, epochs_per_round=0, bits={"conv": 4, "fc": 4}))
    dense_start = _row("lenet5", "bits", metrics={"dense/top1_err": 7.91, "quantized/top1_err": 8.0},
                       weights_source="checkpoint", config=_config(prune=False, bits={"conv": 4, "fc": 0}))
    assert P.dense_reference_err([pruned_start, dense_start], "lenet5") == pytest.approx(7.91)
    # no dense-start job: the latest trained experiment row
    run = _row("lenet5", metrics={"dense/top1_err": 7.95}, weights_source="trained")
    assert P.dense_reference_err([pruned_start, run], "lenet5") == pytest.approx(7.95)
    # the init figure's points measure against that reference, not against 8.57
    pts = P.init_points([pruned_start], "lenet5", reference_rows=[pruned_start, dense_start])
    assert pts[0]["dense_acc"] == pytest.approx(100 - 7.91)
    # trade-off loss of a pruned-start P+Q job: 8.7 - 7.91 = 0.79 points
    pq = _row("lenet5", "tradeoff", metrics={"dense/top1_err": 8.57, "compressed/top1_err": 8.7},
              weights_source="checkpoint", ratio={"pqh": 40.0}, config=_config(prune=True))
    (pt,) = P.tradeoff_points([pq], "lenet5", reference_rows=[pq, dense_start])
    assert pt["loss"] == pytest.approx(0.79)


def test_sweep_points_rerun_replaces_run_whose_measured_size_moved():
    """A rerun of a sweep job (same configured target, same seed) replaces the earlier run in LWC Fig. 5 and
    DC Fig. 6, even when its measured fraction pruned or rate differs (e.g. dead connections dropped)."""
    def prune_row(nonzeros, err):
        cfg = _config(quantize=False, rounds=1)
        cfg["prune"]["uniform_density"] = 0.1
        layers = [{"name": "ip1", "kind": "fc", "weights": 1000, "nonzeros": nonzeros}]
        return _row("lenet5", "prune", {"pruned/top1_err": err}, cfg, layers=layers, ratio={"p_sparse": 1000 / nonzeros})
    old, new = prune_row(100, 12.0), prune_row(90, 11.0)  # the rerun pruned 1% more and lost less
    (pt,) = P.prune_points([old, new], "lenet5")
    assert pt["pruned_pct"] == pytest.approx(91.0) and pt["loss"] == pytest.approx(11.0 - DENSE_ERR)
    assert pt["run_ids"] == [new["run_id"]]
    old_t, new_t = ({**r, "sweep": "tradeoff"} for r in (old, new))
    (tp,) = P.tradeoff_points([old_t, new_t], "lenet5")
    assert tp["size_pct"] == pytest.approx(9.0) and tp["run_ids"] == [new["run_id"]]
    # another target is another point
    other = prune_row(50, 10.5)
    other["config"]["prune"]["uniform_density"] = 0.05
    assert len(P.prune_points([old, new, other], "lenet5")) == 2
    assert RD.sweep_setting(new) == "prune=0.1"
    assert RD.sweep_setting(_row("lenet5", "prune", config=_config())) is None  # fixture rows name no target
