"""experiments.tables on hand-written rows: row choice, hand-checked Markdown, atomic output."""

import copy
import csv
import json
from pathlib import Path

import pytest

from experiments import paper_values as pv
from experiments import tables
from experiments.analysis import rows as R
from experiments.tables.__main__ import main as tables_main
from experiments.tables.seeds import seeds_table


def recipe(experiment: str, **changes) -> dict:
    """The experiment file's config as a run would record it, with ``changes`` ({"prune.distill": 0.5})."""
    cfg = copy.deepcopy(R.experiment_config(experiment))
    for key, v in changes.items():
        *path, last = key.split(".")
        node = cfg
        for k in path:
            node = node.setdefault(k, {})
        node[last] = v
    return cfg

CLEAN = "20260101-000000-aaaaaa"

LENET300 = {
    "schema": 1, "experiment": "lenet300", "run_id": CLEAN, "model": "lenet300", "dataset": "fashion_mnist",
    "seed": 0, "git_commit": "0123456789abcdef", "git_dirty": False, "storage_only": False,
    "weights_source": "trained", "config": recipe("lenet300"),
    "metrics": {"dense/top1_err": 10.3, "dense/top5_err": 0.4, "compressed/top1_err": 10.52,
                "compressed/top5_err": 0.41},
    "layers": [
        {"name": "ip1", "kind": "fc", "weights": 235200, "nonzeros": 18816, "density": 0.08, "entries": 19000,
         "weight_bits_pq": 6, "weight_bits_pqh": 4.4, "index_bits_pq": 5, "index_bits_pqh": 3.7,
         "pct_pq": 3.1, "pct_pqh": 2.32},
        # no nonzeros key: round(0.09 * 30000) = 2700
        {"name": "ip2", "kind": "fc", "weights": 30000, "density": 0.09, "entries": 3000,
         "weight_bits_pq": 6, "weight_bits_pqh": 4.0, "index_bits_pq": 5, "index_bits_pqh": 4.0,
         "pct_pq": 3.8, "pct_pqh": 3.04},
        # no nonzeros, no entries: nonzeros = round(0.25 * 1000) = 250 is the weight of its bits
        {"name": "ip3", "kind": "fc", "weights": 1000, "density": 0.25,
         "weight_bits_pq": 6, "weight_bits_pqh": 4.8, "index_bits_pq": 5, "index_bits_pqh": 3.2,
         "pct_pq": 15.7, "pct_pqh": 12.7},
    ],
    "size": {"dense_bytes": 1066440, "pq_bytes": 33000, "pqh_bytes": 26000, "file_bytes": 27300},
    "ratio": {"p": 12.23, "pq": 32.3164, "pqh": 41.0169},
}

ALEXNET_W = {"conv1": 34848, "conv2": 307200, "conv3": 884736, "conv4": 663552, "conv5": 442368,
             "fc6": 37748736, "fc7": 16777216, "fc8": 4096000}  # the paper's Caffe AlexNet
ALEXNET_D = {"conv1": .84, "conv2": .38, "conv3": .35, "conv4": .37, "conv5": .37, "fc6": .09, "fc7": .09, "fc8": .25}
ALEXNET_STORAGE = {
    "schema": 1, "experiment": "alexnet", "run_id": "20260104-000000-dddddd", "model": "alexnet_caffe",
    "dataset": "none", "git_commit": "fedcba9876543210", "git_dirty": False, "storage_only": True,
    "weights_source": "initialized", "metrics": {}, "config": recipe("alexnet", storage_only=True),
    "layers": [{"name": n, "weights": w, "density": ALEXNET_D[n], "weight_bits_pq": 8 if n.startswith("conv") else 5,
                "weight_bits_pqh": 5.0, "index_bits_pq": 4, "index_bits_pqh": 3.0, "pct_pq": 10.0, "pct_pqh": 8.0}
               for n, w in ALEXNET_W.items()],
    "size": {"dense_bytes": 244403360, "pq_bytes": 10000000, "pqh_bytes": 8575556, "file_bytes": 9000000},
    "ratio": {"pq": 24.44, "pqh": 28.5},
}
# torchvision's AlexNet: a variant of the experiment (model=alexnet), shown as a note only
TV_ALEXNET = {**ALEXNET_STORAGE, "run_id": "20260104-000000-d0d0d0", "model": "alexnet",
              "config": {**recipe("alexnet", storage_only=True),
                         "model": {"_target_": "experiments.models.alexnet.AlexNet", "name": "alexnet",
                                   "pretrained": False}},
              "size": {"dense_bytes": 244403360, "file_bytes": 6781975}, "ratio": {"pqh": 36.0485}}


