"""Per-layer densities from a global budget (compression/allocation.py): the hull, the optimum, the budget,
the errors, and a run that prunes to the allocated densities into a file that decodes to the evaluated model."""
import itertools

import pytest

from compression.allocation import FromSensitivity, allocate, lower_hull, predicted_error

GRID = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]


def _convex(scale):  # a decreasing convex curve: error falls steeply at low density, then flattens
    return [(d, 10 + scale / (d + 0.01)) for d in GRID]


def test_lower_hull_drops_points_above_it_and_keeps_the_ends():
    pts = [(0.1, 5.0), (0.2, 4.9), (0.3, 2.0), (0.5, 1.0), (1.0, 1.1)]
    assert lower_hull(pts) == [(0.1, 5.0), (0.3, 2.0), (0.5, 1.0), (1.0, 1.1)]
    assert lower_hull([(0.5, 1.0), (0.5, 0.5), (1.0, 0.4)]) == [(0.5, 0.5), (1.0, 0.4)]


def test_the_budget_is_met_exactly_and_the_sensitive_layer_keeps_more():
    sizes = {"big": 100_000, "small": 5_000}
    curves = {"big": _convex(0.05), "small": _convex(2.0)}  # 'small' hurts 40x more when pruned
    for budget in (0.02, 0.05, 0.1, 0.3):
        d = allocate(curves, sizes, budget)
        kept = sum(sizes[n] * d[n] for n in sizes)
        assert kept == pytest.approx(budget * sum(sizes.values()), rel=1e-4)
        assert d["small"] > d["big"]


def test_it_is_the_optimum_over_the_grid_where_the_budget_falls_on_grid_points():
    sizes = {"a": 1000, "b": 3000, "c": 500}
    curves = {"a": _convex(0.3), "b": _convex(0.1), "c": _convex(1.0)}
    for combo in itertools.product(GRID, repeat=3):  # every budget a grid combination spends
        budget = sum(sizes[n] * x for n, x in zip("abc", combo)) / sum(sizes.values())
        got = sum(predicted_error(curves, allocate(curves, sizes, budget)).values())
        best = min(sum(dict(curves[n])[x] for n, x in zip("abc", c)) for c in itertools.product(GRID, repeat=3)
                   if sum(sizes[n] * x for n, x in zip("abc", c)) <= budget * sum(sizes.values()) + 1e-9)
        assert got <= best + 1e-3, combo  # predicted_error rounds to 4 decimals


def test_bad_budgets_and_missing_curves_are_named():
    sizes = {"a": 100, "b": 100}
    with pytest.raises(ValueError, match="no sensitivity curve for layer.*'b'"):
        allocate({"a": _convex(1)}, sizes, 0.1)
    with pytest.raises(ValueError, match="below what the curves' lowest densities keep"):
        allocate({"a": _convex(1), "b": _convex(1)}, sizes, 0.005)
    with pytest.raises(ValueError, match="up to density 1.0"):
        allocate({"a": _convex(1)[:-1], "b": _convex(1)}, sizes, 0.5)
    with pytest.raises(ValueError, match="min_density|lowest"):
        allocate({"a": _convex(1), "b": _convex(1)}, sizes, 0.05, min_density=0.2)


def _csv(path, curves):
    lines = ["layer,kind,density,fraction_pruned,val_top1_err"]
    lines += [f"{n},fc,{d},{1 - d},{e}" for n, pts in curves.items() for d, e in pts]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_plugin_reads_a_sensitivity_csv_and_reports_what_it_chose(tmp_path):
    p = _csv(tmp_path / "s.csv", {"ip1": _convex(0.05), "ip2": _convex(0.5), "ip3": _convex(3.0)})
    a = FromSensitivity(0.08, str(p))
    sizes = {"ip1": 235_200, "ip2": 30_000, "ip3": 1_000}
    d = a.densities(sizes)
    assert d["ip3"] > d["ip2"] > d["ip1"]
    r = a.report()
    assert r["kept_fraction"] == pytest.approx(0.08, abs=1e-5) and r["density"] == d and len(r["sha256"]) == 64
    with pytest.raises(ValueError, match="python -m experiments.sensitivity"):
        FromSensitivity(0.08, str(tmp_path / "absent.csv"))


def test_a_missing_curve_file_fails_at_the_gate(empty_cwd, capsys):
    import run as cli

    with pytest.raises(SystemExit) as e:
        cli.gate(["+experiment=lenet300", "data=mnist_sample", "prune/allocation=sensitivity",
                  f"prune.allocation.curves={empty_cwd / 'none.csv'}"])
    assert e.value.code == 2
    assert "no sensitivity curves at" in capsys.readouterr().err


def test_end_to_end_the_layers_land_on_the_allocated_densities(tmp_path):
    from compression.architecture import decode_model
    from conftest import compose_cfg
    from experiments.data import MNISTSampleDataModule
    from experiments.evaluate import test_errors as decoded_test_errors
    from experiments.pipeline import run

    p = _csv(tmp_path / "s.csv", {"ip1": _convex(0.05), "ip2": _convex(0.5), "ip3": _convex(3.0)})
    row = run(compose_cfg(["+experiment=lenet300", "data=mnist_sample", "prune/allocation=sensitivity",
                           f"prune.allocation.curves={p}", "prune.allocation.budget=0.1", "prune.rounds=1",
                           "prune.epochs_per_round=1", "prune.drop_dead_connections=false", "dense.epochs=1",
                           "quantize.epochs=0", "trainer.limit_train_batches=8", "logger=none",
                           "trainer.enable_progress_bar=false"], tmp_path))
    chosen = row["allocation"]["density"]
    layers = {l["name"]: l for l in row["layers"]}
    for name, d in chosen.items():  # exactly round(d * weights) kept per layer
        assert layers[name]["nonzeros"] == round(d * layers[name]["weights"]), (name, layers[name])
    assert chosen["ip3"] > chosen["ip1"]
    dm = MNISTSampleDataModule()
    dm.setup()
    err = decoded_test_errors(decode_model(row["artifacts"]["compressed_file"]), dm.test_dataloader(), 10)["top1_err"]
    assert err == pytest.approx(row["metrics"]["compressed/top1_err"], abs=1e-6)
