"""Optimal Brain Damage (LeCun, Denker, Solla, NIPS 1990): remove the weights of least saliency.

The saliency of weight q is the loss increase a second-order Taylor expansion at a minimum predicts
for setting it to zero, with a diagonal Hessian: ``s_q = 1/2 * H_qq * w_q^2`` (paper.md section 7).
OBD removes the weights of lowest saliency and does not change the others.

``H_qq`` is the diagonal of the Hessian of the training loss (mean cross-entropy), estimated over
``batches`` training batches:

* ``estimator="gauss_newton"`` (default): LeCun's back-propagated second derivatives, which drop the
  terms with the activation's second derivative: the Gauss-Newton diagonal
  ``diag(J^T H_L J)`` with ``H_L = diag(p) - p p^T`` the Hessian of softmax cross-entropy in the
  logits ``z`` and ``J = dz/dw``. Writing ``H_L = sum_c p_c (e_c - p)(e_c - p)^T`` (an exact
  factorization), one backward pass per class gives per-example output gradients ``g_c`` of
  ``sqrt(p_c) (e_c - p) . z``, and ``diag = sum_c (dg_c/dw)^2`` summed over examples, exact for
  ``nn.Linear`` (``(delta^2)^T (x^2)``) and ``nn.Conv2d`` (per-example ``delta @ unfold(x)``,
  squared). For a ReLU network -- piecewise linear in every single weight -- this *is* the Hessian's
  diagonal wherever the loss is twice differentiable (tests/test_criteria.py checks it against
  ``torch.autograd.functional.hessian``).
* ``estimator="hutchinson"``: ``E_v[v * (H v)]`` with Rademacher ``v`` (Hutchinson 1989), from
  Hessian-vector products by double back-propagation, ``samples`` vectors per batch; used for any
  tensor the Gauss-Newton path does not cover (recurrent, embedding, grouped convolutions).

Cost: the Gauss-Newton diagonal takes one backward pass per class and batch (10 per batch for the
LeNets), Hutchinson two per sample.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from compression.prune import Criterion
from compression.specs import LayerSpec

ESTIMATORS = ("gauss_newton", "hutchinson")


def _trainable(module: nn.Module, name: str) -> torch.Tensor:
    """The parameter a pruned (``<name>_orig``) or plain tensor trains through."""
    p = getattr(module, name + "_orig", None)
    return getattr(module, name) if p is None else p


def _exact(module: nn.Module, spec: LayerSpec) -> bool:
    return spec.param == "weight" and (isinstance(module, nn.Linear)
                                        or isinstance(module, nn.Conv2d) and module.groups == 1)


def gauss_newton_diagonal(model: nn.Module, specs: list[LayerSpec], batches, n_batches: int) -> dict[str, torch.Tensor]:
    """The Gauss-Newton diagonal of the mean cross-entropy for every fc/conv spec (module docstring)."""
    layers = {s.name: model.get_submodule(s.module) for s in specs}
    exact = {n: m for n, m in layers.items() if _exact(m, next(s for s in specs if s.name == n))}
    inputs, grads = {}, {}
    hooks = []
    for n, m in exact.items():
        hooks.append(m.register_forward_hook(lambda mod, inp, out, n=n: inputs.__setitem__(n, inp[0].detach())))
        hooks.append(m.register_full_backward_hook(lambda mod, gin, gout, n=n: grads.__setitem__(n, gout[0].detach())))
    diag = {n: torch.zeros_like(_trainable(m, "weight")) for n, m in exact.items()}
    count = 0
    try:
        with warnings.catch_warnings():  # the first layer's input needs no gradient: the hook warns, by design
            warnings.filterwarnings("ignore", "Full backward hook is firing")
            for _, (x, _y) in zip(range(n_batches), batches):
                count += x.shape[0]
                logits = model(x)
                p = torch.softmax(logits.detach(), dim=1)
                for c in range(logits.shape[1]):
                    e = -p.clone()
                    e[:, c] += 1.0
                    v = p[:, c:c + 1].sqrt() * e                       # sqrt(p_c) (e_c - p), per example
                    model.zero_grad(set_to_none=True)
                    (logits * v).sum().backward(retain_graph=c + 1 < logits.shape[1])
                    for n, m in exact.items():
                        diag[n] += _squared_grad(m, inputs[n], grads[n])
    finally:
        for h in hooks:
            h.remove()
        model.zero_grad(set_to_none=True)
    return {n: d / max(count, 1) for n, d in diag.items()}


def _squared_grad(module: nn.Module, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Sum over examples of the squared per-example weight gradient of a Linear or Conv2d layer."""
    if isinstance(module, nn.Linear):
        return (delta ** 2).t() @ (x ** 2)
    patches = nn.functional.unfold(x, module.kernel_size, module.dilation, module.padding, module.stride)
    d = delta.flatten(2)                                          # [N, out, positions]
    per_example = torch.bmm(d, patches.transpose(1, 2))           # [N, out, in * k * k]
    return (per_example ** 2).sum(0).view_as(module.weight)


def hutchinson_diagonal(model: nn.Module, specs: list[LayerSpec], batches, n_batches: int, samples: int = 4,
                        seed: int = 0) -> dict[str, torch.Tensor]:
    """Hutchinson's estimate of the Hessian diagonal of the mean cross-entropy, for any spec tensor."""
    gen = torch.Generator().manual_seed(seed)
    params = {s.name: _trainable(model.get_submodule(s.module), s.param) for s in specs}
    diag = {n: torch.zeros_like(p) for n, p in params.items()}
    taken = 0
    for _, (x, y) in zip(range(n_batches), batches):
        loss = nn.functional.cross_entropy(model(x), y)
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        for i in range(samples):
            vs = [torch.randint(0, 2, p.shape, generator=gen).to(p) * 2 - 1 for p in params.values()]
            hv = torch.autograd.grad(grads, list(params.values()), grad_outputs=vs, retain_graph=i + 1 < samples)
            for n, v, h in zip(params, vs, hv):
                diag[n] += v * h
        taken += samples
    return {n: d / max(taken, 1) for n, d in diag.items()}


class OBD(Criterion):
    """Saliency ``1/2 H_qq w_q^2`` (LeCun et al. 1990) over ``batches`` training batches."""

    needs_data = True

    def __init__(self, batches: int = 8, estimator: str = "gauss_newton", samples: int = 4, seed: int = 0):
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        if batches < 1 or samples < 1:
            raise ValueError("batches and samples must be >= 1")
        self.batches, self.estimator, self.samples, self.seed = int(batches), estimator, int(samples), int(seed)
        self.hessian: dict[tuple[int, str], torch.Tensor] = {}

    def prepare(self, model: nn.Module, specs: list, batches=None) -> None:
        if batches is None:
            raise ValueError("OBD needs training data (its Hessian diagonal): it cannot run storage-only")
        batches = list(b for _, b in zip(range(self.batches), batches))
        training = model.training
        model.eval()  # no dropout noise in the curvature; BatchNorm with its running statistics
        try:
            diag = {}
            if self.estimator == "gauss_newton":
                diag = gauss_newton_diagonal(model, specs, iter(batches), self.batches)
            rest = [s for s in specs if s.name not in diag]
            if rest:
                diag.update(hutchinson_diagonal(model, rest, iter(batches), self.batches, self.samples, self.seed))
        finally:
            model.train(training)
        self.hessian = {(id(model.get_submodule(s.module)), s.param): diag[s.name] for s in specs}

    def scores(self, module: nn.Module, name: str) -> torch.Tensor:
        w = getattr(module, name).detach()
        return 0.5 * self.hessian[id(module), name] * w ** 2