def _write(runs: Path, rel: str, row: dict) -> None:
    p = runs / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(row))


@pytest.fixture
def runs(tmp_path):
    r = tmp_path / "runs"
    _write(r, f"lenet300/{CLEAN}.json", LENET300)
    # later but dirty: ignored
    _write(r, "lenet300/20260102-000000-bbbbbb.json",
           {**LENET300, "run_id": "20260102-000000-bbbbbb", "git_dirty": True, "metrics": {"compressed/top1_err": 99.0}})
    # later, clean, but incomplete (no compressed error, no file size): ignored
    _write(r, "lenet300/20260103-000000-cccccc.json",
           {**LENET300, "run_id": "20260103-000000-cccccc", "metrics": {"dense/top1_err": 10.3}, "size": {}})
    # later, clean, complete, but a sweep job (subfolder): ignored
    _write(r, "lenet300/sweep/20260105-000000-eeeeee.json", {**LENET300, "run_id": "20260105-000000-eeeeee"})
    # AlexNet: storage-only, the paper's model, and torchvision's variant; LeNet-5 and VGG-16: no rows
    _write(r, "alexnet/20260104-000000-dddddd.json", ALEXNET_STORAGE)
    _write(r, "alexnet/20260104-000000-d0d0d0.json", TV_ALEXNET)
    return r


def test_row_choice(runs):
    ch = tables.choose_rows(R.load_runs(runs))
    assert (ch["lenet300"].kind, ch["lenet300"].row["run_id"]) == ("complete", CLEAN)
    assert (ch["alexnet"].kind, ch["alexnet"].row["run_id"]) == ("storage-only", "20260104-000000-dddddd")
    assert ch["lenet5"].kind == ch["vgg16"].kind == "not run" and ch["lenet5"].row is None


def _md_lines(out: Path, stem: str) -> list[str]:
    """The Markdown's lines, table cells without the padding that aligns the columns."""
    def norm(line):
        if not line.startswith("|"):
            return line
        return "| " + " | ".join(c.strip() for c in line.strip().strip("|").split(" | ")) + " |"
    return [norm(line) for line in (out / f"{stem}.md").read_text().splitlines()]


def test_table1_markdown(runs, tmp_path):
    out = tmp_path / "tables"
    tables.write_tables(runs, out)
    lines = _md_lines(out, "table1")
    # LeNet-300-100: change 10.52 - 10.30 = +0.22 ours, 1.58 - 1.64 = -0.06 paper; top-5 0.41 - 0.40 = +0.01, no paper.
    # size 1,066,440 B = 1066 KB -> 27,300 B = 27.3 KB (1 KB = 1000 B); rate 41.0169 - 40 = +1.0x
    assert ("| LeNet-300-100 | Fashion-MNIST / MNIST | 10.30% → 10.52% | 1.64% → 1.58% | +0.22 / -0.06 "
            "| 0.40% → 0.41% | – | +0.01 / – | 1066 KB → 27.3 KB | 1070 KB → 27 KB | 41.0× | 40× | +1.0× |") in lines
    assert ("| LeNet-5 | not run / MNIST | not run | 0.80% → 0.74% | – | not run | – | – | not run "
            "| 1720 KB → 44 KB | not run | 39× | – |") in lines
    # storage-only: 244,403,360 B = 244 MB -> 9,000,000 B = 9.00 MB; 28.5 - 35 = -6.5x
    assert ("| AlexNet | no data / ImageNet | not measured (storage-only) | 42.78% → 42.78% | – "
            "| not measured (storage-only) | 19.73% → 19.70% | – | 244 MB → 9.00 MB | 240 MB → 6.9 MB "
            "| 28.5× | 35× | -6.5× |") in lines
    assert ("| VGG-16 | not run / ImageNet | not run | 31.50% → 31.17% | – | not run | 11.32% → 10.91% | – "
            "| not run | 552 MB → 11.3 MB | not run | 49× | – |") in lines
    text = "\n".join(lines)
    assert "not the paper's MNIST" in text and "torchvision's variant" in text and "1 KB = 1,000 B" in text
    assert "36.0×" in text and "d0d0d0" in text  # torchvision's AlexNet, as a note
    assert "`20260101-000000-aaaaaa` (commit `0123456`)" in text and "`20260104-000000-dddddd` (commit `fedcba9`)" in text
    for ignored in ("bbbbbb", "cccccc", "eeeeee", "99.0"):
        assert ignored not in text


