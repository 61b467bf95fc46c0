"""Weight sharing by 1-D k-means and trained quantization (DC section 3).

* ``kmeans_1d``: Lloyd's algorithm in one dimension. On sorted data every cluster is a
  contiguous run, so one iteration is a ``searchsorted`` of the k-1 decision boundaries
  plus prefix sums: O(k log n) per iteration after one O(n log n) sort
  (``benchmarks/bench_kmeans.py`` measures 3.4M weights into 32 clusters).
* ``share_weights``: per layer (never across layers). A pruned layer keeps index 0 of its
  codebook for the value 0.0 -- fillers of the sparse format and every pruned position
  decode to it, as in the authors' released decoder -- so its 2**bits-entry codebook holds
  0 plus 2**bits - 1 trained centroids. An unpruned layer uses all 2**bits centroids.
* ``SharedWeights``: a ``torch.nn.utils.parametrize`` parametrization
  ``weight = codebook[labels] * mask``. Autograd of the gather gives each centroid the
  **sum** of the gradients of the weights assigned to it (DC Eq. 3):
  dL/dC_k = sum_ij dL/dW_ij 1(I_ij = k). Assignments never change; pruned weights stay 0.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

INITS = ("linear", "random", "density")


def init_centroids(sorted_x: np.ndarray, k: int, init: str, rng: np.random.Generator) -> np.ndarray:
    """Initial centroids (DC section 3.2, Fig. 4).

    linear: evenly spaced between min and max; random (Forgy): k distinct weights drawn at
    random; density: evenly spaced on the weights' CDF (quantiles at (i + 0.5) / k).
    """
    lo, hi = float(sorted_x[0]), float(sorted_x[-1])
    if init == "linear":
        return np.linspace(lo, hi, k)
    if init == "random":
        pick = rng.choice(sorted_x.size, size=min(k, sorted_x.size), replace=False)
        c = np.sort(sorted_x[pick])
        if c.size < k:  # fewer weights than clusters: the rest stay empty
            c = np.concatenate([c, np.full(k - c.size, hi)])
        return c
    if init == "density":
        q = (np.arange(k) + 0.5) / k
        return np.quantile(sorted_x, q)
    raise ValueError(f"unknown centroid init {init!r}; choose one of {INITS}")


def kmeans_1d(
    x: np.ndarray | torch.Tensor,
    k: int,
    init: str = "linear",
    max_iter: int = 300,
    tol: float = 1e-7,
    seed: int = 0,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """1-D k-means. Returns (centroids float64 [k], labels int64 [len(x)] into centroids).

    Stops when no centroid moves more than ``tol * (max - min)`` (Lloyd converged) or after
    ``max_iter`` iterations. Centroids of empty clusters keep their last value. With
    ``sample_weight`` (h >= 0 per value) it minimizes sum_i h_i (x_i - c_k)^2: each value still goes
    to its nearest centroid, and a centroid is its cluster's weighted mean (Choi et al. 2017's
    Hessian-weighted k-means, with h a Hessian diagonal).
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64).ravel()
    if k < 1:
        raise ValueError("k must be >= 1")
    if x.size == 0:
        return np.zeros(k), np.zeros(0, dtype=np.int64)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    if sample_weight is None:
        prefix = np.concatenate([[0.0], np.cumsum(xs)])
    else:
        h = np.asarray(sample_weight, dtype=np.float64).ravel()[order]
        if h.size != xs.size or not np.all(np.isfinite(h)) or (h < 0).any():
            raise ValueError("sample_weight must be finite, >= 0 and one per value")
        prefix = np.concatenate([[0.0], np.cumsum(h * xs)])
        mass = np.concatenate([[0.0], np.cumsum(h)])
    c = np.sort(init_centroids(xs, k, init, np.random.default_rng(seed)).astype(np.float64))
    scale = max(float(xs[-1] - xs[0]), 1e-30)
    for _ in range(max_iter):
        starts, ends = _segments(xs, c)
        counts = ends - starts if sample_weight is None else mass[ends] - mass[starts]
        sums = prefix[ends] - prefix[starts]
        new = np.where(counts > 0, sums / np.where(counts > 0, counts, 1), c)
        new.sort()
        moved = np.max(np.abs(new - c))
        c = new
        if moved <= tol * scale:
            break
    starts, ends = _segments(xs, c)
    labels_sorted = np.repeat(np.arange(k), ends - starts)
    labels = np.empty(x.size, dtype=np.int64)
    labels[order] = labels_sorted
    return c, labels


