"""Soft weight-sharing (Ullrich, Meeds, Welling, "Soft weight-sharing for neural network compression",
ICLR 2017) as a quantizer plug-in (conf/quantize/quantizer/soft_sharing.yaml).

Retraining with a prior. One Gaussian mixture over every compressible tensor of the network,

    p(w) = prod_i sum_j pi_j N(w_i | mu_j, 1/lambda_j),   j = 0 .. J-1   (paper Eq. 4)

has J - 1 learned components and component 0 fixed at mu_0 = 0 with a fixed, large mixing proportion
pi_0 (the pruning component). The network is retrained on

    L = -log p(D | w) + tau * ( -log p(w) - log p(lambda) )                     (paper Eq. 5)

where -log p(D | w) is the negative log-likelihood of the whole training set. Each minibatch step
minimizes that loss divided by the number N of training examples, cross-entropy(batch mean) +
(tau / N) * (-log p(w) - log p(lambda)), as the authors' tutorial does (``loss_weights`` 1 and
``tau / N``), so that ``tau`` is in the paper's units (5e-3) whatever the data set's size. (Rows
before this scaling multiplied the prior by ``tau`` itself: their ``tau`` is ``tau / N`` here.)
The means, log-precisions and mixing proportions are learned beside the weights (Adam, each group at
its own learning rate), with Gamma hyper-priors on the precisions -- (alpha, beta) = (5e3, 2) for the
zero component, (2.5e2, 0.1) for the others -- which keep a component from collapsing onto a single
weight (the values of the authors' tutorial). After retraining (paper section 3, "post-processing"):
components whose KL divergence is below ``merge_kl`` are merged (their proportions summed, means and
precisions averaged by proportion), the merged component nearest zero is set to exactly zero, and each
weight takes the mean of its most responsible component. Weights at zero are pruned: the layer is
stored sparse (codebook entry 0 = 0.0, as a pruned k-means layer), and the other components are its
codebook, so the result enters the same relative-index + Huffman file.

Called like any quantizer (``compression.quantize.KMeans``): ``prepare(model, specs, batches)`` once
(here: the retraining; ``batches`` an iterable of (inputs, targets) training batches that can be
iterated once per epoch, e.g. a DataLoader; the loss is the cross-entropy of a classifier's logits),
then per layer ``(weight, bits, mask) -> (codebook, labels, mask)``: the returned mask marks the
weights that did not fall to zero.

Ours, not in the paper: ``prepare(..., validate=f)``, ``f(model) -> error`` on a validation split, measures
after every epoch the network as trained (``val_err``) and what the post-processing would give at that point
(``val_err_hard``: mixture merged, each weight at its component's mean; the training weights untouched),
and records both in the history. With
``keep_best=True`` the retraining ends on the epoch where that error was lowest (early stopping, chosen on
validation): its weights and its mixture.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from compression.specs import tensor_of

GAMMA_ZERO = (5e3, 2.0)  # Gamma(alpha, beta) hyper-prior on the zero component's precision
GAMMA_OTHER = (2.5e2, 0.1)  # ... and on every other component's


class GaussianMixturePrior(nn.Module):
    """The mixture prior: ``means`` (J-1 learned; component 0 sits at 0), ``log_precisions`` (J) and
    ``rhos`` (J-1, softmax-normalized to share 1 - pi_zero)."""

    def __init__(self, components: int, pi_zero: float, init_means: torch.Tensor, init_std: float,
                 gamma_zero=GAMMA_ZERO, gamma_other=GAMMA_OTHER):
        super().__init__()
        if components < 2:
            raise ValueError("soft weight-sharing needs at least 2 components (the zero one and another)")
        if not 0.0 < pi_zero < 1.0:
            raise ValueError(f"pi_zero must be in (0, 1), got {pi_zero}")
        self.pi_zero = float(pi_zero)
        self.gamma_zero, self.gamma_other = tuple(map(float, gamma_zero)), tuple(map(float, gamma_other))
        self.means = nn.Parameter(init_means.double().clone())
        self.log_precisions = nn.Parameter(torch.full((components,), -2.0 * math.log(init_std), dtype=torch.float64))
        self.rhos = nn.Parameter(torch.zeros(components - 1, dtype=torch.float64))

    def mixture(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(means [J], log-precisions [J], log mixing proportions [J]), component 0 first."""
        means = torch.cat([self.means.new_zeros(1), self.means])
        log_pis = torch.cat([self.means.new_full((1,), math.log(self.pi_zero)),
                             math.log1p(-self.pi_zero) + torch.log_softmax(self.rhos, 0)])
        return means, self.log_precisions, log_pis

    def neg_log_prob(self, weights: list[torch.Tensor]) -> torch.Tensor:
        """-log p(w) over all the tensors, plus the Gamma hyper-priors' -log p(lambda) (up to constants)."""
        means, logp, log_pis = self.mixture()
        total = self.means.new_zeros(())
        for w in weights:
            # per weight in the network's own precision (float32: 3x faster than float64 over LeNet-300-100's
            # 266,200 weights, measured), summed in float64 with the mixture's parameters
            x = w.reshape(-1, 1)
            m, lp, lpi = (t.to(x.dtype) for t in (means, logp, log_pis))
            comp = lpi + 0.5 * lp - 0.5 * math.log(2 * math.pi) - 0.5 * lp.exp() * (x - m) ** 2
            total = total - torch.logsumexp(comp, dim=1).double().sum()
        for (alpha, beta), lp in ((self.gamma_zero, logp[:1]), (self.gamma_other, logp[1:])):
            total = total + ((1.0 - alpha) * lp + beta * lp.exp()).sum()  # -log Gamma(lambda; alpha, beta)
        return total