def test_table2_markdown(runs, tmp_path):
    out = tmp_path / "tables"
    tables.write_tables(runs, out)
    lines = _md_lines(out, "table2_lenet300")
    assert "| ip1 | ours | 235.2K | 8.0% | 6 | 4.4 | 5 | 3.7 | 3.10% | 2.32% |" in lines
    assert "| ip1 | paper | 235K | 8% | 6 | 4.4 | 5 | 3.7 | 3.1% | 2.32% |" in lines
    assert "| ip3 | ours | 1K | 25.0% | 6 | 4.8 | 5 | 3.2 | 15.70% | 12.70% |" in lines
    # total: W = 235200 + 30000 + 1000 = 266200; nonzeros = 18816 + 2700 + 250 = 21766
    #   density 21766 / 266200 = 8.18% -> "8.2%", 266200 / 21766 = 12.23x
    #   entries 19000 + 3000 + 250 = 22250
    #   weight bits P+Q+H = (4.4*19000 + 4.0*3000 + 4.8*250) / 22250 = 96800 / 22250 = 4.3506
    #   index bits P+Q+H  = (3.7*19000 + 4.0*3000 + 3.2*250) / 22250 = 83100 / 22250 = 3.7348
    #   size P+Q = 33000 / 1066440 = 3.094%, P+Q+H = 26000 / 1066440 = 2.438%; rates from ratio.pq/pqh
    assert "| total | ours | 266.2K | 8.2% (12.2×) | 6 | 4.35 | 5 | 3.73 | 3.09% (32.3×) | 2.44% (41.0×) |" in lines
    assert "| total | paper | 266K | 8% (12×) | 6 | 5.1 | 5 | 3.7 | 3.1% (32×) | 2.49% (40×) |" in lines
    rows = list(csv.DictReader((out / "table2_lenet300.csv").open()))
    total = [r for r in rows if r["layer"] == "total" and r["source"] == "ours"][0]
    assert total["nonzeros"] == "21766" and float(total["weight_bits_pqh"]) == pytest.approx(96800 / 22250, abs=1e-4)


def test_storage_only_and_not_run_layer_tables(runs, tmp_path):
    out = tmp_path / "tables"
    tables.write_tables(runs, out)
    t4 = _md_lines(out, "table4_alexnet")
    # Caffe conv1: 96*3*11*11 = 34848 weights -> "34.8K"; its storage columns are shown
    assert "| conv1 | ours | 34.8K | 84.0% | 8 | 5 | 4 | 3 | 10.00% | 8.00% |" in t4
    assert "| conv1 | paper | 35K | 84% | 8 | 6.3 | 4 | 1.2 | 32.6% | 20.53% |" in t4
    assert any("storage-only" in l for l in t4) and any("torchvision's variant" in l for l in t4)
    t3 = _md_lines(out, "table3_lenet5")
    assert "| total | paper | 431K | 8% (12×) | 5.3 | 4.1 | 5 | 4.4 | 3.05% (33×) | 2.55% (39×) |" in t3
    assert not any("| ours |" in l for l in t3) and any("not run" in l for l in t3)


def test_cli_writes_every_file_atomically(runs, tmp_path):
    out = tmp_path / "tables"
    assert tables_main(["--runs", str(runs), "--out", str(out)]) == 0
    stems = ["table1", "table2_lenet300", "table3_lenet5", "table4_alexnet", "table5_vgg16", "seeds", "criteria"]
    expected = sorted(f"{s}.{e}" for s in stems for e in ("md", "csv", "tex"))
    assert sorted(p.name for p in out.iterdir()) == expected  # no temp files left behind
    assert "not run" in (out / "table5_vgg16.md").read_text()
    tex = (out / "table1.tex").read_text()
    assert "\\begin{tabular}" in tex and "10.30\\% $\\rightarrow$ 10.52\\%" in tex
    t1 = {r["network"]: r for r in csv.DictReader((out / "table1.csv").open())}
    assert t1["vgg16"]["status"] == "not run" and t1["vgg16"]["rate"] == ""
    assert float(t1["lenet300"]["delta_top1_compressed"]) == pytest.approx(8.94)  # 10.52 - 1.58
    assert float(t1["lenet300"]["change_top1"]) == pytest.approx(0.22)
    assert float(t1["lenet300"]["paper_change_top1"]) == pytest.approx(-0.06)
    assert tables_main(["--runs", str(tmp_path / "missing"), "--out", str(out)]) == 2


