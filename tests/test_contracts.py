"""Contract tests: plug-ins defined here, composed through the real Hydra configs, run through every stage.

Each goes dense -> prune -> quantize -> encode -> decode -> evaluate and writes a row, with no change
to the pipeline: a residual CNN with BatchNorm (neuron pruning must leave it alone), a one-layer LSTM
classifier over image rows (recurrent tensors are specs like any other), and a toy pruning criterion.
"""

import json

import pytest
import torch
from torch import nn

from compression.architecture import decode_model
from compression.neurons import drop_dead_connections, links
from compression.prune import Criterion, magnitude_prune
from compression.specs import LayerSpec, specs_of
from conftest import compose_cfg, rows_in
from experiments.evaluate import test_errors as decoded_test_errors
from experiments.pipeline import run

QUICK = ["data=mnist_sample", "dense.epochs=1", "prune.rounds=2", "prune.epochs_per_round=1", "quantize.epochs=1",
         "trainer.limit_train_batches=8", "logger=none", "trainer.enable_progress_bar=false"]


class TinyResNet(nn.Module):
    """conv -> BN -> ReLU -> [conv -> BN -> ReLU -> conv -> BN] + identity -> ReLU -> pool -> fc."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, width: int = 8):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1)
        self.bn0 = nn.BatchNorm2d(width)
        self.conv_a = nn.Conv2d(width, width, 3, padding=1)
        self.bn_a = nn.BatchNorm2d(width)
        self.conv_b = nn.Conv2d(width, width, 3, padding=1)
        self.bn_b = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, num_classes)

    def layer_specs(self):
        # BatchNorm between every pair (via=None), and the stem's output also feeds the residual sum
        return [LayerSpec("stem", "stem", kind="conv", next="conv_a", via=None, sole_consumer=False),
                LayerSpec("conv_a", "conv_a", kind="conv", next="conv_b", via=None, sole_consumer=True),
                LayerSpec("conv_b", "conv_b", kind="conv", next="fc", via=None, sole_consumer=False),
                LayerSpec("fc", "fc", kind="fc")]

    def forward(self, x):
        h = torch.relu(self.bn0(self.stem(x)))
        r = self.bn_b(self.conv_b(torch.relu(self.bn_a(self.conv_a(h)))))
        h = torch.relu(h + r)
        return self.fc(h.mean(dim=(2, 3)))


class RowLSTM(nn.Module):
    """An LSTM reading an image as 28 steps of 28 pixels, then an fc classifier on its last state."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, hidden: int = 32):
        super().__init__()
        self.lstm = nn.LSTM(in_channels * image_size, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def layer_specs(self):
        return [LayerSpec("lstm_ih", "lstm", "weight_ih_l0", kind="recurrent"),
                LayerSpec("lstm_hh", "lstm", "weight_hh_l0", kind="recurrent"),
                LayerSpec("fc", "fc", kind="fc")]

    def forward(self, x):
        b, c, h, w = x.shape
        out, _ = self.lstm(x.permute(0, 2, 1, 3).reshape(b, h, c * w))
        return self.fc(out[:, -1])


class RandomScores(Criterion):
    """A toy criterion: keeps connections at random (seeded), to show a criterion is one class."""

    def __init__(self, seed: int = 0):
        self.gen = torch.Generator().manual_seed(seed)

    def scores(self, module, name):
        return torch.rand(getattr(module, name).shape, generator=self.gen)


def _run(tmp_path, overrides):
    row = run(compose_cfg([*QUICK, *overrides], tmp_path))
    (path,) = rows_in(tmp_path)
    assert json.loads(path.read_text())["run_id"] == row["run_id"]
    return row


def _decoded_error(row):
    from experiments.data import MNISTSampleDataModule

    dm = MNISTSampleDataModule()
    dm.setup()
    return decoded_test_errors(decode_model(row["artifacts"]["compressed_file"]), dm.test_dataloader(), 10)["top1_err"]


def test_residual_cnn_with_batchnorm_through_every_stage(tmp_path):
    row = _run(tmp_path, ["model._target_=test_contracts.TinyResNet", "model.name=tinyres", "prune=density",
                          "+prune.density.conv=0.5", "+prune.density.fc=0.5", "quantize=kmeans", "encode=huffman"])
    assert [l["name"] for l in row["layers"]] == ["stem", "conv_a", "conv_b", "fc"]
    # neuron pruning is on by default, and the specs prove no link safe: it leaves every layer alone
    assert row["config"]["prune"]["drop_dead_connections"] is True
    assert row["neuron_pruning"]["links"] == []
    assert set(row["neuron_pruning"]["skipped"]) == {"stem", "conv_a", "conv_b", "fc"}
    assert "sole_consumer=False" in row["neuron_pruning"]["skipped"]["stem"]
    assert all("dead_connections_dropped" not in l for l in row["layers"])
    assert row["model"] == "tinyres" and row["size"]["file_bytes"] > 0
    assert _decoded_error(row) == pytest.approx(row["metrics"]["compressed/top1_err"], abs=1e-6)


def test_neuron_pruning_never_changes_a_residual_networks_outputs():
    """Default settings on a pruned residual net: outputs unchanged; what lying specs would have done."""
    torch.manual_seed(0)
    m = TinyResNet().eval()
    for mod in (m.stem, m.conv_a, m.conv_b, m.fc):
        magnitude_prune(mod, "weight", density=0.3)
    with torch.no_grad():
        m.conv_b.weight_orig[:, :3] = 0  # conv_a units 0-2 feed nothing in conv_b ...
        m.bn_a.bias[:3] = 1.0            # ... but their BN outputs a constant that does reach the output
    x = torch.randn(4, 1, 28, 28)
    ref = m(x)
    safe, _ = links(m, specs_of(m))
    assert safe == [] and drop_dead_connections(m, safe) == {}
    assert torch.equal(m(x), ref)
    # had the specs claimed conv_a -> conv_b through a plain ReLU, dropping would be exact here too
    # (dead-out units), but across the residual sum (stem) it would not: the pipeline checks outputs
    liar = [LayerSpec("stem", "stem", kind="conv", next="conv_a", via="relu", sole_consumer=True),
            LayerSpec("conv_a", "conv_a", kind="conv")]
    with torch.no_grad():
        m.conv_a.weight_orig[:, 5] = 0  # stem unit 5 feeds nothing in conv_a, but does feed the residual sum
    ref = m(x)
    bad, _ = links(m, liar)
    drop_dead_connections(m, bad)
    assert not torch.allclose(m(x), ref, atol=1e-4)


def test_lying_specs_are_caught_by_the_pipeline(tmp_path, monkeypatch):
    monkeypatch.setattr(TinyResNet, "layer_specs", lambda self: [
        LayerSpec("stem", "stem", kind="conv", next="conv_a", via="relu", sole_consumer=True),
        LayerSpec("conv_a", "conv_a", kind="conv", next="conv_b", via="relu", sole_consumer=True),
        LayerSpec("conv_b", "conv_b", kind="conv"), LayerSpec("fc", "fc", kind="fc")])
    # conv_a keeps 3 of its 576 weights: most stem units then feed nothing in conv_a, but still the residual sum
    cfg = compose_cfg([*QUICK, "model._target_=test_contracts.TinyResNet", "model.name=tinyres", "prune=density",
                       "+prune.density.conv_a=0.005", "+prune.density.conv_b=0.5", "prune.rounds=1",
                       "prune.epochs_per_round=0"], tmp_path)
    with pytest.raises(RuntimeError, match="dropping dead connections changed the outputs"):
        run(cfg)


def test_lstm_classifier_through_every_stage(tmp_path):
    row = _run(tmp_path, ["model._target_=test_contracts.RowLSTM", "model.name=rowlstm", "prune=density",
                          "+prune.density.recurrent=0.3", "+prune.density.fc=0.5", "quantize=kmeans",
                          "+quantize.bits.recurrent=5", "encode=huffman", "+encode.index_bits.recurrent=5",
                          "prune.density_schedule=cubic"])
    # Zhu & Gupta's cubic schedule over 2 rounds: 1 - 0.7 * (1 - 0.5^3) = 0.3875 first (geometric: 0.548)
    assert row["rounds"][0]["layer_density"]["lstm_hh"] == pytest.approx(0.3875, abs=1e-3)
    by = {l["name"]: l for l in row["layers"]}
    assert by["lstm_hh"]["kind"] == "recurrent" and by["lstm_hh"]["weights"] == 4 * 32 * 32
    assert by["lstm_hh"]["nonzeros"] == round(0.3 * 4 * 32 * 32) and by["lstm_hh"]["weight_bits_pq"] == 5
    assert row["neuron_pruning"]["links"] == []  # no spec names a consumer: neuron pruning leaves the LSTM alone
    from compression.container import read_layers

    layers, _, meta, _ = read_layers(row["artifacts"]["compressed_file"])
    assert {(l.key, l.kind) for l in layers} >= {("lstm.weight_hh_l0", "recurrent"), ("lstm.weight_ih_l0", "recurrent")}
    assert meta["model"]["_target_"] == "test_contracts.RowLSTM"
    assert _decoded_error(row) == pytest.approx(row["metrics"]["compressed/top1_err"], abs=1e-6)


def test_a_criterion_is_one_class(tmp_path):
    row = _run(tmp_path, ["+experiment=lenet300", "prune.criterion._target_=test_contracts.RandomScores",
                          "+prune.criterion.seed=3"])
    assert row["config"]["prune"]["criterion"] == {"_target_": "test_contracts.RandomScores", "seed": 3}
    want = {"ip1": 0.08, "ip2": 0.09, "ip3": 0.26}
    dropped = row["rounds"][-1].get("dead_connections_dropped", {})
    for l in row["layers"]:  # the density targets hold for any criterion
        assert l["nonzeros"] == round(want[l["name"]] * l["weights"]) - dropped.get(l["name"], 0)
    assert row["time_s"]["prune_criterion"] >= 0
    assert _decoded_error(row) == pytest.approx(row["metrics"]["compressed/top1_err"], abs=1e-6)
    from experiments.analysis.rows import variant

    assert "prune.criterion=RandomScores" in variant(row).split(", ")
