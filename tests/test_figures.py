"""experiments.figures on hand-written rows: each figure's drawn data, and the files written via main()."""

import json
import math

import pytest

from experiments import figures as F
from experiments.analysis import readings as RD
from experiments.figures import __main__ as FM
from experiments.figures import runs as FR
from experiments.figures import sweeps as FS
from tests.figure_rows import HUFF_W, _config, _row, rows, write_results  # noqa: F401 (rows: a fixture)

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


def test_sweep_caption_counts_drawn_rows_not_superseded_runs():
    """A rerun of a sweep job replaces the earlier run in the plot; the caption's row count follows the
    plot, and says how many earlier runs were replaced."""
    def prune_row(err):
        cfg = _config(quantize=False, rounds=1)
        cfg["prune"]["uniform_density"] = 0.1
        return _row("lenet5", "prune", {"pruned/top1_err": err}, cfg)
    old, new = prune_row(12.0), prune_row(11.0)
    fig = FS.fig_prune([old, new], "lenet5", note=lambda s: None)
    caption = fig._supxlabel.get_text().replace("\n", " ")
    assert "Rows: 1 (" in caption and new["run_id"] in caption and old["run_id"] not in caption
    assert "1 earlier rows of these settings were replaced by reruns" in caption
    fig = FS.fig_prune([new], "lenet5", note=lambda s: None)
    assert "replaced by reruns" not in fig._supxlabel.get_text().replace("\n", " ")