def kl_gauss(m1, lp1, m2, lp2):
    """KL(N(m1, 1/exp(lp1)) || N(m2, 1/exp(lp2))), elementwise (numpy broadcasting)."""
    return 0.5 * (lp1 - lp2) + 0.5 * np.exp(lp2) * (np.exp(-lp1) + (m1 - m2) ** 2) - 0.5


def merge_components(means, log_precisions, log_pis, merge_kl: float):
    """Merge every group of components joined by a KL divergence below ``merge_kl`` (either way):
    proportions summed, means and precisions averaged with the proportions as weights; the merged
    component nearest zero is set to exactly 0. Returns (means, log-precisions, log proportions),
    the zero component first."""
    m, lp, lpi = (np.asarray(a, np.float64) for a in (means, log_precisions, log_pis))
    J = m.size
    parent = list(range(J))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    kl = kl_gauss(m[:, None], lp[:, None], m[None, :], lp[None, :])
    for i, j in zip(*np.nonzero(kl < merge_kl)):
        parent[root(int(i))] = root(int(j))
    groups: dict[int, list[int]] = {}
    for i in range(J):
        groups.setdefault(root(i), []).append(i)
    out_m, out_lp, out_lpi = [], [], []
    for g in groups.values():
        w = np.exp(lpi[g] - lpi[g].max())
        out_m.append(float((m[g] * w).sum() / w.sum()))
        out_lp.append(float(np.log((np.exp(lp[g]) * w).sum() / w.sum())))
        out_lpi.append(float(lpi[g].max() + np.log(w.sum())))
    order = np.argsort(np.abs(out_m), kind="stable")  # the component nearest zero first
    out_m, out_lp, out_lpi = (np.asarray(a)[order] for a in (out_m, out_lp, out_lpi))
    out_m[0] = 0.0
    return out_m, out_lp, out_lpi


def most_responsible(x: np.ndarray, means, log_precisions, log_pis) -> np.ndarray:
    """Index of each value's most responsible component: argmax_j log pi_j + log N(x | mu_j, 1/lambda_j)."""
    x = np.asarray(x, np.float64).reshape(-1, 1)
    score = log_pis + 0.5 * log_precisions - 0.5 * np.exp(log_precisions) * (x - means) ** 2
    return score.argmax(1)


def _clone(state: dict) -> dict:
    return {k: v.detach().clone() for k, v in state.items()}


