"""Quantizers beyond k-means (Choi, El-Khamy, Lee, "Towards the limit of network quantization", ICLR 2017).

* ``HessianKMeans``: k-means whose distortion weights each weight by its Hessian diagonal h_i,
  ``sum_i h_i (w_i - c_k)^2`` -- the second-order loss increase quantization causes, so the
  centroids follow the weights the loss is sensitive to. h is OBD's estimator (the exact
  Gauss-Newton diagonal for fc/conv layers, ``compression.criteria.obd``), over ``batches`` batches.
* ``ECSQ``: entropy-constrained scalar quantization (Chou, Lookabaugh, Gray 1989): Lloyd iterations
  whose assignment minimizes ``h_i (w_i - c_k)^2 + lambda * l_k``, ``l_k = -log2 p_k`` the code
  length of cluster k, so clusters that few weights use grow expensive and the label entropy -- what
  the entropy coder then spends per weight -- drops at the cost of some distortion. ``rate`` (bits per
  surviving weight) finds lambda by bisection so that the label entropy meets it; ``lam`` sets it.

Both are quantizer plug-ins (conf/quantize/quantizer/*.yaml): called like ``compression.quantize.KMeans``,
with ``prepare`` run once by the quantize stage when ``needs_data`` is true.
"""

from __future__ import annotations

import numpy as np
import torch

from compression.quantize import init_centroids, kmeans_1d


def entropy_bits(labels: np.ndarray, k: int) -> float:
    """Empirical entropy of the labels, bits per label."""
    p = np.bincount(np.asarray(labels).ravel(), minlength=k) / max(np.asarray(labels).size, 1)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def distortion(x: np.ndarray, c: np.ndarray, labels: np.ndarray, h: np.ndarray | None = None) -> float:
    d = (x - c[labels]) ** 2
    return float((d if h is None else h * d).mean())


