"""Pruned LSTMs (ours): the captioner and the row-LSTM classifier at each LSTM density, over seeds, beside the
paper's NeuralTalk statement; and the caption slide (the same test images captioned by the dense model and by
the files pruned to 90% and 95%, next to a reference caption).

Rows: the clean, complete experiment rows of ``neuraltalk`` and ``lstm_fmnist`` by LSTM density, the latest
per seed (``experiments.analysis.lstm.density_runs``); caption records beside the captioner's rows
(``<run_id>.captions.jsonl``, ``python -m experiments.analysis.captioning``) give the paired BLEU intervals and
the slide.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from experiments.analysis import lstm as L
from experiments.analysis.captioning import paired_bleu, records_in
from experiments.analysis.stats import stage_delta
from experiments.tables.cells import NA, get, rate, run_label, size
from experiments.tables.render import Table

NAMES = {"neuraltalk": "NeuralTalk-style captioner", "lstm_fmnist": "Row-LSTM classifier"}
DATASETS = {"fashion_captions": "fashion_captions (real Fashion-MNIST items, synthetic captions)",
            "fashion_mnist": "sequential Fashion-MNIST (28 rows of 28 pixels)"}
PAPER = ("Han et al. (NIPS 2015; the lecture's NeuralTalk slide), NeuralTalk on Flickr8k: 90% of the LSTM's "
         "weights pruned with retraining, captions nearly unchanged (\"a basketball player in a white uniform is "
         "playing with a ball\" → \"... with a basketball\"); at 95% they degrade (\"a soccer player in red is "
         "running in the field\" → \"a man in a red shirt and black and white black shirt is running through a "
         "field\"). No BLEU, error or size is published.")
SLIDE_IMAGES = 8


def _rows(df: pd.DataFrame) -> list[dict]:
    return list(df["row"]) if len(df) else []


def _paired(row: dict, records: dict) -> str:
    """compressed − dense of one row, paired over its test examples: BLEU-4 from its caption record, top-1
    error from its per-example records."""
    if L.metric_of(row) == "bleu4":
        rec = records.get(str(row.get("run_id")))
        if rec is None:
            return "no caption record"
        refs = _references(row)
        if refs is None:
            return "references unavailable"
        d = paired_bleu(rec["captions"]["dense"], rec["captions"]["compressed"], refs)
        return d.text()
    d = stage_delta(row)
    return NA if d is None else d.text()


_REFS: dict[str, list] = {}


def _references(row: dict):
    """The test references of a captioning row's dataset (its data config; cached per config)."""
    import json

    key = json.dumps(row["config"]["data"], sort_keys=True)
    if key not in _REFS:
        from experiments.analysis.captioning import data_module

        try:
            _REFS[key] = data_module(row).test_set.references
        except Exception:  # the dataset is not on this machine
            _REFS[key] = None
    return _REFS[key]


def lstm_table(df: pd.DataFrame, runs_dir: str | Path) -> Table:
    rows = _rows(df)
    lines, csv_lines, notes = [], [], []
    for exp in L.EXPERIMENTS:
        records = records_in(runs_dir, exp)
        by = L.density_runs(rows, exp)
        if not by:
            lines.append([NAMES[exp], "not run", *["–"] * 9])
            csv_lines.append([exp, None, 0, *[None] * 11])
            notes.append(f"{NAMES[exp]}: not run — no clean, complete row in `{runs_dir}/{exp}/`.")
            continue
        for d, rs in by.items():
            metric = L.metric_of(rs[0])
            label = "BLEU-4" if metric == "bleu4" else "top-1 err %"
            stats = {s: L.spread(get(r, "metrics", f"{s}/{metric}") for r in rs) for s in ("dense", "pruned",
                                                                                           "compressed")}
            loss = L.spread(L.loss(r, "compressed", metric) for r in rs)
            ok, why = L.target_check(rs, exp) if abs(d - 0.1) < 0.005 else (None, "no target at this density")
            rt, fb = L.spread(get(r, "ratio", "pqh") for r in rs), L.spread(get(r, "size", "file_bytes") for r in rs)
            db = get(rs[0], "size", "dense_bytes")
            paired = "; ".join(f"seed {r.get('seed')}: {_paired(r, records)}" for r in rs)
            lines.append([NAMES[exp], f"{100 * d:.1f}%", f"{len(rs)} ({', '.join(str(r.get('seed')) for r in rs)})",
                          f"{label}: {stats['dense'].text()}", stats["pruned"].text(), stats["compressed"].text(),
                          loss.text("{:+.2f}"), paired, why,
                          f"{size(db, 'KB')} → {size(fb.mean, 'KB')}", rate(rt.mean)])
            csv_lines.append([exp, d, len(rs), metric, stats["dense"].mean, stats["pruned"].mean,
                              stats["compressed"].mean, loss.mean, loss.lo, loss.hi, ok, db, fb.mean, rt.mean])
            notes.append(f"{NAMES[exp]} at {100 * d:.1f}%: runs " + ", ".join(run_label(r) for r in rs) + ".")
        ds = by[next(iter(by))][0].get("dataset")
        notes.append(f"{NAMES[exp]}: data {DATASETS.get(ds, ds)}.")
    notes += [
        "LSTM density: stored non-zeros of the LSTM's input and recurrent matrices (the four gates of each) over "
        "their weights. Each line: the clean, complete experiment rows at that density, the latest per seed; "
        "mean ± sample standard deviation (min to max) over seeds. Dense = the run's fp32 model before pruning; "
        "pruned = after the last retraining round (fp32); compressed = the model decoded from the file (pruned, "
        "weight-shared with fine-tuned centroids, Huffman-coded).",
        "Loss = how much worse compressed is than dense, in points (BLEU-4: dense − compressed; error: "
        "compressed − dense). Paired: compressed − dense per seed with its 95% interval over the test examples — "
        "BLEU-4 by the paired bootstrap of corpus BLEU over test images (the caption records), top-1 error by "
        "the bootstrap over test images with McNemar's exact p (experiments/analysis/stats.py).",
        "Target (issue 17), at 10% LSTM density on every seed: the captioner within 1 BLEU-4 point of dense, the "
        "classifier within 0.5 points of top-1 error.",
        "Size: dense fp32 parameters (`size.dense_bytes`) → the compressed file (`size.file_bytes`), mean over "
        "seeds; rate = `ratio.pqh`. 1 KB = 1,000 B.",
        "Paper: " + PAPER,
    ]
    return Table("lstm", "Pruned LSTMs: the captioner and the row-LSTM classifier (ours), beside NeuralTalk's "
                 "statement", ["network", "LSTM density", "seeds", "dense", "pruned", "compressed",
                               "loss vs dense (pts)", "compressed − dense, paired 95% CI", "target",
                               "size dense → file", "rate"], lines, notes,
                 ["experiment", "lstm_density", "seeds", "metric", "dense_mean", "pruned_mean", "compressed_mean",
                  "loss_mean", "loss_min", "loss_max", "target_met", "dense_bytes", "file_bytes_mean", "rate_mean"],
                 csv_lines)


