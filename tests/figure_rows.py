"""Hand-written rows for the figure and sweep-point tests (tests/test_figures.py, tests/test_sweep_points.py;
tests/test_notebook.py writes them to a results folder): the values the tests compute by hand."""

import copy
import json
from pathlib import Path

import pytest

from experiments import figures as F
from experiments.analysis import readings as RD

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

