"""Sweep readings and points on hand-written rows: the grouping rules, each figure's points, reruns replacing
runs, and the paper's checks (tests/figure_rows.py holds the rows)."""

import numpy as np
import pytest

from experiments.analysis import claims as C
from experiments.analysis import points as P
from experiments.analysis import readings as RD
from experiments.figures import style as S
from tests.figure_rows import (BITS, DENSE_ERR, LENET300_LAYERS, LENET5_LAYERS, _config, _row,  # noqa: F401
                               rows)  # rows: a fixture

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
        return _row("lenet5", "prune", {"pruned/top1_err": err}, cfg, layers=layers,
                    ratio={"p_sparse": 1000 / nonzeros})
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
