"""OBD and OBS against exact references: the Hessian diagonal of a tiny network, OBS on a quadratic."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from compression.criteria.magnitude import Magnitude
from compression.criteria.obd import OBD, gauss_newton_diagonal, hutchinson_diagonal
from compression.criteria.obs import OBS, greedy_costs, layer_hessians, select, solve_survivors
from compression.prune import keep_count, magnitude_prune
from compression.specs import LayerSpec


class TinyNet(nn.Module):
    def __init__(self, conv=True):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3) if conv else None
        self.fc1 = nn.Linear(2 * 4 * 4 if conv else 12, 5)
        self.fc2 = nn.Linear(5, 3)

    def layer_specs(self):
        head = [LayerSpec("conv", "conv", kind="conv")] if self.conv is not None else []
        return head + [LayerSpec("fc1", "fc1", kind="fc"), LayerSpec("fc2", "fc2", kind="fc")]

    def forward(self, x):
        if self.conv is not None:
            x = torch.relu(self.conv(x))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def _data(conv=True, n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 6, 6, generator=g) if conv else torch.randn(n, 12, generator=g)
    return x, torch.randint(0, 3, (n,), generator=g)


def _hessian_diagonals(model, x, y):
    """The exact diagonal of d^2 (mean cross-entropy) / dw^2 per layer, by torch.autograd.functional.hessian."""
    from torch.func import functional_call

    out = {}
    for s in model.layer_specs():
        name = f"{s.module}.weight"
        w0 = dict(model.named_parameters())[name].detach()

        def loss(w):
            return nn.functional.cross_entropy(functional_call(model, {name: w}, (x,)), y)

        H = torch.autograd.functional.hessian(loss, w0)
        out[s.name] = torch.diagonal(H.reshape(w0.numel(), w0.numel())).reshape(w0.shape)
    return out


@pytest.mark.parametrize("conv", [False, True])
def test_obd_gauss_newton_diagonal_is_the_hessian_diagonal_of_a_relu_net(conv):
    torch.manual_seed(1)
    model = TinyNet(conv).double()
    x, y = _data(conv)
    want = _hessian_diagonals(model, x.double(), y)
    got = gauss_newton_diagonal(model, model.layer_specs(), iter([(x.double(), y)]), 1)
    for name in want:  # a ReLU network is piecewise linear in every single weight: no second-order activation term
        assert torch.allclose(got[name], want[name], rtol=1e-6, atol=1e-10), name


def test_hutchinson_estimates_the_same_diagonal():
    """Unbiased, with the noise theory gives: each entry within 5 standard errors sqrt(sum_j!=q H_qj^2 / S)."""
    from torch.func import functional_call

    torch.manual_seed(2)
    model = TinyNet(conv=False).double()
    x, y = _data(conv=False)
    names = [f"{s.module}.weight" for s in model.layer_specs()]
    params = dict(model.named_parameters())
    shapes = [params[n].shape for n in names]
    flat0 = torch.cat([params[n].detach().flatten() for n in names])

    def loss(flat):
        ws, i = {}, 0
        for n, sh in zip(names, shapes):
            ws[n] = flat[i:i + sh.numel()].view(sh)
            i += sh.numel()
        return nn.functional.cross_entropy(functional_call(model, ws, (x.double(),)), y)

    H = torch.autograd.functional.hessian(loss, flat0)
    S = 2000
    got = hutchinson_diagonal(model, model.layer_specs(), itertools.repeat((x.double(), y)), 1, samples=S)
    est = torch.cat([got[s.name].flatten() for s in model.layer_specs()])
    se = ((H ** 2).sum(1) - H.diagonal() ** 2).clamp_min(0).div(S).sqrt()
    assert torch.all((est - H.diagonal()).abs() <= 5 * se + 1e-12)
    assert float(torch.corrcoef(torch.stack([est, H.diagonal()]))[0, 1]) > 0.95


def test_obs_on_a_quadratic_matches_brute_force():
    """A linear least-squares layer: removing one weight with the OBS update gives the smallest possible loss
    increase over the remaining weights, and the saliency predicts that increase."""
    g = np.random.default_rng(0)
    d, n = 6, 50
    X = torch.tensor(g.normal(size=(d, n)) + 0.3 * g.normal(size=(1, n)))  # correlated inputs
    w = torch.tensor(g.normal(size=(1, d)))
    H = 2 * X @ X.T / n

    def loss(v):  # reconstruction error of the layer's outputs on its inputs, Hessian = H
        return float(((v - w) @ X).pow(2).sum() / n)

    order, cost = greedy_costs(w, torch.linalg.inv(H), torch.ones(1, d, dtype=torch.bool))
    q = int(order[0, 0])
    removed = torch.zeros(1, d, dtype=torch.bool)
    removed[0, q] = True
    v = solve_survivors(w, H, removed)
    assert v[0, q] == 0
    # brute force: the best loss with w_q = 0, over every other weight (least squares on the rest)
    keep = [i for i in range(d) if i != q]
    target = (w @ X).numpy().ravel()
    best, *_ = np.linalg.lstsq(X[keep].T.numpy(), target, rcond=None)
    v_best = torch.zeros(1, d, dtype=X.dtype)
    v_best[0, keep] = torch.tensor(best)
    assert loss(v) == pytest.approx(loss(v_best), rel=1e-9)
    assert float(cost[0, 0]) == pytest.approx(loss(v), rel=1e-9)  # L_q = w_q^2 / (2 [H^-1]_qq)
    # and no other single weight is cheaper to remove
    for j in range(d):
        r = torch.zeros(1, d, dtype=torch.bool)
        r[0, j] = True
        assert loss(solve_survivors(w, H, r)) >= loss(v) - 1e-12


def test_greedy_steps_reach_the_joint_optimum_and_selection_meets_the_budget():
    g = torch.Generator().manual_seed(3)
    d, r = 8, 5
    X = torch.randn(d, 40, generator=g, dtype=torch.float64)
    H = 2 * X @ X.T / 40 + 0.01 * torch.eye(d, dtype=torch.float64)
    W = torch.randn(r, d, generator=g, dtype=torch.float64)
    alive = torch.ones(r, d, dtype=torch.bool)
    alive[0, :3] = False  # an earlier round's pruning: dead inputs come first, at no cost
    W[~alive] = 0
    order, cost = greedy_costs(W, torch.linalg.inv(H), alive, block=2)
    assert set(order[0, :3].tolist()) == {0, 1, 2} and torch.all(cost[0, :3] == 0)
    counts = select(cost, alive, keep=12)
    assert int(counts.sum()) == r * d - 12 and int(counts[0]) >= 3


@pytest.mark.parametrize("criterion", [Magnitude(), OBD(batches=2), OBS(batches=2, damp=0.01, block=3)])
@pytest.mark.parametrize("density", [0.5, 0.1])
def test_every_criterion_lands_exactly_on_the_target(criterion, density):
    torch.manual_seed(4)
    model = TinyNet()
    specs = model.layer_specs()
    batches = [_data(seed=i) for i in range(2)]
    for step in (0.7, density):  # two rounds, composing with the first round's masks
        criterion.prepare(model, specs, iter(batches))
        for s in specs:
            m = model.get_submodule(s.module)
            keep = keep_count(m, "weight", density=step)
            criterion.prune(m, "weight", keep)
            assert int((m.weight != 0).sum()) == keep == round(step * m.weight.numel())


def test_obs_changes_the_survivors_and_lowers_the_reconstruction_error():
    torch.manual_seed(5)
    model = TinyNet(conv=False)
    x, y = _data(conv=False, n=64)
    ref = model.fc1(x).detach()
    specs = model.layer_specs()
    mag = TinyNet(conv=False)
    mag.load_state_dict(model.state_dict())
    magnitude_prune(mag.fc1, "weight", density=0.3)
    obs = OBS(batches=1, damp=1e-4)
    obs.prepare(model, specs, iter([(x, y)]))
    obs.prune(model.fc1, "weight", keep_count(model.fc1, "weight", density=0.3))
    err_obs = float((model.fc1(x) - ref).pow(2).mean())
    err_mag = float((mag.fc1(x) - ref).pow(2).mean())
    assert err_obs < err_mag  # the compensating update recovers much of what the removal costs
    H = layer_hessians(model, specs[:1], iter([(x, y)]), 1)["fc1"]
    assert torch.allclose(H, 2 * x.double().T @ x.double() / 64)


def test_criteria_refuse_what_they_cannot_do():
    with pytest.raises(ValueError, match="estimator"):
        OBD(estimator="exact")
    with pytest.raises(ValueError, match="storage-only"):
        OBS().prepare(TinyNet(), TinyNet().layer_specs(), None)
    lstm = nn.Module()
    lstm.rnn = nn.LSTM(3, 4)
    with pytest.raises(ValueError, match="weight"):
        layer_hessians(lstm, [LayerSpec("hh", "rnn", "weight_hh_l0", kind="recurrent")], iter([]), 1)


class SmallMLP(nn.Module):
    """784-32-10: small enough for OBS's full greedy pass in a test."""

    def __init__(self, num_classes=10, in_channels=1, image_size=28):
        super().__init__()
        self.ip1 = nn.Linear(in_channels * image_size ** 2, 32)
        self.ip2 = nn.Linear(32, num_classes)

    def layer_specs(self):
        return [LayerSpec("ip1", "ip1", kind="fc", next="ip2", via="relu", sole_consumer=True),
                LayerSpec("ip2", "ip2", kind="fc")]

    def forward(self, x):
        return self.ip2(torch.relu(self.ip1(x.flatten(1))))


