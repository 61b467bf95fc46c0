import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from compression.quantize import (apply_weight_sharing, codebook_and_labels, init_centroids, kmeans_1d,
                                  share_weights, sharing_rate)


def test_linear_init_hand():
    # evenly spaced between min -1 and max 2 with k = 4: [-1, 0, 1, 2]
    xs = np.array([-1.0, 0.3, 0.4, 2.0])
    assert init_centroids(xs, 4, "linear", np.random.default_rng(0)).tolist() == [-1.0, 0.0, 1.0, 2.0]


def test_density_init_follows_cdf():
    # 90% of the mass near 0, 10% near 10: quantiles at 0.125, 0.375, 0.625, 0.875 all land in the big mode
    xs = np.sort(np.concatenate([np.linspace(-0.1, 0.1, 90), np.linspace(9.9, 10.1, 10)]))
    c = init_centroids(xs, 4, "density", np.random.default_rng(0))
    assert (np.abs(c) < 0.2).all()
    # linear init instead keeps the rare large weights represented (DC Fig. 4)
    lin = init_centroids(xs, 4, "linear", np.random.default_rng(0))
    assert lin.max() == pytest.approx(10.1)


def test_random_init_draws_actual_weights():
    xs = np.sort(np.array([0.5, 1.5, 2.5, 3.5, 4.5]))
    c = init_centroids(xs, 3, "random", np.random.default_rng(0))
    assert set(c.tolist()) <= set(xs.tolist()) and len(set(c.tolist())) == 3


def test_kmeans_hand_data():
    # two well separated groups: centroids are their means 1.0 and 10.0
    x = np.array([0.9, 1.0, 1.1, 9.0, 10.0, 11.0])
    c, labels = kmeans_1d(x, 2)
    assert c.tolist() == pytest.approx([1.0, 10.0])
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("init", ["linear", "random", "density"])
def test_kmeans_converges_to_lloyd_fixed_point(init):
    rng = np.random.default_rng(0)
    x = rng.normal(size=5000)
    c, labels = kmeans_1d(x, 8, init=init)
    # fixed point: every centroid is the mean of its members, every point at its nearest centroid
    for j in range(8):
        if (labels == j).any():
            assert c[j] == pytest.approx(x[labels == j].mean(), abs=1e-6)
    nearest = np.argmin(np.abs(x[:, None] - c[None, :]), axis=1)
    assert (c[nearest] == c[labels]).all()


def test_share_weights_reserves_zero_for_pruned_layer():
    torch.manual_seed(0)
    w = torch.randn(10, 10)
    mask = w.abs() > 0.5
    w = w * mask
    codebook, labels = share_weights(w, bits=3, mask=mask)
    assert codebook.numel() == 8 and codebook[0] == 0.0
    assert (labels[~mask] == 0).all() and (labels[mask] >= 1).all()
    # without a mask all 2**bits centroids are used for the weights
    cb2, lab2 = share_weights(w, bits=3)
    assert cb2.numel() == 8 and lab2.max() <= 7


def test_centroid_gradient_is_sum_of_weight_gradients():
    torch.manual_seed(0)
    m = nn.Linear(6, 4, bias=False)
    mask = torch.rand(4, 6) > 0.3
    with torch.no_grad():
        m.weight.mul_(mask)
    apply_weight_sharing(m, bits=2, mask=mask)
    codebook, labels, sparse = codebook_and_labels(m)
    assert sparse
    x = torch.randn(5, 6)
    # hand computation: gradient w.r.t. the effective weight, summed per cluster (DC Eq. 3)
    w = (codebook[labels] * mask).clone().requires_grad_(True)
    (x @ w.t()).pow(2).sum().backward()
    expected = torch.zeros(4)
    for k in range(4):
        expected[k] = (w.grad * mask)[labels == k].sum()
    m(x).pow(2).sum().backward()
    got = m.parametrizations.weight.original.grad
    assert torch.allclose(got, expected, atol=1e-5)
    assert got[0] == 0  # the reserved zero centroid gets no gradient (only pruned weights map to it)


def test_fine_tuning_keeps_pruned_zero_and_assignments_fixed():
    torch.manual_seed(0)
    m = nn.Linear(8, 8)
    mask = torch.rand(8, 8) > 0.5
    with torch.no_grad():
        m.weight.mul_(mask)
    apply_weight_sharing(m, bits=3, mask=mask)
    labels_before = m.parametrizations.weight[0].labels.clone()
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-3)
    for _ in range(10):
        opt.zero_grad()
        m(torch.randn(4, 8)).sum().backward()
        opt.step()
    assert (m.weight[~mask] == 0).all()
    assert m.parametrizations.weight[0].labels.equal(labels_before)
    assert len(torch.unique(m.weight)) <= 8


def test_registered_codebook_is_cluster_means():
    torch.manual_seed(0)
    m = nn.Linear(20, 20, bias=False)
    w0 = m.weight.detach().clone()
    apply_weight_sharing(m, bits=2)
    cb, labels, _ = codebook_and_labels(m)
    for k in range(4):
        assert cb[k] == pytest.approx(float(w0.flatten()[labels.flatten() == k].mean()), abs=1e-6)
    assert parametrize.is_parametrized(m, "weight")


def test_sharing_rate_formula():
    # DC section 3 example: n=16 weights, b=32 bits, k=4 clusters -> 16*32 / (16*2 + 4*32) = 3.2
    assert sharing_rate(16, 32, 4) == pytest.approx(3.2)


def test_bits_range_checked():
    with pytest.raises(ValueError):
        share_weights(torch.randn(3, 3), bits=0)
