"""Optimal Brain Surgeon (Hassibi, Stork, NIPS 1993), layer-wise (Dong, Chen, Pan, NIPS 2017).

Removing weight q costs ``L_q = w_q^2 / (2 [H^-1]_qq)`` and the other weights are corrected by
``dw = -(w_q / [H^-1]_qq) H^-1 e_q`` (paper.md section 7). The full network Hessian is out of reach
beyond toy sizes, so each layer uses the Hessian of its own reconstruction error,
``H = 2 X X^T / n + lambda I`` over its ``n`` inputs ``X`` (d x n; for a conv layer the unfolded input
patches), with dampening ``lambda = damp * mean(diag(2 X X^T / n))``. Every output row of the weight
shares this H and is an independent least-squares problem.

Per row, weights are removed greedily, one at a time, with the rank-one update of ``H^-1`` that
removes q (Optimal Brain Compression, Frantar, Singh, Alistarh, NeurIPS 2022):
``H^-1 <- H^-1 - H^-1 e_q e_q^T H^-1 / [H^-1]_qq``. Rows run in parallel as batched tensors, in
blocks of ``block`` rows. Each row runs to its last weight, recording the loss increase of every
step; the layer's budget is then met by the smallest increases over all rows (OBC's global
selection: a row's increases grow as it loses weights), and each row's surviving weights take the
exact OBS correction for the set it loses, ``w_K <- w_K + H_KK^-1 H_KS w_S`` (the minimizer of the
reconstruction error with ``w_S = 0``; the greedy rank-one steps reach the same point).

Cost for a layer of d inputs and r rows: H takes ``d^2 n`` to accumulate and ``d^3/3`` to invert
once (rows start alive); the greedy pass about ``r d^3 / 3`` multiply-adds (compacted as rows shrink,
``greedy_costs``) moving up to ``block * d^2`` floats per step, memory ``block * d^2 * 4`` bytes; the
final solves ``r |K|^3 / 3``. LeNet-300-100's ip1 (d = 784, r = 300): 4.8e10 multiply-adds, ~80 MB
per block of 32 rows (benchmarks/bench_obs.py measures it). AlexNet's fc6 (d = 9,216, r = 4,096):
1.1e15 multiply-adds and 340 MB per row's inverse -- about 11 GB for a block of 32 rows and days of
CPU: out of reach here, which is why OBC and its successors prune such layers in blocks of columns
or with approximations.
"""

from __future__ import annotations

import torch
from torch import nn

from compression.prune import Criterion, current_mask