@pytest.mark.parametrize("name", ["obd", "obs"])
def test_each_criterion_end_to_end_into_a_file_that_decodes_to_the_evaluated_model(name, tmp_path):
    from compression.architecture import decode_model
    from conftest import compose_cfg, rows_in
    from experiments.data import MNISTSampleDataModule
    from experiments.evaluate import test_errors as decoded_test_errors
    from experiments.pipeline import run

    row = run(compose_cfg(["data=mnist_sample", "model._target_=test_criteria.SmallMLP", "model.name=small",
                           "prune=density", "+prune.density.ip1=0.1", "+prune.density.ip2=0.3",
                           f"prune/criterion={name}", "prune.criterion.batches=2", "quantize=kmeans", "encode=huffman",
                           "dense.epochs=1", "prune.rounds=2", "prune.epochs_per_round=1", "quantize.epochs=1",
                           "trainer.limit_train_batches=8", "logger=none", "trainer.enable_progress_bar=false"],
                          tmp_path))
    assert rows_in(tmp_path) and row["config"]["prune"]["criterion"]["_target_"].endswith(name.upper())
    dropped = row["rounds"][-1].get("dead_connections_dropped", {})
    for l, d in zip(row["layers"], (0.1, 0.3)):  # the density targets, whatever the criterion
        assert l["nonzeros"] == round(d * l["weights"]) - dropped.get(l["name"], 0)
    assert all(r["criterion_s"] > 0 for r in row["rounds"]) and row["time_s"]["prune_criterion"] > 0
    dm = MNISTSampleDataModule()
    dm.setup()
    err = decoded_test_errors(decode_model(row["artifacts"]["compressed_file"]), dm.test_dataloader(), 10)["top1_err"]
    assert err == pytest.approx(row["metrics"]["compressed/top1_err"], abs=1e-6)
