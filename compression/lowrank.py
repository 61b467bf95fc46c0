"""Truncated-SVD baseline (DC Fig. 6 "SVD"): an fc weight W (m x n) stored as U (m x r) @ V (r x n).

Storage per layer is r * (m + n) numbers instead of m * n, so keeping a fraction ``keep`` of a
layer's storage means ``r = floor(keep * m * n / (m + n))`` (at least 1). The factors are a
``torch.nn.utils.parametrize`` parametrization, so fine-tuning trains U and V directly.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize


def rank_for_keep(m: int, n: int, keep: float) -> int:
    """Largest rank whose factors take at most ``keep`` of the m x n matrix's storage (>= 1, <= min(m, n))."""
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    return max(1, min(min(m, n), math.floor(keep * m * n / (m + n))))


def svd_factors(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """U, V with U @ V the best rank-``rank`` approximation of ``weight`` (singular values split evenly)."""
    u, s, vh = torch.linalg.svd(weight.detach().double(), full_matrices=False)
    root = s[:rank].sqrt()
    return (u[:, :rank] * root).to(weight.dtype), (root[:, None] * vh[:rank]).to(weight.dtype)


class LowRank(nn.Module):
    """Parametrization ``weight = U @ V`` (the original tensor is ignored once registered)."""

    def __init__(self, u: torch.Tensor, v: torch.Tensor):
        super().__init__()
        self.U = nn.Parameter(u.clone())
        self.V = nn.Parameter(v.clone())

    def forward(self, _original: torch.Tensor) -> torch.Tensor:
        return self.U @ self.V


def apply_low_rank(module: nn.Module, keep: float, name: str = "weight") -> int:
    """Replace the 2-D ``module.<name>`` by its truncated SVD at storage fraction ``keep``; returns the rank."""
    w = getattr(module, name)
    if w.dim() != 2:
        raise TypeError(f"low-rank factorization needs a matrix (an fc weight), got shape {tuple(w.shape)}")
    m, n = w.shape
    r = rank_for_keep(m, n, keep)
    u, v = svd_factors(w, r)
    parametrize.register_parametrization(module, name, LowRank(u, v))
    module.parametrizations[name].original.requires_grad_(False)  # stored and trained: U and V only
    return r


class TruncatedSVD:
    """The low-rank baseline of DC Fig. 6 (plug-in, conf/lowrank/svd.yaml).

    A low-rank method is called as ``method(module, name, keep)`` on each fc tensor, replaces it
    in place by a trainable factorization within ``keep`` of its storage, and returns
    ``(rank, numbers stored)``.
    """

    def __call__(self, module: nn.Module, name: str, keep: float) -> tuple[int, int]:
        r = apply_low_rank(module, keep, name)
        m, n = module.parametrizations[name].original.shape
        return r, r * (m + n)
