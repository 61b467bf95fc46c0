"""Magnitude pruning as a ``torch.nn.utils.prune`` method (LWC section 3; DC section 2).

``magnitude_prune(module, "weight", quality=q)`` keeps the connections with
``|w| >= q * std(w)`` (the papers' rule, std over the layer's surviving weights);
``magnitude_prune(module, "weight", density=d)`` keeps exactly ``round(d * numel)``
largest-magnitude connections (to hit the published per-layer densities).

The mask bookkeeping is torch's: the first call moves the parameter to
``weight_orig``, registers ``weight_mask`` and recomputes ``weight = weight_orig *
weight_mask`` in a forward pre-hook, so SGD, momentum and weight decay never revive a
pruned weight, and a pruned weight gets no gradient. A second call is composed by
torch's ``PruningContainer``, which hands our method only the surviving entries: masks
are AND-ed, a later round never revives a connection.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import torch
from torch import nn
from torch.nn.utils import prune


class MagnitudeThreshold(prune.BasePruningMethod):
    """Unstructured magnitude pruning with a std-relative threshold or an exact keep count."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, quality: float | None = None, keep: int | None = None):
        if (quality is None) == (keep is None):
            raise ValueError("give exactly one of quality= or keep=")
        if quality is not None and quality < 0:
            raise ValueError(f"quality must be >= 0, got {quality}")
        if keep is not None and keep < 0:
            raise ValueError(f"keep must be >= 0, got {keep}")
        self.quality = quality
        self.keep = keep

    def compute_mask(self, t: torch.Tensor, default_mask: torch.Tensor) -> torch.Tensor:
        mask = default_mask.clone()
        alive = default_mask.bool()
        values = t.detach()[alive]
        if values.numel() == 0:
            return mask
        if self.quality is not None:
            # LWC section 3: threshold = quality x standard deviation of the layer's weights
            # (population std over the connections still alive).
            threshold = self.quality * values.std(unbiased=False)
            keep_alive = values.abs() >= threshold
        else:
            k = min(self.keep, values.numel())
            keep_alive = torch.zeros_like(values, dtype=torch.bool)
            if k > 0:
                keep_alive[torch.topk(values.abs().flatten(), k, sorted=False).indices] = True
        new_alive = torch.zeros_like(alive)
        new_alive[alive] = keep_alive
        mask[~new_alive] = 0
        return mask


def magnitude_prune(
    module: nn.Module,
    name: str = "weight",
    *,
    quality: float | None = None,
    density: float | None = None,
) -> nn.Module:
    """Prune ``module.<name>`` in place (composing with earlier pruning) and return the module."""
    if (quality is None) == (density is None):
        raise ValueError("give exactly one of quality= or density=")
    prune_to(module, name, getattr(module, name).detach().abs(), keep_count(module, name, density=density,
                                                                           quality=quality))
    return module


def keep_count(module: nn.Module, name: str = "weight", *, density: float | None = None,
               quality: float | None = None) -> int:
    """How many connections of ``module.<name>`` a pruning step keeps (never more than are alive).

    ``density``: round(density * numel), the published per-layer densities. ``quality``: as many as
    LWC's rule keeps, ``|w| >= quality * std(w)`` over the surviving weights (population std).
    """
    return _keep(getattr(module, name).detach(), current_mask(module, name), density, quality)


def _keep(w: torch.Tensor, mask: torch.Tensor, density: float | None, quality: float | None) -> int:
    if density is not None:
        if not 0.0 <= density <= 1.0:
            raise ValueError(f"density must be in [0, 1], got {density}")
        return min(int(round(density * mask.numel())), int(mask.sum()))
    if quality is None or quality < 0:
        raise ValueError(f"quality must be >= 0, got {quality}")
    values = w[mask]
    if values.numel() == 0:
        return 0
    return int((values.abs() >= quality * values.std(unbiased=False)).sum())


def block_keep_counts(module: nn.Module, name: str, blocks: int, *, density: float | None = None,
                      quality: float | None = None) -> list[int]:
    """``keep_count`` of each of ``blocks`` equal row blocks of ``module.<name>`` on its own (an LSTM
    matrix stacks its four gates as row blocks): the density, or LWC's std rule, holds in every block."""
    w, mask = getattr(module, name).detach(), current_mask(module, name)
    if blocks < 1 or w.shape[0] % blocks:
        raise ValueError(f"{name}: {w.shape[0]} rows do not split into {blocks} equal blocks")
    rows = w.shape[0] // blocks
    return [_keep(w[b * rows:(b + 1) * rows], mask[b * rows:(b + 1) * rows], density, quality) for b in range(blocks)]