def _evaluated(model: nn.Module, validate) -> float:
    """``validate(model)`` in eval mode; the model's mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        return validate(model)
    finally:
        model.train(was_training)


def _post_processed(model: nn.Module, specs: list, prior: GaussianMixturePrior, merge_kl: float, validate) -> float:
    """``validate(model)`` with every spec's weights where the post-processing would put them now (mixture
    merged, each weight at its most responsible component's mean); the weights are restored afterwards."""
    means, logp, log_pis = merge_components(*(t.detach().cpu().numpy() for t in prior.mixture()), merge_kl)
    saved = _clone(model.state_dict())
    try:
        with torch.no_grad():
            for s in specs:
                module = model.get_submodule(s.module)
                w = tensor_of(model, s).detach()
                snapped = means[most_responsible(w.cpu().numpy(), means, logp, log_pis)].reshape(w.shape)
                target = getattr(module, s.param + "_orig", None)  # under a pruning mask: its pruned entries stay 0
                (target if target is not None else getattr(module, s.param)).copy_(
                    torch.from_numpy(snapped).to(w.dtype))
        return _evaluated(model, validate)
    finally:
        model.load_state_dict(saved)


def _examples(batches) -> int:
    """N of Eq. 5: the training set's size, from a DataLoader's dataset or by counting a list's batches."""
    dataset = getattr(batches, "dataset", None)
    if dataset is not None:
        return len(dataset)
    if isinstance(batches, (list, tuple)):
        return sum(len(y) for _, y in batches)
    raise ValueError("soft weight-sharing scales its prior by the training set's size (paper Eq. 5): pass "
                     "dataset_size=N, or batches with a .dataset (a DataLoader) or as a list")


