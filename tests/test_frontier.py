"""The rate–error frontier on hand-written rows: method labels, grouping over seeds, paired bands, the best ratio
per threshold, and the figure and table written (or skipped with a line) from rows in a tmp results folder."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from experiments import paper_values as pv
from experiments.analysis import frontier as FA
from experiments.analysis.stats import pack_correct, stage_delta
from experiments.figures import __main__ as FM
from experiments.figures.frontier import fig_frontier
from experiments.tables.__main__ import main as tables_main
from experiments.tables.frontier import frontier_table

N = 1000  # test examples per row
DENSE_BYTES = 1066440  # LeNet-300-100 in fp32
QUANTIZERS = {"KMeans": "compression.quantize.KMeans", "HessianKMeans": "compression.ecsq.HessianKMeans",
              "ECSQ": "compression.ecsq.ECSQ", "SoftWeightSharing": "compression.soft_sharing.SoftWeightSharing"}


def _correct(wrong: int) -> dict:
    c = np.ones(N, bool)
    c[:wrong] = False  # the first examples wrong: nested sets, so the paired delta is exact
    return pack_correct(c)


def _config(seed=0, density=0.08, quantizer="KMeans", distill=0.0, allocation=None, coder="huffman.Huffman"):
    return {"seed": seed, "prune": {"enabled": True, "density": {"*": density}, "distill": distill,
                                    "allocation": allocation},
            "quantize": {"enabled": True, "quantizer": {"_target_": QUANTIZERS[quantizer]}},
            "encode": {"enabled": True, "coder": {"_target_": f"compression.coders.{coder}"}},
            "model": {"name": "lenet300", "checkpoint": f"outputs/lenet300/dense_seed{seed}/dense.pt"},
            "paths": {"output_dir": f"outputs/lenet300/run_seed{seed}"}}


_IDS = [0]


def _row(seed, delta, file_bytes, density=0.08, run_id=None, bitsets=True, experiment="lenet300", val_delta="same",
         **extra):
    """A full-pipeline row: dense error 10%, compressed 10% + delta (points, a multiple of 0.1); on the validation
    split compressed − dense is ``val_delta`` (the same as on test by default; None: no validation errors)."""
    _IDS[0] += 1
    wrong_d, wrong_c = 100, 100 + int(round(delta * N / 100))
    row = {"schema": 1, "experiment": experiment, "model": experiment, "dataset": "fashion_mnist", "seed": seed,
           "run_id": run_id or f"20270101-{_IDS[0]:06d}-abcdef", "git_commit": "0123456789abcdef", "git_dirty": False,
           "storage_only": False, "config": _config(seed, density),
           "metrics": {"dense/top1_err": 100 * wrong_d / N, "compressed/top1_err": 100 * wrong_c / N},
           "size": {"dense_bytes": DENSE_BYTES, "file_bytes": file_bytes},
           "ratio": {"pqh": DENSE_BYTES / file_bytes}}
    val_delta = delta if val_delta == "same" else val_delta
    if val_delta is not None:
        row["metrics"].update({"dense/val_top1_err": 9.0, "compressed/val_top1_err": 9.0 + val_delta})
    if bitsets:
        row["correct"] = {"dense": _correct(wrong_d), "compressed": _correct(wrong_c)}
    row.update(extra)
    return row


def _recipe(density, deltas, file_bytes):
    """Rows of one recipe, one per seed."""
    return [_row(s, d, b, density) for s, (d, b) in enumerate(zip(deltas, file_bytes))]


def test_method_of_each_config_variant():
    def label(**kw):
        return FA.method_of({"config": _config(**kw)})

    assert FA.method_of({"config": {}}) == "k-means (DC)"  # no quantizer key: rows from before the plug-ins
    assert label() == "k-means (DC)"
    assert label(quantizer="HessianKMeans") == "Hessian k-means"
    assert label(quantizer="ECSQ") == "ECSQ"
    assert label(quantizer="SoftWeightSharing") == "soft weight-sharing"
    assert label(distill=0.5) == "k-means (DC) + distillation"
    assert label(allocation={"_target_": "compression.allocation.FromSensitivity", "budget": 0.05}) \
        == "k-means (DC) + allocated densities"
    assert label(coder="rans.RANS") == "k-means (DC) + rANS"
    assert label(quantizer="ECSQ", distill=0.3, allocation={"budget": 0.05}, coder="rans.RANS") \
        == "ECSQ + distillation + allocated densities + rANS"
    obs = {"config": {"prune": {"enabled": True, "criterion": {"_target_": "compression.criteria.obs.OBS"}}}}
    assert FA.method_of(obs) == "k-means (DC) + OBS pruning"  # OBD / OBS rows are not the paper's recipe
    no_coder = {"config": {"quantize": {"quantizer": {"_target_": QUANTIZERS["ECSQ"]}}}}
    assert FA.method_of(no_coder) == "ECSQ"  # no coder key: Huffman


def test_points_group_seeds_keep_the_latest_rerun_and_say_what_they_skip():
    a = _recipe(0.08, (0.3, 0.5, 0.4), (27000, 27100, 27200))
    rerun = _row(0, 0.1, 26900, 0.08, run_id="20991231-000000-ffffff")  # seed 0 again, later: replaces a[0]
    b = _recipe(0.05, (0.9, 1.1), (18000, 18200))
    others = [_row(0, 0.2, 20000, 0.06, bitsets=False),  # no per-example records: reported, not used
              _row(0, 0.2, 20000, 0.07, storage_only=True), _row(0, 0.2, 20000, 0.07, dataset="mnist"),
              _row(0, 0.2, 20000, 0.07, experiment="lenet5")]
    notes = []
    pts = FA.frontier_points(a + [rerun] + b + others, "lenet300", note=notes.append)
    assert len(notes) == 1 and "1 of 7 full-pipeline rows" in notes[0]
    assert [(p["method"], p["seeds"]) for p in pts] == [("k-means (DC)", [0, 1]), ("k-means (DC)", [0, 1, 2])]
    small, big = pts  # sorted by file bytes
    assert big["run_ids"] == [rerun["run_id"], a[1]["run_id"], a[2]["run_id"]]
    assert big["delta"] == pytest.approx((0.1 + 0.5 + 0.4) / 3)
    assert (big["delta_min"], big["worst_delta"]) == pytest.approx((0.1, 0.5))
    assert (big["file_bytes"], big["file_bytes_min"], big["file_bytes_max"]) \
        == pytest.approx((27066.6667, 26900, 27200))
    assert big["ratio_max"] == pytest.approx(DENSE_BYTES / 26900)
    assert small["ratio"] == pytest.approx((DENSE_BYTES / 18000 + DENSE_BYTES / 18200) / 2)
    assert len(big["p_values"]) == 3 and all(0 <= p <= 1 for p in big["p_values"])


def test_only_experiment_runs_and_frontier_jobs_are_points():
    """A figure sweep's job (here DC Fig. 6's, started from already-pruned weights: its "dense" stage is the
    pruned model) is not a recipe on the frontier, even with per-example records; a frontier job is."""
    run = _row(0, 0.3, 27000)
    job = _row(1, 0.3, 27000, sweep="frontier")  # the same recipe, seed 1
    figure_job = _row(0, -0.1, 20000, density=0.05, sweep="tradeoff")
    pts = FA.frontier_points([run, job, figure_job], "lenet300")
    assert [sorted(p["run_ids"]) for p in pts] == [sorted([run["run_id"], job["run_id"]])]


def test_band_covers_each_seeds_paired_ci():
    rows = _recipe(0.08, (0.2, 0.6, 0.4), (27000, 27100, 27200))
    (p,) = FA.frontier_points(rows, "lenet300")
    cis = [stage_delta(r, "compressed", "dense") for r in rows]
    assert p["band_low"] == pytest.approx(min(c.ci_low for c in cis))
    assert p["band_high"] == pytest.approx(max(c.ci_high for c in cis))
    for c in cis:
        assert p["band_low"] <= c.ci_low <= c.delta <= c.ci_high <= p["band_high"]
    assert p["band_low"] < p["delta_min"] and p["band_high"] > p["worst_delta"]


def test_best_ratio_needs_every_seed_within_the_threshold():
    small = _recipe(0.05, (0.1, 0.3, 0.6), (20000, 20000, 20000))  # worst seed +0.6, higher ratio
    big = _recipe(0.08, (0.1, 0.2, 0.4), (27000, 27000, 27000))  # worst seed +0.4
    pts = FA.frontier_points(small + big, "lenet300")
    best = FA.best_ratio(pts)["k-means (DC)"]
    assert best[1.0]["ratio"] == pytest.approx(DENSE_BYTES / 20000)
    assert best[0.5]["ratio"] == pytest.approx(DENSE_BYTES / 27000)  # the mean +0.23 of `small` is not enough
    assert best[0.5]["point"]["worst_delta"] == pytest.approx(0.4)
    assert best[0.2]["ratio"] is None and best[0.2]["point"] is None
    near = best[0.2]["closest"]  # the worst seed of `big` misses +0.2 by 0.2 points
    assert near["point"]["file_bytes"] == 27000 and near["over"] == pytest.approx(0.2) and near["missing_seeds"] == 0
    assert best[1.0]["closest"] is None


def test_the_choice_is_made_on_validation_and_reports_the_test_delta():
    # `small`: within +0.5 on test on every seed but not on validation; `big`: the other way round
    small = [_row(s, d, 20000, 0.05, val_delta=v) for s, (d, v) in enumerate([(0.1, 0.7), (0.2, 0.3), (0.3, 0.2)])]
    big = [_row(s, d, 27000, 0.08, val_delta=v) for s, (d, v) in enumerate([(0.6, 0.1), (0.2, 0.2), (0.1, 0.4)])]
    pts = FA.frontier_points(small + big, "lenet300")
    chosen = FA.best_ratio(pts, thresholds=(0.5,))["k-means (DC)"][0.5]
    assert chosen["point"]["file_bytes"] == 27000  # not the smaller file, whose validation says +0.7
    assert FA.worst(chosen["point"], "test") == pytest.approx(0.6)  # reported as measured: over the threshold
    assert FA.best_ratio(pts, thresholds=(0.5,), on="test")["k-means (DC)"][0.5]["point"]["file_bytes"] == 20000
    no_val = FA.frontier_points([_row(s, 0.1, 20000, val_delta=None) for s in range(3)], "lenet300")
    entry = FA.best_ratio(no_val, thresholds=(0.5,))["k-means (DC)"][0.5]
    assert entry["point"] is None and entry["closest"] is None  # rows without validation errors cannot be chosen
    assert frontier_table([_row(s, 0.1, 20000, val_delta=None) for s in range(3)], note=lambda s: None) \
        .markdown().count("no row with validation errors") == 3


def test_two_seeds_do_not_qualify_with_three_required():
    pts = FA.frontier_points(_recipe(0.08, (0.1, 0.1), (27000, 27000)), "lenet300")
    best = FA.best_ratio(pts, thresholds=(0.5,), min_seeds=3)["k-means (DC)"][0.5]
    assert best["ratio"] is None
    assert best["closest"]["over"] == 0 and best["closest"]["missing_seeds"] == 1
    assert FA.best_ratio(pts, thresholds=(0.5,), min_seeds=2)["k-means (DC)"][0.5]["ratio"] \
        == pytest.approx(DENSE_BYTES / 27000)


def _write(results: Path, rows: list[dict], sweep: str | None = None) -> None:
    for r in rows:
        d = results / "sweeps" / r["experiment"] / sweep if sweep else results / "runs" / r["experiment"]
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{r['run_id']}.json").write_text(json.dumps(r))


def test_figure_and_table_from_rows(tmp_path, capsys):
    results = tmp_path / "results"
    qualified = _recipe(0.08, (0.1, 0.2, 0.4), (27000, 27100, 26900))  # within +0.5 on every seed
    two_seeds = _recipe(0.05, (0.1, 0.1), (18000, 18000))  # better, but only 2 seeds
    _write(results, qualified)
    _write(results, two_seeds, sweep="frontier")  # sweep rows count too

    rows = qualified + two_seeds
    fig = fig_frontier(rows, "lenet300", note=lambda s: None)
    ax = fig.axes[0]
    # the recipes on 3 seeds joined by a line; the 2-seed trial a hollow marker apart
    curve, trial = [l for l in ax.get_lines() if l.get_marker() == "o"]
    assert list(curve.get_xdata()) == pytest.approx([27000]) and list(curve.get_ydata()) == pytest.approx([0.7 / 3])
    assert curve.get_linestyle() == "-" and curve.get_markerfacecolor() != "none"
    assert list(trial.get_xdata()) == pytest.approx([18000]) and list(trial.get_ydata()) == pytest.approx([0.1])
    assert trial.get_linestyle() == "None" and trial.get_markerfacecolor() == "none"
    marks = sorted(l.get_xdata()[0] for l in ax.get_lines() if l.get_linestyle() == ":")
    assert marks == pytest.approx(sorted(DENSE_BYTES / s["ratio"] for s in pv.SUCCESSORS["lenet300"]))
    dashed = sorted(l.get_ydata()[0] for l in ax.get_lines() if l.get_linestyle() == "--")
    assert dashed == pytest.approx([0.2, 0.5, 1.0])

    assert FM.main(["--results", str(results), "--out", str(tmp_path / "figures"), "--experiment", "lenet300"]) == 0
    assert {p.name for p in (tmp_path / "figures").iterdir() if "frontier" in p.name} == \
        {"lenet300_frontier.png", "lenet300_frontier.pdf"}

    out = tmp_path / "tables"
    assert tables_main(["--runs", str(results / "runs"), "--out", str(out)]) == 0
    assert {"frontier.md", "frontier.csv", "frontier.tex"} <= {p.name for p in out.iterdir()}
    (line,) = list(csv.DictReader((out / "frontier.csv").open()))
    assert (line["network"], line["method"], line["recipes"]) == ("lenet300", "k-means (DC)", "2")
    ratio = np.mean([DENSE_BYTES / b for b in (27000, 27100, 26900)])
    assert float(line["best_ratio_0.5"]) == pytest.approx(ratio, rel=1e-5)
    assert line["best_ratio_0.2"] == "" and float(line["closest_worst_val_delta_0.2"]) == pytest.approx(0.1)
    assert float(line["best_worst_test_delta_0.5"]) == pytest.approx(0.4)
    assert line["closest_seeds_0.2"] == "2" and float(line["published_mnist_ratio"]) == 40
    md = (out / "frontier.md").read_text()
    assert "Deep Compression 40×" in md and f"{ratio:.1f}× (3 seeds; worst: val +0.40, test +0.40)" in md
    assert "LeNet-5: not run" in md


def test_skipped_with_a_line_when_no_row_qualifies(tmp_path, capsys):
    rows = _recipe(0.08, (0.1, 0.2, 0.4), (27000, 27100, 26900))
    for r in rows:
        del r["correct"]  # rows from before per-example records
    notes = []
    assert fig_frontier(rows, "lenet300", note=notes.append) is None
    assert notes[0].startswith("lenet300 frontier: 3 of 3") and notes[-1].startswith("lenet300_frontier: skipped")
    assert fig_frontier(rows, "lstm_fmnist", note=notes.append) is None and "lstm_fmnist_frontier: skipped" in notes[-1]
    assert frontier_table(rows, note=notes.append) is None and notes[-1].startswith("frontier: skipped")

    results = tmp_path / "results"
    _write(results, rows)
    assert FM.main(["--results", str(results), "--out", str(tmp_path / "figures"), "--experiment", "lenet300"]) == 0
    assert tables_main(["--runs", str(results / "runs"), "--out", str(tmp_path / "tables")]) == 0
    assert not any("frontier" in p.name for d in ("figures", "tables") if (tmp_path / d).is_dir()
                   for p in (tmp_path / d).iterdir())
    printed = capsys.readouterr().out
    assert "lenet300_frontier: skipped" in printed and "frontier: skipped" in printed


def test_a_collapsed_trial_is_named_in_the_caption_not_drawn():
    good = _recipe(0.08, (0.1, 0.2, 0.4), (27000, 27100, 26900))
    costly = _recipe(0.02, (6.0, 7.0, 8.0), (8000, 8000, 8000))  # a method that costs points, not a collapse
    collapsed = [_row(0, 80.0, 1200, density=0.001)]  # e.g. a network whose weights all fell to zero
    notes = []
    fig = fig_frontier(good + costly + collapsed, "lenet300", note=notes.append)
    xs = [x for l in fig.axes[0].get_lines() if l.get_marker() == "o" for x in l.get_xdata()]
    assert sorted(xs) == pytest.approx([8000, 27000])  # the recipes within the scale
    assert fig.axes[0].get_yscale() == "symlog" and fig.axes[0].get_ylim()[1] > 8.0
    assert any("off the scale" in n and collapsed[0]["run_id"] in n for n in notes)
    assert "Off the scale, not drawn" in fig._supxlabel.get_text()
    assert collapsed[0]["run_id"] in fig._supxlabel.get_text()


RECIPE_OVERRIDES = {  # what each conf/recipe/*.yaml stands for on the command line (the trials were run so)
    "distill": ["prune.distill=0.3", "prune.distill_temperature=2", "quantize.distill=0.3",
                "quantize.distill_temperature=2"],
    "rans": ["encode/coder=rans"],
    "ecsq": ["quantize/quantizer=ecsq", "quantize.quantizer.rate=3", "quantize.quantizer.hessian=true"],
    "allocated": ["prune/allocation=sensitivity", "prune.allocation.budget=0.05"],
    "soft_sharing": ["prune=none", "quantize/quantizer=soft_sharing", "quantize.epochs=3",
                     "quantize.quantizer.tau=0.05", "quantize.quantizer.epochs=120", "quantize.quantizer.keep_best=true",
                     "quantize.quantizer.progress=true", "data.batch_size=256"],
}


@pytest.mark.parametrize("experiment", ["lenet300", "lenet5"])
def test_each_recipe_composes_to_the_config_of_its_trials_and_is_labelled(experiment, tmp_path):
    from omegaconf import OmegaConf

    from conftest import CONF_DIR, compose_cfg
    from experiments.canonical import recipe_key

    assert sorted(p.stem for p in (Path(CONF_DIR) / "recipe").glob("*.yaml")) == sorted(RECIPE_OVERRIDES)

    def config(overrides):
        cfg = compose_cfg([f"+experiment={experiment}", "+sweep=frontier", "seed=1", *overrides], tmp_path)
        cfg = OmegaConf.to_container(cfg, resolve=True)
        cfg.pop("hydra", None)
        return cfg

    combos = [[r] for r in RECIPE_OVERRIDES] + [["ecsq", "distill", "rans"], ["ecsq", "distill", "rans", "allocated"]]
    labels = {}
    for names in combos:
        by_file = config([f"+recipe=[{','.join(names)}]"])
        by_hand = config([o for n in names for o in RECIPE_OVERRIDES[n]])
        assert recipe_key(by_file, None) == recipe_key(by_hand, None), names  # a trial's row joins its recipe
        labels[tuple(names)] = FA.method_of({"config": by_file})
    assert config([])["model"]["checkpoint"] == f"outputs/{experiment}/dense_seed1/dense.pt"  # the seed's own
    assert labels[("ecsq", "distill", "rans")] == "ECSQ + distillation + rANS"
    assert labels[("ecsq", "distill", "rans", "allocated")] == "ECSQ + distillation + allocated densities + rANS"
    assert labels[("distill",)] == "k-means (DC) + distillation"
    assert labels[("soft_sharing",)] == "soft weight-sharing"