def ecsq_1d(x: np.ndarray, k: int, lam: float, h: np.ndarray | None = None, init: str = "linear", iters: int = 100,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """ECSQ of 1-D data into at most k clusters (module docstring); returns (centroids [k], labels)."""
    x = np.asarray(x, np.float64).ravel()
    w = np.ones_like(x) if h is None else np.asarray(h, np.float64).ravel()
    if x.size == 0:
        return np.zeros(k), np.zeros(0, np.int64)
    c, labels = kmeans_1d(x, k, init=init, seed=seed, sample_weight=None if h is None else w)
    for _ in range(iters):
        counts = np.bincount(labels, minlength=k)
        used = counts > 0
        penalty = np.full(k, np.inf)  # an empty cluster is never chosen again
        penalty[used] = lam * -np.log2(counts[used] / x.size)
        cost = w[:, None] * (x[:, None] - c[None, :]) ** 2 + penalty[None, :]
        new = cost.argmin(1)
        mass = np.bincount(new, weights=w, minlength=k)
        c = np.where(mass > 0, np.bincount(new, weights=w * x, minlength=k) / np.where(mass > 0, mass, 1), c)
        if np.array_equal(new, labels):
            break
        labels = new
    return c, labels


SEARCH_SAMPLE = 4096  # the lambda search runs on at most this many of a layer's weights


def _lambda_for_rate(x, k, rate, h, init, seed) -> float:
    """The smallest lambda (bisection, 30 steps) whose label entropy is at most ``rate`` bits: searched on a
    random subsample of ``SEARCH_SAMPLE`` weights, then raised until the whole layer meets the rate."""
    lam = _bisect(*_subsample(x, h, seed), k, rate, init, seed)
    while lam < 1e30 and entropy_bits(ecsq_1d(x, k, lam, h, init, seed=seed)[1], k) > rate:
        lam = lam * 1.25 if lam > 0 else distortion(x, *kmeans_1d(x, k, init=init, seed=seed, sample_weight=h), h) * 1e-3
    return lam


def _subsample(x, h, seed):
    if x.size <= SEARCH_SAMPLE:
        return x, h
    pick = np.random.default_rng(seed).choice(x.size, SEARCH_SAMPLE, replace=False)
    return x[pick], None if h is None else h[pick]


def _bisect(x, h, k, rate, init, seed) -> float:
    c, lab = kmeans_1d(x, k, init=init, seed=seed, sample_weight=h)
    if entropy_bits(lab, k) <= rate:
        return 0.0
    scale = distortion(x, c, lab, h) + 1e-30  # lambda in units of the k-means distortion per bit
    lo, hi = 0.0, scale
    while entropy_bits(ecsq_1d(x, k, hi, h, init, seed=seed)[1], k) > rate and hi < scale * 1e6:
        lo, hi = hi, hi * 4
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        if entropy_bits(ecsq_1d(x, k, mid, h, init, seed=seed)[1], k) > rate:
            lo = mid
        else:
            hi = mid
    return hi


class _Quantizer:
    """Shared: the Hessian diagonal (when asked for), the pruned-layer convention, the call protocol."""

    def __init__(self, hessian: bool, batches: int, init: str):
        self.hessian, self.batches, self.init = bool(hessian), int(batches), init
        self.needs_data = self.hessian
        self.h: dict[tuple[int, str], torch.Tensor] = {}
        init_centroids(np.zeros(1), 1, init, np.random.default_rng(0))  # a bad init fails now

    def prepare(self, model, specs, batches=None) -> None:
        if not self.hessian:
            return
        if batches is None:
            raise ValueError("a Hessian-weighted quantizer needs training data: it cannot run storage-only")
        from compression.criteria.obd import OBD

        obd = OBD(batches=self.batches)
        obd.prepare(model, specs, batches)
        self.h = obd.hessian

    def _weights(self, weight, mask, module, name):
        w = weight.detach().cpu().flatten().double().numpy()
        keep = np.ones(w.size, bool) if mask is None else mask.detach().cpu().flatten().bool().numpy()
        h = None
        if self.hessian:
            h = self.h[id(module), name].detach().cpu().flatten().double().numpy()[keep]
            h = np.maximum(h, 1e-12 * max(float(h.max(initial=0.0)), 1e-30))  # no weight free to move anywhere
        return w, keep, h

    def _cluster(self, x, k, h, seed):
        raise NotImplementedError

    def __call__(self, weight, bits, mask=None, seed=0, module=None, name="weight"):
        w, keep, h = self._weights(weight, mask, module, name)
        k = 2 ** bits - (0 if mask is None else 1)
        c, lab = self._cluster(w[keep], k, h, seed)
        labels = np.zeros(w.size, np.int64)
        labels[keep] = lab + (0 if mask is None else 1)
        codebook = c if mask is None else np.concatenate([[0.0], c])
        return torch.tensor(codebook, dtype=torch.float32), torch.from_numpy(labels).view(weight.shape)


class HessianKMeans(_Quantizer):
    def __init__(self, init: str = "linear", batches: int = 8):
        super().__init__(True, batches, init)

    def _cluster(self, x, k, h, seed):
        return kmeans_1d(x, k, init=self.init, seed=seed, sample_weight=h)


class ECSQ(_Quantizer):
    def __init__(self, rate: float | None = None, lam: float = 0.0, hessian: bool = False, init: str = "linear",
                 batches: int = 8, iters: int = 100):
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be > 0 bits per weight, got {rate}")
        if lam < 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        super().__init__(hessian, batches, init)
        self.rate, self.lam, self.iters = rate, float(lam), int(iters)
        self.lambdas: dict[int, float] = {}

    def _cluster(self, x, k, h, seed):
        lam = self.lam if self.rate is None else _lambda_for_rate(x, k, self.rate, h, self.init, seed)
        self.lambdas[len(self.lambdas)] = lam
        return ecsq_1d(x, k, lam, h, self.init, self.iters, seed)