class SoftWeightSharing:
    """Quantizer plug-in: retrain under the mixture prior (``prepare``), then each layer takes its
    weights' component means (module docstring)."""

    needs_data = True
    uses_validation = True  # prepare(..., validate=): the error after post-processing, each epoch

    def __init__(self, components: int = 17, pi_zero: float = 0.999, tau: float = 5e-3, epochs: int = 10,
                 lr: float = 5e-4, lr_means: float = 1e-4, lr_precisions: float = 3e-3, lr_mixing: float = 3e-3,
                 init_std: float = 0.25, merge_kl: float = 1e-2, gamma_zero=GAMMA_ZERO, gamma_other=GAMMA_OTHER,
                 batches: int | None = None, dataset_size: int | None = None, keep_best: bool = False,
                 progress: bool = False):
        if epochs < 0 or tau < 0:
            raise ValueError("epochs and tau must be >= 0")
        self.components, self.pi_zero, self.tau, self.epochs = int(components), float(pi_zero), float(tau), int(epochs)
        self.lrs = dict(weights=float(lr), means=float(lr_means), precisions=float(lr_precisions), mixing=float(lr_mixing))
        self.init_std, self.merge_kl = float(init_std), float(merge_kl)
        self.gamma_zero, self.gamma_other = tuple(gamma_zero), tuple(gamma_other)
        self.batches = None if batches is None else int(batches)  # per epoch; None: the whole training set
        self.dataset_size = None if dataset_size is None else int(dataset_size)  # N; None: counted from batches
        self.keep_best = bool(keep_best)
        self.progress = bool(progress)
        self.best_epoch: int | None = None
        self.mixture: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.history: list[dict] = []
        self.n_train: int | None = None

    # -- retraining --------------------------------------------------------------------------------
    def prepare(self, model: nn.Module, specs: list, batches=None, validate=None) -> None:
        if batches is None:
            raise ValueError("soft weight-sharing retrains the network under its prior: it needs training "
                             "data (a storage-only run has none)")
        if self.keep_best and validate is None:
            raise ValueError("keep_best=True chooses the epoch on a validation split: pass validate=")
        n_train = self.n_train = self.dataset_size or _examples(batches)
        tensors = [tensor_of(model, s) for s in specs]
        top = max(float(t.detach().abs().max()) for t in tensors)
        prior = GaussianMixturePrior(self.components, self.pi_zero,
                                     torch.linspace(-top, top, self.components - 1), self.init_std,
                                     self.gamma_zero, self.gamma_other).to(tensors[0].device)
        opt = torch.optim.Adam([
            {"params": [p for p in model.parameters() if p.requires_grad], "lr": self.lrs["weights"]},
            {"params": [prior.means], "lr": self.lrs["means"]},
            {"params": [prior.log_precisions], "lr": self.lrs["precisions"]},
            {"params": [prior.rhos], "lr": self.lrs["mixing"]}])
        was_training = model.training
        model.train()
        device = tensors[0].device
        best = None  # (validation error after post-processing, epoch, model state, prior state)
        for epoch in range(self.epochs):
            ce_sum, n = 0.0, 0
            for _, (x, y) in zip(range(self.batches) if self.batches else itertools.count(), batches):
                x, y = x.to(device), y.to(device)
                ce = F.cross_entropy(model(x), y)
                weights = [tensor_of(model, s) for s in specs]  # after the forward: through any pruning mask
                loss = ce + self.tau / n_train * prior.neg_log_prob(weights)  # Eq. 5 per example
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                ce_sum, n = ce_sum + float(ce.detach()) * len(y), n + len(y)
            self.history.append(self._summary(epoch + 1, ce_sum / max(n, 1), prior, model, specs))
            if validate is not None:  # the network as trained, then as the post-processing would leave it
                self.history[-1]["val_err"] = round(float(_evaluated(model, validate)), 4)
                err = self.history[-1]["val_err_hard"] = round(float(_post_processed(model, specs, prior,
                                                                                     self.merge_kl, validate)), 4)
                if self.keep_best and (best is None or err < best[0]):
                    best = (err, epoch + 1, _clone(model.state_dict()), _clone(prior.state_dict()))
            if self.progress:
                print(f"soft weight-sharing epoch {epoch + 1}/{self.epochs}: {self.history[-1]}")
        if best is not None:
            self.best_epoch = best[1]
            model.load_state_dict(best[2])
            prior.load_state_dict(best[3])
        model.train(was_training)
        means, logp, log_pis = (t.detach().cpu().numpy() for t in prior.mixture())
        self.mixture = merge_components(means, logp, log_pis, self.merge_kl)

    def _summary(self, epoch, ce, prior, model, specs) -> dict:
        with torch.no_grad():
            m, lp, lpi = (t.cpu().numpy() for t in prior.mixture())
            zero = [most_responsible(tensor_of(model, s).detach().cpu().numpy(), m, lp, lpi) == 0
                    for s in specs]
        return {"epoch": epoch, "train_ce": round(ce, 5),
                "density": round(1.0 - float(sum(z.sum() for z in zero)) / sum(z.size for z in zero), 6)}

    def report(self) -> dict:
        """For the row: each epoch's training cross-entropy and density, and the merged mixture."""
        out: dict = {"history": self.history, "dataset_size": self.n_train}
        if self.best_epoch is not None:
            out["best_epoch"] = self.best_epoch
        if self.mixture is not None:
            m, lp, lpi = self.mixture
            out["components"] = {"mean": [round(float(v), 6) for v in m],
                                 "std": [round(float(v), 6) for v in np.exp(-0.5 * lp)],
                                 "pi": [round(float(v), 6) for v in np.exp(lpi)]}
        return out

    # -- per layer -----------------------------------------------------------------------------------
    def __call__(self, weight: torch.Tensor, bits: int, mask: torch.Tensor | None = None, seed: int = 0,
                 **_layer) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.mixture is None:
            raise RuntimeError("SoftWeightSharing.prepare() must run before the layers are quantized")
        means, logp, log_pis = self.mixture
        if means.size > 2**bits:
            raise ValueError(f"soft weight-sharing kept {means.size} components after merging, more than the "
                             f"{2**bits} codes of {bits} bits: raise quantize.bits to {math.ceil(math.log2(means.size))} "
                             f"or more, or lower the components / raise merge_kl")
        w = weight.detach().cpu().double().flatten()
        labels = torch.from_numpy(most_responsible(w.numpy(), means, logp, log_pis))  # component 0 is at 0
        keep = labels != 0
        if mask is not None:
            keep &= mask.detach().cpu().bool().flatten()
            labels[~keep] = 0
        codebook = torch.zeros(2**bits, dtype=torch.float32)
        codebook[: means.size] = torch.from_numpy(means).float()
        return codebook, labels.view(weight.shape), keep.view(weight.shape)
