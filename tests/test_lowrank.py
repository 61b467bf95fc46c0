"""Truncated-SVD baseline: rank from the storage budget, exact factors, gradients reach U and V."""
import pytest
import torch
from torch import nn

from compression.lowrank import LowRank, apply_low_rank, rank_for_keep, svd_factors


def test_rank_for_keep_hand_values():
    # 300 x 784 at 10%: 0.1 * 235200 / 1084 = 21.69 -> 21 (21 * 1084 = 22764 <= 23520)
    assert rank_for_keep(300, 784, 0.1) == 21
    assert rank_for_keep(10, 100, 0.001) == 1        # never below 1
    assert rank_for_keep(4, 4, 1.0) == 2             # 1.0 * 16 / 8 = 2
    assert rank_for_keep(3, 1000, 1.0) == 2          # 3000 / 1003 = 2.99 -> 2
    with pytest.raises(ValueError):
        rank_for_keep(4, 4, 0.0)


def test_full_rank_factors_reproduce_the_matrix_and_truncation_is_best():
    torch.manual_seed(0)
    w = torch.randn(6, 9)
    u, v = svd_factors(w, 6)
    assert torch.allclose(u @ v, w, atol=1e-5)
    u2, v2 = svd_factors(w, 2)
    s = torch.linalg.svdvals(w)
    # Eckart-Young: the rank-2 error is the norm of the dropped singular values
    assert float(torch.linalg.norm(w - u2 @ v2)) == pytest.approx(float(s[2:].norm()), rel=1e-4)


def test_parametrized_layer_trains_only_the_factors():
    torch.manual_seed(0)
    layer = nn.Linear(8, 5)
    r = apply_low_rank(layer, 0.5)  # 0.5 * 40 / 13 = 1.5 -> 1
    assert r == 1
    p = layer.parametrizations.weight[0]
    assert isinstance(p, LowRank) and p.U.shape == (5, 1) and p.V.shape == (1, 8)
    assert torch.linalg.matrix_rank(layer.weight.detach()) == 1
    layer(torch.randn(4, 8)).sum().backward()
    assert p.U.grad is not None and p.V.grad is not None
    assert layer.parametrizations.weight.original.grad is None
