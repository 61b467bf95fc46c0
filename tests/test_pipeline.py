"""End-to-end: the real command on the offline MNIST sample, tiny epochs, into tmp folders."""
import json

import pytest

from conftest import compose_cfg, rows_in, run_cli
from experiments.pipeline import run

TINY = ["data=mnist_sample", "dense.epochs=1", "prune.rounds=2", "prune.epochs_per_round=1", "quantize.epochs=1",
        "logger=none", "trainer.enable_progress_bar=false", "prune.remove_dead_neurons=true"]


@pytest.fixture(scope="module")
def lenet300_row(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    p = run_cli(["+experiment=lenet300", *TINY], tmp)
    assert p.returncode == 0, p.stderr[-3000:]
    rows = rows_in(tmp)
    assert len(rows) == 1
    return json.loads(rows[0].read_text()), p.stdout, tmp


def test_row_has_required_keys(lenet300_row):
    row, out, _ = lenet300_row
    for k in ("experiment", "model", "dataset", "seed", "git_commit", "git_dirty", "config", "metrics", "params",
              "time_s", "layers", "ratio", "rounds"):
        assert k in row, k
    assert row["experiment"] == "lenet300" and row["model"] == "lenet300" and row["dataset"] == "mnist_sample"
    assert row["params"]["weights"] == 266200
    assert row["config"]["dense"]["epochs"] == 1  # the resolved config
    for stage in ("dense", "pruned", "quantized"):
        assert 0.0 <= row["metrics"][f"{stage}/top1_err"] <= 100.0
    assert "dense/top1_err" in out  # printed for the user


def test_row_pruning_fields(lenet300_row):
    row, _, _ = lenet300_row
    names = [l["name"] for l in row["layers"]]
    assert names == ["ip1", "ip2", "ip3"]
    want = {"ip1": 0.08, "ip2": 0.09, "ip3": 0.26}
    last_drop = row["rounds"][-1].get("dead_connections_dropped", {})
    for l in row["layers"]:
        assert l["kind"] == "fc"
        # the density target, less the connections of units that pruning left dead (LWC 3.4)
        assert l["nonzeros"] == round(want[l["name"]] * l["weights"]) - last_drop.get(l["name"], 0)
        assert l["density"] == pytest.approx(l["nonzeros"] / l["weights"], abs=1e-4)
        assert l["dead_connections_dropped"] >= last_drop.get(l["name"], 0)
        # dead-out units are counted where the specs name a sole consumer: not for the output layer ip3
        assert "dead_in" in l and ("dead_out" in l) == (l["name"] != "ip3")
    total = sum(l["weights"] for l in row["layers"])
    assert row["ratio"]["p"] == pytest.approx(total / sum(l["nonzeros"] for l in row["layers"]), rel=1e-3)
    assert len(row["rounds"]) == 2
    assert row["rounds"][-1]["density"] == pytest.approx(total and sum(l["nonzeros"] for l in row["layers"]) / total, abs=1e-4)


def test_same_seed_same_numbers(tmp_path):
    a = run(compose_cfg(["dense.epochs=1", "write_row=false", "logger=none", "trainer.enable_progress_bar=false",
                         "trainer.deterministic=true"], tmp_path / "a"))
    b = run(compose_cfg(["dense.epochs=1", "write_row=false", "logger=none", "trainer.enable_progress_bar=false",
                         "trainer.deterministic=true"], tmp_path / "b"))
    assert a["metrics"] == b["metrics"]
    assert not (tmp_path / "a" / "results").exists()  # write_row=false writes nothing


def test_row_storage_fields_come_from_the_file(lenet300_row):
    import os

    row, _, tmp = lenet300_row
    path = row["artifacts"]["compressed_file"]
    assert os.path.isfile(path)
    assert row["size"]["file_bytes"] == os.path.getsize(path)
    assert 0 < row["size"]["file_bytes"] - row["size"]["pqh_bytes"] < 1024  # fixed header only
    assert row["size"]["dense_bytes"] == 4 * (266200 + 410)
    assert row["ratio"]["pqh"] == pytest.approx(row["size"]["dense_bytes"] / row["size"]["pqh_bytes"], rel=1e-3)
    for l in row["layers"]:
        for k in ("weight_bits_pq", "weight_bits_pqh", "index_bits_pq", "index_bits_pqh", "pct_pq", "pct_pqh",
                  "entries", "fillers"):
            assert k in l, k
        assert l["weight_bits_pq"] == 6


def test_compressed_file_decodes_to_the_reported_error(lenet300_row, tmp_path):
    import subprocess

    from conftest import PY, ROOT

    row, _, _ = lenet300_row
    out = subprocess.run([PY, "-m", "experiments.evaluate", row["artifacts"]["compressed_file"], "data=mnist_sample"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"top1_err {row['metrics']['compressed/top1_err']:.2f}" in out.stdout


def test_every_stage_is_also_measured_on_the_validation_split(lenet300_row):
    from compression.architecture import decode_model
    from experiments.data import MNISTSampleDataModule
    from experiments.evaluate import test_errors

    row, _, _ = lenet300_row
    m = row["metrics"]
    for stage in ("dense", "pruned", "quantized_init", "quantized", "compressed"):
        assert f"{stage}/val_top1_err" in m, stage
    dm = MNISTSampleDataModule()
    dm.setup()
    model = decode_model(row["artifacts"]["compressed_file"])
    val = test_errors(model, dm.val_dataloader(), 10)["top1_err"]
    test = test_errors(model, dm.test_dataloader(), 10)["top1_err"]
    assert val == pytest.approx(m["compressed/val_top1_err"], abs=1e-3)  # the validation split's, not the test's
    assert test == pytest.approx(m["compressed/top1_err"], abs=1e-3)


def test_dead_neuron_export_in_the_row(lenet300_row):
    import os

    import torch

    row, _, _ = lenet300_row
    path = row["artifacts"]["neurons_removed_model"]
    assert os.path.isfile(path)
    small = torch.load(path, weights_only=False)
    removed = [l["units_removed"] for l in row["layers"]]
    assert removed[2] == 0  # the outputs are never removed
    assert small.ip1.out_features == 300 - removed[0] and small.ip2.in_features == 300 - removed[0]
    assert small.ip2.out_features == 100 - removed[1] and small.ip3.out_features == 10


def test_dropout_rescaled_by_sqrt_of_density():
    """LWC Eq. 2: D_r = D_o * sqrt(C_ir / C_io); fc7 of AlexNet at 9% density: 0.5 * 0.3 = 0.15."""
    from types import SimpleNamespace

    from compression.prune import magnitude_prune
    from compression.specs import module_of, specs_of
    from experiments.models.alexnet import AlexNet
    from experiments.pipeline.prune import _rescale_dropout

    model = AlexNet(num_classes=10)
    specs = specs_of(model)
    fc7 = module_of(model, next(s for s in specs if s.name == "fc7"))
    magnitude_prune(fc7, "weight", density=0.09)
    run = SimpleNamespace(model=model, modules=lambda: [(s, module_of(model, s)) for s in specs])
    _rescale_dropout(run, {"net.classifier.0": 0.5, "net.classifier.3": 0.5})
    assert model.net.classifier[3].p == pytest.approx(0.5 * 0.09 ** 0.5, rel=1e-3)  # feeds fc7
    assert model.net.classifier[0].p == pytest.approx(0.5)  # feeds fc6, unpruned


def test_l1_and_alternate_freezing_options(tmp_path):
    row = run(compose_cfg(["+experiment=lenet5", "data=mnist_sample", "dense.epochs=1", "prune.rounds=1",
                           "prune.epochs_per_round=1", "prune.regularization=l1", "prune.l1=1e-4", "prune.alternate=true",
                           "quantize=none", "encode=none", "write_row=false", "logger=none",
                           "trainer.enable_progress_bar=false"], tmp_path))
    assert "pruned/top1_err" in row["metrics"]
    assert row["rounds"][0]["top1_err_retrained"] <= 100


def test_retraining_weight_decay_is_its_own_setting(tmp_path, monkeypatch):
    """prune.weight_decay sets the retraining's weight decay alone; unset, retraining uses dense.weight_decay."""
    from experiments.pipeline.context import Run

    seen = []
    monkeypatch.setattr(Run, "fit", lambda self, stage, epochs, lr, wd, *a, **k: seen.append((stage, wd)))
    base = ["+experiment=lenet300", "data=mnist_sample", "dense.epochs=1", "dense.weight_decay=5e-4", "prune.rounds=1",
            "prune.epochs_per_round=1", "quantize=none", "encode=none", "write_row=false", "logger=none",
            "trainer.enable_progress_bar=false"]
    run(compose_cfg(base, tmp_path / "a"))
    run(compose_cfg(base + ["prune.weight_decay=1e-4"], tmp_path / "b"))
    assert [wd for stage, wd in seen if stage == "dense"] == [5e-4, 5e-4]
    assert [wd for stage, wd in seen if stage != "dense"] == [5e-4, 1e-4]
    with pytest.raises(Exception, match="prune.weight_decay"):
        run(compose_cfg(base + ["prune.weight_decay=-1"], tmp_path / "c"))


def test_distillation_loss_by_hand():
    """(1 - a) CE + a T^2 KL(p_teacher || p_student), softened by T; hand values in the comments."""
    import math

    import torch
    from torch import nn

    from experiments.classifier import LitClassifier

    student, teacher = nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        student.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))  # logits for x=(2, 0): (2, 0)
        teacher.weight.copy_(torch.tensor([[0.0, 0.0], [0.0, 1.0]]))  # logits for x=(2, 0): (0, 0)
    x, y = torch.tensor([[2.0, 0.0]]), torch.tensor([1])
    lit = LitClassifier(student, 2, teacher=teacher, distill=0.25, temperature=2.0)
    # CE(y=1 | logits (2, 0)) = log(1 + e^2); at T=2 the student is softmax(1, 0), the teacher (1/2, 1/2)
    ce = math.log(1 + math.e ** 2)
    ps = [math.e / (math.e + 1), 1 / (math.e + 1)]
    kl = sum(0.5 * math.log(0.5 / q) for q in ps)
    got = lit.distillation_loss(student(x), x, y).item()
    assert got == pytest.approx(0.75 * ce + 0.25 * 4 * kl, rel=1e-5)
    # the teacher is frozen and kept out of the module: not optimized, not in checkpoints
    assert not any(k.startswith("_teacher") or "teacher" in k for k in lit.state_dict())
    assert all(not p.requires_grad for p in teacher.parameters())
    assert {id(p) for p in lit.parameters()} == {id(p) for p in student.parameters()}
    # off (a = 0, or no teacher): plain cross-entropy, the papers' retraining
    assert LitClassifier(student, 2, teacher=teacher, distill=0.0)._teacher == []


def test_distillation_option_changes_only_the_retraining(tmp_path):
    """Same seed with and without the teacher: same dense weights, different retrained weights."""
    import torch

    base = ["+experiment=lenet300", "data=mnist_sample", "dense.epochs=1", "prune.rounds=1",
            "prune.epochs_per_round=1", "quantize=none", "encode=none", "write_row=false", "logger=none",
            "trainer.enable_progress_bar=false"]
    out = {}
    for a in (0.0, 0.5):
        row = run(compose_cfg([*base, f"prune.distill={a}"], tmp_path / str(a)))
        assert row["config"]["prune"]["distill"] == a and "pruned/top1_err" in row["metrics"]
        out[a] = {k: torch.load(row["artifacts"][f"{k}_checkpoint"]) for k in ("dense", "pruned")}
    assert torch.equal(out[0.0]["dense"]["ip1.weight"], out[0.5]["dense"]["ip1.weight"])
    assert not torch.equal(out[0.0]["pruned"]["ip1.weight"], out[0.5]["pruned"]["ip1.weight"])


def test_distillation_config_checks_and_grouping(tmp_path):
    from experiments.canonical import same_result_config
    from experiments.config import validate
    from experiments.errors import UserError

    with pytest.raises(UserError, match="prune.distill"):
        validate(compose_cfg(["+experiment=lenet300", "prune.distill=1.5"], tmp_path))
    on = {"enabled": True}
    old = {"prune": {**on, "rounds": 5}, "trainer": {}}
    new_off = {"prune": {**on, "rounds": 5, "distill": 0.0, "distill_temperature": 4.0}, "trainer": {}}
    new_on = {"prune": {**on, "rounds": 5, "distill": 0.5, "distill_temperature": 4.0}, "trainer": {}}
    assert same_result_config(old, new_off)  # rows from before the option group with "off"
    assert not same_result_config(old, new_on)
    # drop_dead_connections (default on) came later: rows without it kept their dead connections
    assert same_result_config(old, {**old, "prune": {**on, "rounds": 5, "drop_dead_connections": False}})
    assert not same_result_config(old, {**old, "prune": {**on, "rounds": 5, "drop_dead_connections": True}})
    q = {"enabled": True}
    assert same_result_config({"quantize": {**q, "distill": 0.0, "distill_temperature": 2.0}, "trainer": {}},
                              {"quantize": q, "trainer": {}})  # a temperature means nothing while distillation is off


def test_a_quantizer_progress_flag_does_not_split_a_recipe():
    from experiments.canonical import same_result_config

    sws = {"_target_": "compression.soft_sharing.SoftWeightSharing", "tau": 0.05}
    cfg = lambda **kw: {"quantize": {"enabled": True, "quantizer": {**sws, **kw}}, "trainer": {}}  # noqa: E731
    assert same_result_config(cfg(progress=True), cfg(progress=False))  # printing per epoch changes no result
    assert not same_result_config(cfg(progress=True), cfg(progress=True, tau=0.1))


def test_quantize_distillation_changes_only_the_centroid_fine_tuning(tmp_path):
    """quantize.distill: same pruned weights and initial codebooks, different fine-tuned codebooks."""
    base = ["+experiment=lenet300", "data=mnist_sample", "dense.epochs=1", "prune.rounds=1",
            "prune.epochs_per_round=0", "quantize.epochs=1", "quantize.lr=1e-3", "encode=none",
            "write_row=false", "logger=none", "trainer.enable_progress_bar=false"]
    rows = {a: run(compose_cfg([*base, f"quantize.distill={a}"], tmp_path / str(a))) for a in (0.0, 0.5)}
    assert rows[0.0]["metrics"]["pruned/top1_err"] == rows[0.5]["metrics"]["pruned/top1_err"]
    init = [[e["codebook_init"] for e in r["layers"]] for r in rows.values()]
    tuned = [[e["codebook"] for e in r["layers"]] for r in rows.values()]
    assert init[0] == init[1]
    assert tuned[0] != tuned[1]


def test_pruning_drops_dead_connections_and_keeps_outputs(tmp_path):
    """LWC 3.4 in the pipeline: no stored weight leads into a unit without outgoing connections."""
    import torch

    base = ["+experiment=lenet300", "data=mnist_sample", "dense.epochs=1", "prune.rounds=1",
            "prune.epochs_per_round=0", "prune.density={ip1: 0.08, ip2: 0.09, ip3: 0.05}",
            "quantize=none", "encode=none", "write_row=false", "logger=none", "trainer.enable_progress_bar=false"]
    rows = {d: run(compose_cfg([*base, f"prune.drop_dead_connections={d}"], tmp_path / str(d)))
            for d in (False, True)}
    kept, dropped = (torch.load(r["artifacts"]["pruned_checkpoint"]) for r in rows.values())
    n = {e["name"]: e.get("dead_connections_dropped", 0) for e in rows[True]["layers"]}
    assert n["ip1"] + n["ip2"] > 0  # ip3 at 5% leaves ip2 units without outgoing connections
    for name, nxt in (("ip1", "ip2"), ("ip2", "ip3")):
        w, w_next = dropped[f"{name}.weight"], dropped[f"{nxt}.weight"]
        dead_out = ~(w_next != 0).any(dim=0)
        assert not (w[dead_out] != 0).any()
        before = int((kept[f"{name}.weight"] != 0).sum())
        assert before - int((w != 0).sum()) == n[name]
    # the dropped connections could not reach the output: the same pruned error
    assert rows[True]["metrics"]["pruned/top1_err"] == rows[False]["metrics"]["pruned/top1_err"]


def test_row_keeps_which_test_examples_each_stage_got_right(lenet300_row):
    """The bitsets the paired statistics read agree with the stages' errors, example for example."""
    from experiments.analysis.stats import correct_of, stage_delta

    row, _, _ = lenet300_row
    for stage in ("dense", "pruned", "quantized_init", "quantized", "compressed"):
        c = correct_of(row, stage)
        assert c is not None and c.size == 1000  # the sample's fixed 1,000 test digits
        assert 100.0 * (1 - c.mean()) == pytest.approx(row["metrics"][f"{stage}/top1_err"], abs=1e-3)
    d = stage_delta(row)
    assert d.delta == pytest.approx(row["metrics"]["compressed/top1_err"] - row["metrics"]["dense/top1_err"], abs=1e-3)
