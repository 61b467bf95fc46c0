"""experiments.analysis.lstm and its figure on hand-written rows: the measured LSTM density, which rows form
the density sweep, the issue's target per seed, the one-step sweep's points."""

from experiments.analysis import lstm as L
from experiments.figures.captioning import fig_lstm_density

CAPTIONER = {"_target_": "experiments.captioning.LitCaptioner"}


def _row(run_id, seed, ih, hh, dense, compressed, *, sweep=None, epochs=3, pruned=None, captioning=False, dirty=False,
         rounds=1):
    metric = "bleu4" if captioning else "top1_err"
    return {"run_id": run_id, "experiment": "neuraltalk" if captioning else "lstm_fmnist", "sweep": sweep,
            "seed": seed, "git_dirty": dirty, "dataset": "fashion_mnist",
            "config": {"task": CAPTIONER if captioning else {}, "prune": {"epochs_per_round": epochs, "rounds": rounds}},
            "layers": [{"name": "lstm_ih", "kind": "recurrent", "weights": 1000, "nonzeros": ih},
                       {"name": "lstm_hh", "kind": "recurrent", "weights": 4000, "nonzeros": hh},
                       {"name": "fc", "kind": "fc", "weights": 100, "nonzeros": 100}],
            "metrics": {f"dense/{metric}": dense, f"compressed/{metric}": compressed,
                        f"pruned/{metric}": compressed if pruned is None else pruned},
            "size": {"file_bytes": 1234}}


def test_density_counts_only_the_recurrent_matrices_however_they_are_split():
    assert L.lstm_density(_row("a", 0, 100, 400, 10, 10)) == 0.1
    assert L.lstm_density(_row("a", 0, 300, 200, 10, 10)) == 0.1  # a denser input matrix, the same LSTM density
    assert L.lstm_density(_row("a", 0, 100, 150, 10, 10)) == 0.05


def test_density_runs_take_the_latest_clean_experiment_row_per_seed():
    rows = [_row("20260101-000000-a", 0, 100, 400, 10.0, 11.0), _row("20260102-000000-b", 0, 100, 400, 10.0, 10.2),
            _row("20260103-000000-c", 0, 100, 400, 10.0, 9.0, dirty=True),
            _row("20260103-000000-d", 0, 100, 400, 10.0, 9.0, sweep="lstm_density"),
            _row("20260101-000000-e", 1, 100, 400, 10.0, 10.6), _row("20260101-000000-f", 1, 50, 200, 10.0, 12.0)]
    runs = L.density_runs(rows, "lstm_fmnist")
    assert list(runs) == [0.1, 0.05]
    assert [r["run_id"] for r in runs[0.1]] == ["20260102-000000-b", "20260101-000000-e"]
    ok, text = L.target_check(runs[0.1], "lstm_fmnist")
    assert not ok and "+0.60" in text  # seed 1 loses 0.6 points, over the 0.5 allowed
    ok, _ = L.target_check(runs[0.1][:1], "lstm_fmnist")
    assert ok


def test_the_captioners_target_is_bleu_lost_and_higher_is_better():
    rows = [_row("r0", 0, 100, 400, 65.0, 64.5, captioning=True), _row("r1", 1, 100, 400, 66.0, 67.0, captioning=True)]
    assert [L.loss(r, "compressed") for r in rows] == [0.5, -1.0]
    assert L.target_check(rows, "neuraltalk")[0]
    assert not L.target_check(rows + [_row("r2", 2, 100, 400, 66.0, 64.9, captioning=True)], "neuraltalk")[0]


def test_sweep_points_and_figure():
    rows = [_row(f"s{s}{e}", s, 100, 400, 10.0, None, sweep="lstm_density", epochs=e, pruned=v)
            for s, (e, v) in enumerate([(0, 30.0), (0, 40.0), (3, 12.0)])]
    rows += [_row("t3", 0, 100, 400, 10.0, None, sweep="lstm_density", epochs=3, pruned=11.0)]
    pts = {(p["retrained"], p["density"]): p for p in L.sweep_points(rows, "lstm_fmnist")}
    assert pts[(False, 0.1)]["value"] == 35.0 and pts[(False, 0.1)]["seeds"] == [0, 1]
    assert pts[(True, 0.1)]["min"] == 11.0 and pts[(True, 0.1)]["max"] == 12.0 and pts[(True, 0.1)]["epochs"] == 3
    fig = fig_lstm_density(rows, "lstm_fmnist")
    ax = fig.axes[0]
    assert [line.get_ydata()[0] for line in ax.get_lines()[:2]] == [35.0, 11.5]
    rows += [_row("e0", 0, 100, 400, 10.0, 10.4, epochs=20), _row("e1", 1, 100, 400, 10.0, 10.6, epochs=5, rounds=3)]
    labels = fig_lstm_density(rows, "lstm_fmnist").axes[0].get_legend_handles_labels()[1]
    assert "full pipeline: one step + 20 epochs of retraining / 3 prune + retrain rounds x 5 epochs, weight sharing, " \
           "Huffman file" in labels  # the experiment rows' own recipes, not a fixed description
    notes = []
    assert fig_lstm_density([], "lstm_fmnist", note=notes.append) is None and "skipped" in notes[0]
