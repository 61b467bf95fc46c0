"""Soft weight-sharing (compression/soft_sharing.py): the prior against scipy, merging, the per-layer
quantizer, retraining, and one run end to end into a file that decodes to the evaluated model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from compression.soft_sharing import (GaussianMixturePrior, SoftWeightSharing, kl_gauss, merge_components,
                                      most_responsible)
from compression.specs import LayerSpec


def test_prior_is_the_mixture_density_and_the_gamma_hyper_priors():
    torch.manual_seed(0)
    prior = GaussianMixturePrior(5, 0.9, torch.tensor([-0.5, -0.1, 0.2, 0.6]), 0.3, (5.0, 2.0), (3.0, 0.5))
    with torch.no_grad():
        prior.log_precisions.copy_(torch.tensor([2.0, 1.0, 0.5, 3.0, 1.5], dtype=torch.float64))
        prior.rhos.copy_(torch.tensor([0.1, -0.3, 0.7, 0.0], dtype=torch.float64))
    w = [torch.randn(7, 3, dtype=torch.float64), torch.randn(11, dtype=torch.float64)]
    means, logp, log_pis = (t.detach().numpy() for t in prior.mixture())
    assert math.isclose(np.exp(log_pis).sum(), 1.0) and math.isclose(np.exp(log_pis[0]), 0.9) and means[0] == 0
    x = np.concatenate([t.numpy().ravel() for t in w])[:, None]
    dens = (np.exp(log_pis) * stats.norm.pdf(x, means, np.exp(-0.5 * logp))).sum(1)
    lam = np.exp(logp)
    # -log Gamma(lam; a, b) up to its constant, in the log-precision variable: (1 - a) log lam + b lam
    hyper = sum((1 - a) * np.log(l) + b * l for (a, b), l in zip([(5.0, 2.0)] + [(3.0, 0.5)] * 4, lam))
    assert float(prior.neg_log_prob(w)) == pytest.approx(-np.log(dens).sum() + hyper, rel=1e-9)
    # a float32 network's weights: the prior per weight in float32, the sum in float64
    assert float(prior.neg_log_prob([t.float() for t in w])) == pytest.approx(-np.log(dens).sum() + hyper, rel=1e-6)


def test_the_priors_gradient_matches_finite_differences():
    """Weights, means, log-precisions and mixing logits all get the gradient of -log p: autograd
    against central differences, every coordinate."""
    torch.manual_seed(1)
    prior = GaussianMixturePrior(4, 0.8, torch.tensor([-0.4, 0.1, 0.5]), 0.3)
    with torch.no_grad():
        prior.log_precisions.copy_(torch.tensor([2.0, 1.5, 1.0, 2.5], dtype=torch.float64))
        prior.rhos.copy_(torch.tensor([0.2, -0.1, 0.3], dtype=torch.float64))
    w = (torch.randn(9, dtype=torch.float64) * 0.5).requires_grad_()
    tensors = [w, prior.means, prior.log_precisions, prior.rhos]
    grads = torch.autograd.grad(prior.neg_log_prob([w]), tensors)
    eps = 1e-6
    for t, g in zip(tensors, grads):
        for i in range(t.numel()):
            with torch.no_grad():
                t.view(-1)[i] += eps
                up = float(prior.neg_log_prob([w]))
                t.view(-1)[i] -= 2 * eps
                down = float(prior.neg_log_prob([w]))
                t.view(-1)[i] += eps
            assert float(g.view(-1)[i]) == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-6)


def test_merging_joins_close_components_and_puts_one_at_zero():
    means = np.array([0.0, 0.003, 0.5, 0.5000001, -0.4])
    logp = np.array([6.0, 6.0, 4.0, 4.0, 4.0])
    log_pis = np.log(np.array([0.9, 0.02, 0.03, 0.03, 0.02]))
    assert kl_gauss(0.5, 4.0, 0.5, 4.0) == pytest.approx(0.0)
    m, lp, lpi = merge_components(means, logp, log_pis, merge_kl=1e-2)  # 0 and 0.003: KL 1.8e-3
    assert m.size == 3 and m[0] == 0.0 and np.exp(lpi).sum() == pytest.approx(1.0)
    assert sorted(np.round(m, 4)) == [-0.4, 0.0, 0.5]
    assert np.exp(lpi[np.argmin(np.abs(m - 0.5))]) == pytest.approx(0.06)
    # without merging nothing joins, and still the component nearest zero is exactly zero
    m2, _, _ = merge_components(means + 0.01, logp, log_pis, merge_kl=0.0)
    assert m2.size == 5 and m2[0] == 0.0
    assert list(most_responsible(np.array([0.49, -0.41, 0.001]), m, lp, lpi)) == [
        int(np.argmin(np.abs(m - 0.5))), int(np.argmin(np.abs(m + 0.4))), 0]


def test_the_quantizer_stores_component_means_and_prunes_the_zero_component():
    q = SoftWeightSharing()
    with pytest.raises(RuntimeError, match="prepare"):
        q(torch.zeros(3), 2)
    q.mixture = (np.array([0.0, -0.3, 0.4]), np.array([8.0, 5.0, 5.0]), np.log(np.array([0.8, 0.1, 0.1])))
    w = torch.tensor([[0.01, -0.29, 0.42], [0.35, -0.002, -0.33]])
    cb, labels, keep = q(w, 2)
    assert cb.tolist() == pytest.approx([0.0, -0.3, 0.4, 0.0]) and cb.dtype == torch.float32
    assert labels.tolist() == [[0, 1, 2], [2, 0, 1]] and keep.tolist() == [[False, True, True], [True, False, True]]
    mask = torch.tensor([[True, True, False], [True, True, True]])  # a pruned weight stays pruned
    _, labels, keep = q(w, 2, mask=mask)
    assert labels[0, 2] == 0 and not keep[0, 2]
    with pytest.raises(ValueError, match="raise quantize.bits to 2"):
        q(w, 1)
    with pytest.raises(ValueError, match="storage-only"):
        q.prepare(nn.Linear(2, 2), [], None)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 32), nn.Linear(32, 2)

    def layer_specs(self):
        return [LayerSpec("fc1", "fc1", kind="fc"), LayerSpec("fc2", "fc2", kind="fc")]

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def test_retraining_under_the_prior_pulls_weights_to_zero_and_keeps_the_task():
    torch.manual_seed(0)
    x = torch.randn(512, 8)
    y = (x[:, 0] + x[:, 1] > 0).long()
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 512, 16)]
    net = _Net()
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(30):
        for xb, yb in batches:
            opt.zero_grad()
            nn.functional.cross_entropy(net(xb), yb).backward()
            opt.step()
    q = SoftWeightSharing(components=5, pi_zero=0.9, tau=5.0, epochs=15, lr=2e-3, lr_means=1e-3, lr_precisions=1e-2,
                          lr_mixing=1e-2, merge_kl=1e-2)
    q.prepare(net, net.layer_specs(), batches)  # a list: iterated once per epoch
    assert len(q.history) == 15 and q.history[-1]["density"] < 0.5
    quantized = []
    for spec in net.layer_specs():
        w = getattr(net, spec.module).weight
        cb, labels, keep = q(w, 3)
        assert torch.equal(labels == 0, ~keep) and cb[0] == 0
        quantized.append(cb[labels] * keep)
        with torch.no_grad():
            w.copy_(quantized[-1])
    density = sum(float((t != 0).sum()) for t in quantized) / sum(t.numel() for t in quantized)
    assert density < 0.5  # most weights fell to the zero component
    assert sum(len(torch.unique(t)) for t in quantized) <= 2 * 5  # at most the components' means per layer
    acc = float((net(x).argmax(1) == y).float().mean())
    assert acc > 0.95  # 1.0 before; the weights sit near their means, so taking the means costs little


def test_end_to_end_into_a_file_that_decodes_to_the_evaluated_model(tmp_path):
    from compression.architecture import decode_model
    from conftest import compose_cfg
    from experiments.data import MNISTSampleDataModule
    from experiments.evaluate import test_errors as decoded_test_errors
    from experiments.pipeline import run

    row = run(compose_cfg(["+experiment=lenet300", "data=mnist_sample", "prune=none", "quantize/quantizer=soft_sharing",
                           "quantize.quantizer.epochs=2", "quantize.quantizer.batches=4", "quantize.epochs=0", "dense.epochs=1",
                           "quantize.quantizer.keep_best=true",
                           "trainer.limit_train_batches=8", "logger=none", "trainer.enable_progress_bar=false"],
                          tmp_path))
    assert row["config"]["quantize"]["quantizer"]["_target_"].endswith("SoftWeightSharing")
    layers = {l["name"]: l for l in row["layers"]}
    assert all(l["nonzeros"] < l["weights"] for l in layers.values())  # the zero component pruned each layer
    assert len(row["quantizer"]["history"]) == 2 and row["quantizer"]["components"]["mean"][0] == 0.0
    # keep_best: each epoch's post-processed model measured on the validation split, the best epoch kept
    hard = [h["val_err_hard"] for h in row["quantizer"]["history"]]
    assert row["quantizer"]["best_epoch"] == 1 + hard.index(min(hard))
    dm = MNISTSampleDataModule()
    dm.setup()
    err = decoded_test_errors(decode_model(row["artifacts"]["compressed_file"]), dm.test_dataloader(), 10)["top1_err"]
    assert err == pytest.approx(row["metrics"]["compressed/top1_err"], abs=1e-6)


def test_tau_is_per_training_example_as_in_eq5():
    """Eq. 5 weighs the prior against the whole data set's likelihood: a minibatch's mean cross-entropy
    gets tau / N of the prior, so doubling N at the same tau halves the prior's pull, and doubling both
    changes nothing."""
    torch.manual_seed(0)
    x = torch.randn(64, 8)
    y = (x[:, 0] > 0).long()
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]

    def retrained(**kw):
        torch.manual_seed(1)
        net = _Net()
        q = SoftWeightSharing(components=3, pi_zero=0.9, epochs=2, **kw)
        q.prepare(net, net.layer_specs(), batches)
        return q, torch.cat([p.detach().flatten() for p in net.parameters()])

    q, counted = retrained(tau=50.0)
    assert q.n_train == 64 and q.report()["dataset_size"] == 64  # N counted from the batches
    _, same = retrained(tau=100.0, dataset_size=128)
    _, weaker = retrained(tau=50.0, dataset_size=128)
    assert torch.allclose(counted, same, atol=1e-6)
    assert not torch.allclose(counted, weaker, atol=1e-4)


def test_keep_best_ends_on_the_epoch_whose_post_processed_model_validates_best():
    torch.manual_seed(0)
    x = torch.randn(64, 8)
    y = (x[:, 0] > 0).long()
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    seen = []

    def validate(model):  # what it is shown: every weight at one of the merged components' means
        values = torch.cat([model.fc1.weight.detach().flatten(), model.fc2.weight.detach().flatten()])
        seen.append(len(torch.unique(values)))
        return [9.0, 5.0, 9.0, 3.0, 9.0, 4.0][len(seen) - 1]  # as trained, then post-processed, per epoch

    def retrained(epochs, **kw):
        torch.manual_seed(1)
        net = _Net()
        q = SoftWeightSharing(components=4, pi_zero=0.9, tau=50.0, epochs=epochs, lr=1e-2, **kw)
        q.prepare(net, net.layer_specs(), batches, **({"validate": validate} if kw.get("keep_best") else {}))
        return q, [p.detach().clone() for p in net.parameters()]

    q, kept = retrained(3, keep_best=True)
    assert len(seen) == 6 and all(n <= 4 for n in seen[1::2]) and all(n > 4 for n in seen[::2])
    assert [h["val_err_hard"] for h in q.history] == [5.0, 3.0, 4.0] and q.report()["best_epoch"] == 2
    assert [h["val_err"] for h in q.history] == [9.0] * 3
    _, after_two = retrained(2)  # measuring does not move the weights: epoch 2's are what training reached
    assert all(torch.equal(a, b) for a, b in zip(kept, after_two))
    with pytest.raises(ValueError, match="validation"):
        SoftWeightSharing(keep_best=True).prepare(_Net(), _Net().layer_specs(), batches)