def _segments(xs: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start/end indices in sorted data of each centroid's cluster (nearest centroid)."""
    bounds = (c[:-1] + c[1:]) / 2.0
    cut = np.searchsorted(xs, bounds, side="right")
    starts = np.concatenate([[0], cut])
    ends = np.concatenate([cut, [xs.size]])
    return starts, ends


def share_weights(
    weight: torch.Tensor,
    bits: int,
    mask: torch.Tensor | None = None,
    init: str = "linear",
    seed: int = 0,
    max_iter: int = 300,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster one layer's weights. Returns (codebook float32 [2**bits], labels int64 shaped like the weight).

    With ``mask`` (a pruned layer), codebook[0] == 0 is reserved for pruned positions and
    k-means runs over the surviving weights with 2**bits - 1 clusters.
    """
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be in 1..16, got {bits}")
    size = 2**bits
    w = weight.detach().cpu().flatten()
    if mask is None:
        centroids, lab = kmeans_1d(w.numpy(), size, init=init, max_iter=max_iter, seed=seed)
        codebook = torch.from_numpy(centroids)
        labels = torch.from_numpy(lab)
    else:
        m = mask.detach().cpu().bool().flatten()
        centroids, lab = kmeans_1d(w[m].numpy(), size - 1, init=init, max_iter=max_iter, seed=seed)
        codebook = torch.cat([torch.zeros(1, dtype=torch.float64), torch.from_numpy(centroids)])
        labels = torch.zeros(w.numel(), dtype=torch.int64)
        labels[m] = torch.from_numpy(lab) + 1
    return codebook.float(), labels.view(weight.shape)


def cluster_means(weight: torch.Tensor, labels: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """Least-squares codebook for fixed assignments: the mean of each cluster's weights."""
    k = fallback.numel()
    flat = labels.flatten()
    sums = torch.zeros(k, dtype=torch.float64).index_add_(0, flat, weight.detach().flatten().double())
    counts = torch.bincount(flat, minlength=k).double()
    return torch.where(counts > 0, sums / counts.clamp_min(1), fallback.double()).to(fallback.dtype)


class SharedWeights(nn.Module):
    """Parametrization ``weight = codebook[labels] * mask``; the stored parameter is the codebook.

    ``right_inverse`` maps a weight tensor to its cluster means (codebook entry 0 stays 0
    for a pruned layer), so registering it on a layer whose weights were just clustered
    stores exactly the k-means centroids.
    """

    def __init__(self, codebook: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None):
        super().__init__()
        self.register_buffer("labels", labels.long())
        self.register_buffer("mask", (mask if mask is not None else torch.ones_like(labels)).to(codebook.dtype))
        self.register_buffer("fallback", codebook.detach().clone())
        self.sparse = mask is not None

    def forward(self, codebook: torch.Tensor) -> torch.Tensor:
        return codebook[self.labels] * self.mask

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        cb = cluster_means(weight, self.labels, self.fallback)
        if self.sparse:
            cb[0] = 0.0
        return cb


class KMeans:
    """The paper's quantizer (plug-in, conf/quantize/quantizer/kmeans.yaml): per-layer 1-D k-means.

    A quantizer is called as ``quantizer(weight, bits, mask=..., seed=..., module=..., name=...)``
    (the layer's module and parameter name, for quantizers that keep per-layer statistics) and
    returns ``(codebook float32 [2**bits], labels int64 shaped like the weight)``; with a mask (a
    pruned layer) ``codebook[0]`` must be 0.0 and every pruned position labelled 0
    (``share_weights``). A quantizer that prunes returns ``(codebook, labels, mask)`` on the same
    terms, its mask the weights it keeps (``compression.soft_sharing``). One that needs data
    (``needs_data = True``) gets ``prepare(model, specs, batches)`` once before the first layer, as a
    pruning criterion does.
    """

    def __init__(self, init: str = "linear", max_iter: int = 300):
        if init not in INITS:
            raise ValueError(f"unknown centroid init {init!r}; choose one of {INITS}")
        self.init, self.max_iter = init, int(max_iter)

    def __call__(self, weight: torch.Tensor, bits: int, mask: torch.Tensor | None = None,
                 seed: int = 0, **_layer) -> tuple[torch.Tensor, torch.Tensor]:
        return share_weights(weight, bits, mask=mask, init=self.init, seed=seed, max_iter=self.max_iter)


def apply_weight_sharing(
    module: nn.Module,
    bits: int,
    mask: torch.Tensor | None = None,
    init: str = "linear",
    seed: int = 0,
    name: str = "weight",
    quantizer=None,
) -> SharedWeights:
    """Cluster ``module.<name>`` (``quantizer``, default k-means with ``init``) and parametrize it by
    its codebook (trainable)."""
    weight = getattr(module, name)
    quantizer = quantizer or KMeans(init)
    out = quantizer(weight, bits, mask=mask, seed=seed, module=module, name=name)
    codebook, labels = out[:2]
    if len(out) == 3:  # a quantizer that prunes (soft weight-sharing's zero component) returns its mask
        mask = out[2]
    p = SharedWeights(codebook.to(weight.device), labels.to(weight.device),
                      None if mask is None else mask.to(weight.device))
    parametrize.register_parametrization(module, name, p, unsafe=True)
    return p


def codebook_and_labels(module: nn.Module, name: str = "weight") -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(codebook, labels, sparse) of a weight-shared layer."""
    plist = module.parametrizations[name]
    p = plist[0]
    return plist.original.detach().cpu().float(), p.labels.cpu(), p.sparse


def sharing_rate(n: int, b: int, k: int) -> float:
    """Compression from weight sharing alone (DC section 3): r = n*b / (n*log2(k) + k*b)."""
    return n * b / (n * math.log2(k) + k * b)