def test_paper_values_match_spec():
    assert [c[0] for c in pv.DC_LAYERS["vgg16"]][-1] == "total" and len(pv.DC_LAYERS["vgg16"]) == 17
    assert pv.DC_TABLE1["vgg16"]["top5_compressed"] == 10.91 and pv.LWC_PRUNING["alexnet"]["top1_pruned"] == 42.77
    tot = pv.layer_numbers("alexnet")[-1]
    assert (tot["density"], tot["ratio_p"], tot["pct_pqh"], tot["ratio_pqh"]) == (0.11, 9.0, 2.88, 35.0)


def test_seed_spread(tmp_path):
    r = tmp_path / "runs"
    errs = {0: (10.0, 10.2, 40.0), 1: (10.4, 10.4, 38.0), 2: (9.9, 10.4, 39.0)}  # dense, compressed, rate
    for seed, (d, c, rate) in errs.items():
        run_id = f"2026010{seed + 1}-000000-aaaaa{seed}"
        _write(r, f"lenet300/{run_id}.json", {
            **LENET300, "run_id": run_id, "seed": seed,
            # where the run's files went cannot change a result: rows from two machines group together
            "config": recipe("lenet300", seed=seed, **{"paths.root_dir": f"/machine{seed}", "data.root": f"/m{seed}"}),
            "metrics": {"dense/top1_err": d, "compressed/top1_err": c}, "ratio": {"pqh": rate}})
    # same seed spread but another config (3 rounds), and a dirty row: not in the group
    _write(r, "lenet300/20260105-000000-bbbbbb.json", {**LENET300, "run_id": "20260105-000000-bbbbbb",
                                                        "config": recipe("lenet300", **{"prune.rounds": 3})})
    _write(r, "lenet300/20260106-000000-cccccc.json", {**LENET300, "run_id": "20260106-000000-cccccc",
                                                        "git_dirty": True})
    df = R.load_runs(r)
    choices = tables.choose_rows(df)
    assert choices["lenet300"].row["run_id"] == "20260103-000000-aaaaa2"  # the 3-round row is a variant
    assert R.variant(json.loads((r / "lenet300/20260105-000000-bbbbbb.json").read_text())) == "prune.rounds=3"
    groups = R.seed_groups(df, "lenet300")
    assert [list(g["seed"]) for g in groups] == [[0], [0, 1, 2]]  # latest group first
    t = seeds_table(df, choices)
    (line,) = t.csv_lines  # the variant ran on one seed only: no line
    # compressed - dense: +0.2, 0.0, +0.5 -> mean 0.2333, sample std 0.2517, min 0, max 0.5
    i = t.csv_columns.index("compressed_minus_dense_mean")
    assert line[i:i + 4] == pytest.approx([0.7 / 3, 0.2516611, 0.0, 0.5], abs=1e-6)
    assert line[1] == 3 and line[2] == "0, 1, 2"
    assert "+0.23 ± 0.25 (+0.00 to +0.50)" in t.markdown()


def test_variant_rows_are_never_table_1s(runs, tmp_path):
    """A row of another recipe (distillation, another criterion) cannot fall into Table 1 by accident."""
    row = {**LENET300, "run_id": "20260106-000000-ffffff",
           "config": recipe("lenet300", **{"prune.distill": 0.5, "prune.distill_temperature": 4.0})}
    _write(runs, "lenet300/20260106-000000-ffffff.json", row)
    crit = {**LENET300, "run_id": "20260107-000000-f0f0f0",
            "config": recipe("lenet300", **{"prune.criterion": {"_target_": "tests.test_contracts.RandomScores"}})}
    _write(runs, "lenet300/20260107-000000-f0f0f0.json", crit)
    df = R.load_runs(runs)
    assert dict(zip(df["run_id"], df["variant"]))["20260106-000000-ffffff"] == \
        "prune.distill=0.5, prune.distill_temperature=4.0"
    assert dict(zip(df["run_id"], df["variant"]))["20260107-000000-f0f0f0"] == "prune.criterion=RandomScores"
    assert tables.choose_rows(df)["lenet300"].row["run_id"] == CLEAN  # newer, but not the recipe
    (runs / f"lenet300/{CLEAN}.json").unlink()  # no recipe row left: not run, never a variant
    assert tables.choose_rows(R.load_runs(runs))["lenet300"].kind == "not run"
    # a temperature means nothing while distillation is off: such a row is the recipe
    _write(runs, "lenet300/20260106-000000-ffffff.json",
           {**row, "config": recipe("lenet300", **{"prune.distill": 0.0, "prune.distill_temperature": 2.0})})
    assert tables.choose_rows(R.load_runs(runs))["lenet300"].row["run_id"] == "20260106-000000-ffffff"


