"""The criteria figure and table on hand-written rows: points over seeds, paired deltas, the table's grouping."""

import numpy as np
import pytest

from experiments.analysis.criteria import criterion, pipeline_rows, schedule, sweep_points, versus_magnitude
from experiments.analysis.stats import pack_correct

TARGET = {"Magnitude": "compression.criteria.magnitude.Magnitude", "OBD": "compression.criteria.obd.OBD",
          "OBS": "compression.criteria.obs.OBS"}


def _correct(err_pct, n=1000, seed=0):
    c = np.ones(n, bool)
    c[: int(round(err_pct * n / 100))] = False  # the first k examples wrong: nested sets, so paired deltas are exact
    return pack_correct(c)


def _sweep_row(crit, density, seed, err, epochs=0, rounds=1, dense=10.0):
    return {"experiment": "lenet300", "sweep": "criteria", "seed": seed, "run_id": f"2027-{crit}-{density}-{seed}-{epochs}",
            "config": {"prune": {"criterion": {"_target_": TARGET[crit]}, "uniform_density": density,
                                 "epochs_per_round": epochs, "rounds": rounds}},
            "metrics": {"dense/top1_err": dense, "pruned/top1_err": err},
            "correct": {"pruned": _correct(err)},
            "layers": [{"weights": 1000, "nonzeros": int(density * 1000)}], "time_s": {"prune_criterion": 1.0}}


def test_readings_of_a_criteria_row():
    r = _sweep_row("OBS", 0.1, 0, 20.0, epochs=8, rounds=3)
    assert (criterion(r), schedule(r)) == ("OBS", "iterative")
    assert criterion({"config": {}}) == "Magnitude" and schedule({"config": {"prune": {}}}) == "without retraining"


def test_points_over_seeds_and_paired_deltas():
    rows = []
    for seed, (m, d, s) in enumerate(((40.0, 30.0, 15.0), (44.0, 31.0, 17.0))):
        rows += [_sweep_row("Magnitude", 0.1, seed, m), _sweep_row("OBD", 0.1, seed, d), _sweep_row("OBS", 0.1, seed, s)]
    pts = {(p["criterion"], p["density"]): p for p in sweep_points(rows, "lenet300")}
    assert pts[("Magnitude", 0.1)]["err"] == pytest.approx(42.0)
    assert (pts[("OBS", 0.1)]["err_min"], pts[("OBS", 0.1)]["err_max"]) == (15.0, 17.0)
    assert pts[("OBD", 0.1)]["loss"] == pytest.approx(20.5) and pts[("OBD", 0.1)]["seeds"] == [0, 1]
    vs = {(v["criterion"], v["seed"]): v for v in versus_magnitude(rows, "lenet300")}
    # nested wrong sets: OBS seed 0 gets 250 more examples right than magnitude and none wrong that it got right
    assert vs[("OBS", 0)]["delta"] == pytest.approx(-25.0) and vs[("OBS", 0)]["p_mcnemar"] < 1e-50
    assert vs[("OBD", 1)]["delta"] == pytest.approx(-13.0)
    assert ("Magnitude", 0) not in vs


def test_pipeline_rows_group_by_criterion_latest_per_seed():
    def run(crit, seed, run_id, dense_epochs=0):
        return {"experiment": "lenet300", "seed": seed, "run_id": run_id, "git_dirty": False,
                "config": {"dense": {"epochs": dense_epochs}, "model": {"checkpoint": "outputs/x/dense.pt"},
                           "prune": {"criterion": {"_target_": TARGET[crit]}}},
                "metrics": {"dense/top1_err": 10, "compressed/top1_err": 11}}
    rows = [run("OBS", 0, "a"), run("OBS", 0, "b"), run("Magnitude", 0, "c"), run("OBD", 1, "d"),
            run("OBS", 1, "e", dense_epochs=40)]  # the last trained its own dense model: not compared
    g = pipeline_rows(rows, "lenet300")
    assert list(g) == ["Magnitude", "OBD", "OBS"]
    assert [r["run_id"] for r in g["OBS"]] == ["b"]


def test_criteria_figure_draws_each_criterion():
    from experiments.figures.criteria import fig_criteria

    rows = [_sweep_row(c, d, s, e + 5 * i, epochs=ep)
            for s in (0, 1) for i, c in enumerate(("OBS", "OBD", "Magnitude")) for d, e in ((0.5, 11.0), (0.1, 20.0))
            for ep in (0, 8)]
    fig = fig_criteria(rows, "lenet300", note=lambda s: None)
    left, right = fig.axes[:2]
    labels = [l.get_label() for l in left.get_lines()]
    assert labels[:3] == ["Magnitude", "OBD", "OBS"] and "dense (mean over seeds)" in labels
    x, y = left.get_lines()[0].get_data()
    assert list(x) == pytest.approx([50.0, 90.0]) and list(y) == pytest.approx([21.0, 30.0])
    assert fig_criteria([], "lenet300", note=lambda s: None) is None


def test_criteria_figure_states_the_retraining_lr_of_each_schedule():
    """Curves retrained at different prune.lr_scale are labelled as such; rows without retraining do not count."""
    from experiments.figures.criteria import fig_criteria

    def row(crit, density, seed, epochs, rounds, lr):
        r = _sweep_row(crit, density, seed, 15.0, epochs=epochs, rounds=rounds)
        r["config"]["prune"]["lr_scale"] = lr
        return r

    def caption(rows):
        return fig_criteria(rows, "lenet300", note=lambda s: None)._supxlabel.get_text().replace("\n", " ")

    same = [row("Magnitude", 0.1, 0, 0, 1, 0.5), row("Magnitude", 0.1, 0, 8, 1, 1.0), row("OBS", 0.1, 0, 8, 3, 1.0)]
    assert "Retraining at prune.lr_scale 1.0." in caption(same) and "different learning rates" not in caption(same)
    mixed = same[:2] + [row("OBS", 0.1, 0, 8, 3, 0.5)]
    text = caption(mixed)
    assert "different learning rates" in text
    assert "iterative at prune.lr_scale 0.5" in text and "with retraining at prune.lr_scale 1.0" in text


def test_criteria_table_names_each_criterion_and_its_retraining_lr():
    import pandas as pd

    from experiments.tables.criteria import criteria_table

    def run(crit, seed, comp, lr):
        return {"experiment": "lenet300", "seed": seed, "run_id": f"{crit}-{seed}", "git_dirty": False,
                "config": {"dense": {"epochs": 0}, "model": {"checkpoint": "outputs/x/dense.pt"},
                           "prune": {"criterion": {"_target_": TARGET[crit]}, "lr_scale": lr}},
                "metrics": {"dense/top1_err": 10.0, "pruned/top1_err": 10.5, "compressed/top1_err": comp},
                "ratio": {"pqh": 40.0}, "time_s": {"prune_criterion": 2.0}}
    rows = [run("Magnitude", 0, 11.0, 1.0), run("Magnitude", 1, 11.4, 1.0), run("OBS", 0, 10.8, 0.5)]
    t = criteria_table(pd.DataFrame({"row": rows}))
    mag, obs = t.lines[0], t.lines[1]
    assert mag[:3] == ["LeNet-300-100", "Magnitude", "0, 1"] and mag[4] == "+1.20 (+1.00 to +1.40)"
    assert obs[1] == "OBS" and obs[4] == "+0.80"
    text = " ".join(t.notes)
    assert "Magnitude: runs `Magnitude-0`, `Magnitude-1`, retrained at `prune.lr_scale` 1.0." in text
    assert "OBS: runs `OBS-0`, retrained at `prune.lr_scale` 0.5." in text
