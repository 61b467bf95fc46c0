"""Magnitude pruning (LWC section 3; DC section 2): the smallest |w| go first."""

from __future__ import annotations

import torch
from torch import nn

from compression.prune import Criterion


class Magnitude(Criterion):
    """Score = |w|: with ``prune.method=quality`` exactly LWC's rule |w| >= quality * std(w)."""

    def scores(self, module: nn.Module, name: str) -> torch.Tensor:
        return getattr(module, name).detach().abs()