def test_seed_spread_has_a_line_per_variant_run_on_two_seeds(tmp_path):
    r = tmp_path / "runs"
    # an earlier config run once (3 rounds): superseded, no line of its own
    _write(r, "lenet300/20251201-000000-eeeee0.json", {
        **LENET300, "run_id": "20251201-000000-eeeee0", "seed": 0, "config": recipe("lenet300", **{"prune.rounds": 3}),
        "metrics": {"dense/top1_err": 10.0, "compressed/top1_err": 11.0}})
    for seed, d, c in ((0, 10.0, 10.6), (1, 10.2, 10.6)):  # the papers' recipe: +0.6, +0.4
        _write(r, f"lenet300/2026010{seed + 1}-000000-aaaaa{seed}.json", {
            **LENET300, "run_id": f"2026010{seed + 1}-000000-aaaaa{seed}", "seed": seed,
            "config": recipe("lenet300", seed=seed), "metrics": {"dense/top1_err": d, "compressed/top1_err": c}})
    for seed, d, c in ((0, 10.0, 10.1), (1, 10.2, 10.5)):  # distilled: +0.1, +0.3, later run ids
        _write(r, f"lenet300/2026020{seed + 1}-000000-ddddd{seed}.json", {
            **LENET300, "run_id": f"2026020{seed + 1}-000000-ddddd{seed}", "seed": seed,
            "config": recipe("lenet300", seed=seed, **{"prune.distill": 0.5, "prune.distill_temperature": 4.0}),
            "metrics": {"dense/top1_err": d, "compressed/top1_err": c}})
    df = R.load_runs(r)
    choices = tables.choose_rows(df)
    assert choices["lenet300"].row["run_id"] == "20260102-000000-aaaaa1"  # the recipe's latest row
    t = seeds_table(df, choices)
    label = "prune.distill=0.5, prune.distill_temperature=4.0"
    assert [line[0] for line in t.csv_lines] == ["lenet300", f"lenet300 {label}"]
    i = t.csv_columns.index("compressed_minus_dense_mean")
    assert [line[i] for line in t.csv_lines] == pytest.approx([0.5, 0.2])
    assert f"LeNet-300-100: {label}" in t.markdown()
    # rows from before an option existed read as what their code did
    old = recipe("lenet300")
    del old["prune"]["drop_dead_connections"]
    assert R.variant({"experiment": "lenet300", "config": old}) == "prune.drop_dead_connections=false"


def test_change_carries_its_paired_ci_where_the_row_has_per_example_records(runs, tmp_path):
    import numpy as np

    from experiments.analysis.stats import pack_correct

    dense = np.ones(1000, bool)
    dense[:103] = False  # 10.3% error
    comp = dense.copy()
    comp[103:125] = False  # 22 more wrong: 12.5%, +2.2 points, all discordant one way
    row = json.loads((runs / f"lenet300/{CLEAN}.json").read_text())
    row["metrics"].update({"dense/top1_err": 10.3, "compressed/top1_err": 12.5})
    row["correct"] = {"dense": pack_correct(dense), "compressed": pack_correct(comp)}
    _write(runs, f"lenet300/{CLEAN}.json", row)
    out = tmp_path / "tables"
    tables.write_tables(runs, out)
    t1 = {r["network"]: r for r in csv.DictReader((out / "table1.csv").open())}["lenet300"]
    assert float(t1["change_top1"]) == pytest.approx(2.2)
    assert float(t1["change_top1_ci_low"]) > 1.0 and float(t1["change_top1_ci_high"]) < 3.5
    assert float(t1["change_top1_p_mcnemar"]) == pytest.approx(2 * 0.5 ** 22)  # 22 of 22 discordant one way
    assert "+2.20 [+" in (out / "table1.md").read_text()