def _inputs_matrix(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's inputs as columns of X (d x n): fc inputs, or a conv layer's unfolded patches."""
    if isinstance(module, nn.Linear):
        return x.reshape(-1, x.shape[-1]).t()
    if isinstance(module, nn.Conv2d) and module.groups == 1:
        p = nn.functional.unfold(x, module.kernel_size, module.dilation, module.padding, module.stride)
        return p.transpose(0, 1).reshape(p.shape[1], -1)
    raise ValueError(f"layer-wise OBS handles Linear and ungrouped Conv2d layers, not {type(module).__name__}")


def layer_hessians(model: nn.Module, specs: list, batches, n_batches: int) -> dict[str, torch.Tensor]:
    """``2 X X^T / n`` (float64) for every spec, from its inputs over ``n_batches`` batches."""
    sums, counts, hooks = {}, {}, []
    for s in specs:
        m = model.get_submodule(s.module)
        if s.param != "weight":
            raise ValueError(f"layer-wise OBS prunes a module's weight, not {s.param!r} ({s.name})")

        def hook(mod, inp, out, name=s.name):
            X = _inputs_matrix(mod, inp[0].detach()).double()
            sums[name] = sums.get(name, 0) + X @ X.t()
            counts[name] = counts.get(name, 0) + X.shape[1]
        hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            for _, (x, _y) in zip(range(n_batches), batches):
                model(x)
    finally:
        for h in hooks:
            h.remove()
    return {n: 2.0 * sums[n] / counts[n] for n in sums}


def greedy_costs(W: torch.Tensor, Hinv: torch.Tensor, alive: torch.Tensor, block: int = 32,
                 compact_every: float = 0.8):
    """Per row, the greedy OBS removal order and the loss increase of each step (module docstring).

    ``W`` [r, d] (its dtype is the pass's), ``Hinv`` [d, d] the inverse of the (dampened) H over all
    inputs, ``alive`` [r, d] bool. Returns ``order`` [r, d] (input indices in removal order; dead ones
    first, at zero cost) and ``cost`` [r, d] (``w_q^2 / (2 [H^-1]_qq)`` at the step q is removed).

    Rows advance in lockstep, one removal per step. From the step where every row has passed its
    dead inputs on, all rows have the same number of inputs left, so the block's inverses are
    compacted to the surviving inputs whenever they shrink below ``compact_every`` of their size:
    the rank-one updates then cost sum_k (d - k)^2 ~ d^3 / 3 per row instead of d^3.
    """
    r, d = W.shape
    order = torch.empty(r, d, dtype=torch.long)
    cost = torch.zeros(r, d, dtype=W.dtype)
    for b0 in range(0, r, block):
        w = W[b0:b0 + block].clone()
        a = alive[b0:b0 + block].clone()
        B = w.shape[0]
        rows = torch.arange(B)
        dead = (~a).sum(1)
        k_uniform = int(dead.max())  # from this step on every row has d - k inputs left
        Hi = _restricted_inverse(Hinv, a).to(w.dtype)
        idx = torch.arange(d).expand(B, d)  # original input index of each compact column
        # the dead weights come first, in index order, at no cost (they are zero and stay zero)
        first = torch.sort((~a).to(torch.int8), dim=1, descending=True, stable=True).indices
        for k in range(d):
            m = Hi.shape[1]
            if k >= k_uniform and d - k <= compact_every * m and d - k > 0:
                keep = a.nonzero()[:, 1].view(B, d - k)
                Hi = Hi[rows[:, None, None], keep[:, :, None], keep[:, None, :]]
                w, idx = w.gather(1, keep), idx.gather(1, keep)
                a = torch.ones(B, d - k, dtype=torch.bool)
            live = k >= dead  # rows whose k-th removal is a live weight
            if not bool(live.any()):
                order[b0:b0 + B, k] = first[:, k]
                continue
            sal = w ** 2 / (2.0 * torch.diagonal(Hi, dim1=1, dim2=2).clamp_min(1e-30))
            sal = sal.masked_fill(~a, float("inf"))
            q = sal.argmin(1)
            order[b0:b0 + B, k] = torch.where(live, idx[rows, q], first[:, k])
            cost[b0:b0 + B, k] = torch.where(live, sal[rows, q], torch.zeros_like(sal[:, 0]))
            col = Hi[rows, q, :]                                          # [B, m]: H^-1 e_q per row (symmetric)
            hqq = col[rows, q].clamp_min(1e-30)
            upd = live.to(w.dtype)
            w -= (upd * w[rows, q] / hqq)[:, None] * col                  # OBS correction of the others
            w[rows[live], q[live]] = 0.0
            Hi.baddbmm_((col * (upd / hqq)[:, None])[:, :, None], col[:, None, :], alpha=-1.0)  # remove q, in place
            a[rows[live], q[live]] = False
    return order, cost


def _restricted_inverse(Hinv: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """Per row: the inverse of H restricted to its alive inputs, embedded with zeros elsewhere."""
    B, d = alive.shape
    if bool(alive.all()):
        return Hinv.expand(B, d, d).clone()
    H = torch.linalg.inv(Hinv)
    Hb = H.expand(B, d, d).clone()
    keep = alive[:, :, None] & alive[:, None, :]
    eye = torch.eye(d, dtype=H.dtype).expand(B, d, d)
    Hb = torch.where(keep, Hb, eye)                                       # dead inputs decoupled
    out = torch.linalg.inv(Hb)
    return out * keep                                                     # and removed from the inverse


def select(cost: torch.Tensor, alive: torch.Tensor, keep: int) -> torch.Tensor:
    """How many weights each row loses: the layer's ``alive - keep`` smallest steps over all rows,
    taken as prefixes of each row's greedy order (cumulative maximum makes each row's costs monotone)."""
    r, d = cost.shape
    dead = (~alive).sum(1)
    remove = int(alive.sum()) - int(keep)
    if remove <= 0:
        return dead.clone()
    c = torch.cummax(cost, dim=1).values
    live_step = torch.arange(d)[None, :] >= dead[:, None]
    c = c.masked_fill(~live_step, float("-inf"))
    flat = torch.topk(c.flatten(), int(dead.sum()) + remove, largest=False).indices
    counts = torch.bincount(flat // d, minlength=r)
    return counts


def solve_survivors(W: torch.Tensor, H: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """Each row with its removed inputs at zero and the survivors corrected exactly:
    ``w_K + H_KK^-1 H_KS w_S`` (the least-squares optimum of the reconstruction with ``w_S = 0``)."""
    out = torch.zeros_like(W)
    for i in range(W.shape[0]):
        S = removed[i]
        K = ~S
        if not bool(K.any()):
            continue
        wS = W[i, S]
        rhs = H[K][:, S] @ wS if bool(S.any()) else torch.zeros(int(K.sum()), dtype=W.dtype)
        out[i, K] = W[i, K] + torch.linalg.solve(H[K][:, K], rhs)
    return out


class OBS(Criterion):
    """Layer-wise Optimal Brain Surgeon with greedy per-row removal and exact correction (module docstring)."""

    needs_data = True
    per_block = False

    def __init__(self, batches: int = 8, damp: float = 0.01, block: int = 32):
        if batches < 1 or damp <= 0 or block < 1:
            raise ValueError("OBS needs batches >= 1, damp > 0 and block >= 1")
        self.batches, self.damp, self.block = int(batches), float(damp), int(block)
        self.hessians: dict[tuple[int, str], torch.Tensor] = {}
        self.saliency: dict[tuple[int, str], torch.Tensor] = {}

    def prepare(self, model: nn.Module, specs: list, batches=None) -> None:
        if batches is None:
            raise ValueError("OBS needs training data (its layer inputs): it cannot run storage-only")
        training = model.training
        model.eval()
        try:
            hs = layer_hessians(model, specs, batches, self.batches)
        finally:
            model.train(training)
        self.hessians = {}
        for s in specs:
            H = hs[s.name]
            H = H + self.damp * H.diagonal().mean() * torch.eye(H.shape[0], dtype=H.dtype)
            self.hessians[id(model.get_submodule(s.module)), s.param] = H

    def prune(self, module: nn.Module, name: str, keep: int) -> None:
        from torch.nn.utils import prune as torch_prune

        if not isinstance(keep, int):
            raise ValueError("OBS prunes whole tensors: run it without prune.per_block")
        H = self.hessians[id(module), name]
        w_eff = getattr(module, name).detach()
        shape = w_eff.shape
        W = w_eff.reshape(shape[0], -1).double()
        alive = current_mask(module, name).reshape(shape[0], -1).bool()
        # the greedy pass in float32 (its rank-one steps move block * d^2 floats each); the final solve in float64
        order, cost = greedy_costs(W.float(), torch.linalg.inv(H), alive, self.block)
        counts = select(cost, alive, keep)
        steps = torch.arange(W.shape[1])[None, :] < counts[:, None]
        removed = torch.zeros_like(alive)
        removed.scatter_(1, order, steps)
        removed |= ~alive
        new_w = solve_survivors(W, H, removed)
        mask = (~removed).reshape(shape)
        self.saliency[id(module), name] = cost
        torch_prune.custom_from_mask(module, name, mask)
        with torch.no_grad():
            getattr(module, name + "_orig").copy_(new_w.reshape(shape).to(w_eff.dtype))
            setattr(module, name, getattr(module, name + "_orig") * getattr(module, name + "_mask"))