def prune_to(module: nn.Module, name: str, scores: torch.Tensor, keep: int | list[int]) -> torch.Tensor:
    """Keep the ``keep`` surviving connections with the highest ``scores``; prune the rest. Returns the mask.

    ``keep`` a list of ``B`` counts: the tensor's rows split into ``B`` equal blocks (an LSTM's gates),
    and block ``b`` keeps its own ``keep[b]`` highest-scoring survivors (``block_keep_counts``).
    The mask goes through ``torch.nn.utils.prune.custom_from_mask``, so it composes with
    earlier pruning (a pruned connection never comes back) and SGD can never revive one.
    """
    alive = current_mask(module, name)
    counts = [keep] if isinstance(keep, int) else list(keep)
    if alive.shape[0] % len(counts):
        raise ValueError(f"{name}: {alive.shape[0]} rows do not split into {len(counts)} equal blocks")
    rows = alive.shape[0] // len(counts)
    scores = scores.detach().to(alive.device)
    new = torch.zeros_like(alive)
    for b, count in enumerate(counts):
        block_alive = alive[b * rows:(b + 1) * rows]
        values = scores[b * rows:(b + 1) * rows][block_alive]
        k = max(0, min(int(count), values.numel()))
        keep_alive = torch.zeros_like(values, dtype=torch.bool)
        if k > 0:
            keep_alive[torch.topk(values.flatten(), k, sorted=False).indices] = True
        new[b * rows:(b + 1) * rows][block_alive] = keep_alive
    prune.custom_from_mask(module, name, new)
    return new


class Criterion:
    """A pruning criterion (plug-in, conf/prune/criterion/*.yaml): which connections survive a step.

    The prune stage calls ``prepare(model, specs, batches)`` once per pruning step (``batches``
    yields ``(x, y)`` training batches when ``needs_data`` is true, else it is None), then
    ``prune(module, name, keep)`` per layer with the number of connections to keep (the
    configured density, or LWC's quality rule). The default ``prune`` keeps the highest
    ``scores``; a criterion that also changes the surviving weights (OBS) overrides ``prune``.
    """

    needs_data = False
    per_block = True  # ``prune`` takes a count per row block (prune.per_block)

    def prepare(self, model: nn.Module, specs: list, batches=None) -> None:
        """Gather what ``scores`` needs (Hessians, activations, ...) before any layer is pruned."""

    def scores(self, module: nn.Module, name: str) -> torch.Tensor:
        raise NotImplementedError

    def prune(self, module: nn.Module, name: str, keep: int | list[int]) -> None:
        """``keep``: a count, or one per equal row block (``prune.per_block``; see ``prune_to``)."""
        prune_to(module, name, self.scores(module, name), keep)


def current_mask(module: nn.Module, name: str = "weight") -> torch.Tensor:
    """The layer's mask (all ones when it was never pruned)."""
    mask = getattr(module, name + "_mask", None)
    if mask is None:
        return torch.ones_like(getattr(module, name), dtype=torch.bool)
    return mask.bool()


def density(module: nn.Module, name: str = "weight") -> float:
    """Fraction of non-zero entries of the effective weight (what is actually stored)."""
    w = getattr(module, name)
    return float((w != 0).sum()) / w.numel()


def make_permanent(module: nn.Module, name: str = "weight") -> torch.Tensor:
    """Fold the mask into the parameter (drops ``name_orig``/``name_mask``); returns the mask."""
    mask = current_mask(module, name).clone()
    if prune.is_pruned(module) and hasattr(module, name + "_orig"):
        prune.remove(module, name)
    return mask


def resolve_per_layer(values: Mapping[str, float], names: Iterable[str]) -> dict[str, float]:
    """Per-layer settings keyed by the paper's layer names with a ``'*'`` default.

    ``{'*': 0.1, 'ip3': 0.26}`` over ``['ip1', 'ip2', 'ip3']`` -> ``{'ip1': 0.1, 'ip2': 0.1, 'ip3': 0.26}``.
    A key that names no layer is an error (a typo must not silently do nothing).
    """
    names = list(names)
    unknown = sorted(set(values) - set(names) - {"*"})
    if unknown:
        raise KeyError(f"unknown layer name(s) {unknown}; the model's layers are {names} (or '*')")
    out = {}
    for n in names:
        if n in values:
            out[n] = values[n]
        elif "*" in values:
            out[n] = values["*"]
        else:
            raise KeyError(f"no value for layer {n!r} and no '*' default")
    return out


DENSITY_SCHEDULES = ("geometric", "cubic")


def schedule_densities(final: float, rounds: int, kind: str = "geometric") -> list[float]:
    """Per-round target densities, the last one ``final``.

    ``geometric``: d_r = final ** (r / rounds); each round removes the same fraction of the survivors
    (iterative pruning, LWC section 3.3).
    ``cubic``: Zhu & Gupta (2017, "To prune, or not to prune", Eq. 1) from the dense network, sparsity
    s_r = s_f * (1 - (1 - r / rounds) ** 3) with s_f = 1 - final: large steps first, while there are many
    redundant weights, and ever smaller ones near the target.
    """
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    if kind == "geometric":
        return [float(final ** ((r + 1) / rounds)) for r in range(rounds)]
    if kind == "cubic":
        return [float(1.0 - (1.0 - final) * (1.0 - (1.0 - (r + 1) / rounds) ** 3)) for r in range(rounds)]
    raise ValueError(f"unknown density schedule {kind!r}: use geometric or cubic")