def caption_slide(df: pd.DataFrame, runs_dir: str | Path, seed: int | None = None) -> Table:
    """The slide: for the first test images, a reference, the dense model's caption and the files' at 90% and
    95% pruned (the 95% run starts from the same dense weights; its dense captions are checked equal)."""
    rows, exp = _rows(df), "neuraltalk"
    by = L.density_runs(rows, exp)
    records = records_in(runs_dir, exp)
    pick = {}
    with_record = lambda d: [r for r in by.get(d, []) if str(r["run_id"]) in records]  # noqa: E731
    first = [r for r in with_record(0.1) if seed is None or r.get("seed") == seed]
    if first:
        pick["pruned 90%"] = first[0]
        same_seed = [r for r in with_record(0.05) if r.get("seed") == first[0].get("seed")]
        if same_seed:
            pick["pruned 95%"] = same_seed[0]
    columns = ["test image", "reference (first of 5)", "dense", "pruned 90%", "pruned 95%"]
    if "pruned 90%" not in pick:
        return Table("neuraltalk_captions", "NeuralTalk's slide, ours: captions before and after pruning",
                     columns, [["not run", "–", "–", "–", "–"]],
                     [f"Not run: no captioner row at 10% LSTM density with a caption record in `{runs_dir}/{exp}/` "
                      "(python -m experiments.analysis.captioning <row>)."], columns, [])
    base = pick["pruned 90%"]
    refs = _references(base)
    dense = records[str(base["run_id"])]["captions"]["dense"]
    cols = {t: records[str(r["run_id"])]["captions"]["compressed"] for t, r in pick.items()}
    notes = []
    if "pruned 95%" in pick:
        other = records[str(pick["pruned 95%"]["run_id"])]["captions"]["dense"]
        same = other == dense
        notes.append(f"The 95% run's dense model {'gives the same captions as' if same else 'DIFFERS from'} the 90% "
                     "run's (it starts from the same dense weights).")
    lines, csv_lines = [], []
    for i in range(min(SLIDE_IMAGES, len(dense))):
        ref = refs[i][0] if refs else NA
        cells = [dense[i], *(cols.get(t, [NA] * len(dense))[i] for t in ("pruned 90%", "pruned 95%"))]
        lines.append([str(i), ref, *cells])
        csv_lines.append([i, ref, *cells])
    n = len(dense)
    for t, c in cols.items():
        changed = sum(a != b for a, b in zip(dense, c))
        notes.append(f"{t}: {changed} of {n} test captions differ from the dense model's ({100 * changed / n:.1f}%); "
                     f"BLEU-4 {get(pick[t], 'metrics', 'compressed/bleu4'):.2f} against dense "
                     f"{get(pick[t], 'metrics', 'dense/bleu4'):.2f}.")
    notes += [f"Seed {base.get('seed')}; runs " + ", ".join(f"{t} {run_label(r)}" for t, r in pick.items()) + ". "
              f"The first {SLIDE_IMAGES} images of the test split, none chosen; captions decoded greedily from the "
              "dense weights the run trained and from each run's compressed file (pruned, weight-shared, "
              "Huffman-coded).",
              "Data: fashion_captions — real Fashion-MNIST test items side by side, captions from a small grammar "
              "(synthetic language): a caption is right when it names the items in order.",
              "Paper: " + PAPER]
    return Table("neuraltalk_captions", "NeuralTalk's slide, ours: captions before and after pruning the LSTM",
                 columns, lines, notes, columns, csv_lines)


def captioning_tables(df: pd.DataFrame, runs_dir: str | Path) -> list[Table]:
    """Both tables, where the runs folder holds rows of either experiment (none otherwise: these tables are ours,
    beyond the papers' Table 1-5, and a results folder without LSTM runs has nothing to say about them)."""
    have = len(df) and bool(set(df["experiment"].dropna()) & set(L.EXPERIMENTS))
    return [lstm_table(df, runs_dir), caption_slide(df, runs_dir)] if have else []
