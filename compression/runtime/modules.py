"""The modules that take the place of a model's compressed ``nn.Linear`` and ``nn.Conv2d``.

``CompressedLinear`` runs the numba kernels on the layer's compressed layout (batch 1: the
matrix-vector kernel; more rows: the matrix-matrix one). ``CompressedConv2d`` runs each forward
one of two ways:

* ``dense``: decode the layer to fp32 for this call only (a numba pass over the compressed
  layout), then ``torch.nn.functional.conv2d`` (oneDNN); the decoded tensor is freed afterwards,
  so it is never resident.
* ``sparse``: unfold the input (``im2col``: ``[C kh kw, positions]``, already the input-major
  layout the matrix-matrix kernels read) and multiply it by the compressed matrix, per group.

``mode="auto"`` (the default) is a measured rule: the first time a layer sees an input shape
(at the current thread counts), it times both on that very input and keeps the faster for that
shape (:data:`MEASURE` says how). The sparse way is not tried when the unfolded input would
exceed :data:`MAX_UNFOLD_BYTES`.

``CsrLinear`` is the torch path: torch's CSR tensor on any device (MKL on CPU, cuSPARSE on CUDA);
the runtime uses it where the numba kernels cannot run (a non-CPU device), and the network
benchmark as its "torch CSR (decoded)" baseline.

These modules are for inference: they take no gradients.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from compression.runtime.im2col import im2col

MAX_UNFOLD_BYTES = 256 << 20
# How "auto" measures: each way is run once untimed (warm-up), then both are timed REPS times,
# alternating, and the fastest call of each counts (on a shared machine the minimum is the least
# disturbed). A sparse warm-up slower than SLOWER x the dense one ends the measurement early; a
# dense call longer than LONG_S is timed once (a conv layer of VGG-16 at batch 64 takes seconds).
MEASURE = {"reps": 3, "slower": 3.0, "long_s": 0.05}


def _rows(x: torch.Tensor, in_features: int) -> np.ndarray:
    if x.dim() == 2 and x.dtype == torch.float32 and x.device.type == "cpu" and not x.requires_grad:
        return x.numpy()  # the common case, without torch's reshape and detach (microseconds at batch 1)
    if x.device.type != "cpu":
        raise RuntimeError(f"the compressed kernels run on the CPU; got an input on {x.device} "
                           "(load the file with device=... to use torch's CSR there)")
    X = x.detach().reshape(-1, in_features)
    if X.dtype != torch.float32:
        X = X.float()
    return X.numpy()


def _product(weights, a: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """``a @ W.T (+ bias)`` for ``a`` of shape ``[B, in]``: the matrix-vector kernel for one row."""
    if a.shape[0] == 1:
        return weights.mv(a[0] if a.flags.c_contiguous else np.ascontiguousarray(a[0]), bias)[None]
    y = weights.mm(a)
    if bias is not None:
        y += bias
    return y


class CompressedLinear(nn.Module):
    """``y = x W^T + b`` with ``W`` held compressed (a ``BlockWeights`` or ``StreamWeights``)."""

    def __init__(self, weights, bias: torch.Tensor | None, name: str = ""):
        super().__init__()
        self.weights = weights
        self.out_features, self.in_features = weights.shape
        self.name = name
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())
        self._apply(lambda t: t)

    def _apply(self, fn, recurse=True):
        out = super()._apply(fn, recurse)
        # the bias as numpy, sharing its memory (t.numpy() costs ~2 us a call); refreshed when moved
        b = self.bias
        self._bias_np = b.numpy() if b is not None and b.device.type == "cpu" and b.dtype == torch.float32 else None
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self._bias_np if self._bias_np is not None or self.bias is None else self.bias.float().cpu().numpy()
        y = torch.from_numpy(_product(self.weights, _rows(x, self.in_features), bias))
        return y if x.dim() == 2 else y.reshape(*x.shape[:-1], self.out_features)

    @property
    def weight_nbytes(self) -> int:
        """Bytes of the compressed weight held in memory (layout arrays and codebook)."""
        return self.weights.nbytes

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, layout={self.weights.layout}, {self.weights.nbytes:,} B"


class CompressedConv2d(nn.Module):
    """A ``Conv2d`` whose weight is held compressed, one layout per group (see the module docstring)."""

    def __init__(self, parts: list, bias: torch.Tensor | None, conv: nn.Conv2d, name: str = "", mode: str = "auto"):
        super().__init__()
        if mode not in ("auto", "dense", "sparse"):
            raise ValueError(f"conv mode must be auto, dense or sparse, got {mode!r}")
        self.parts, self.name, self.mode = list(parts), name, mode
        for k in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                  "padding_mode", "_reversed_padding_repeated_twice"):
            setattr(self, k, getattr(conv, k))
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())
        self.choices: dict[tuple, str] = {}  # (input shape, torch threads, numba threads) -> way
        self.timings: dict[tuple, dict] = {}

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    @property
    def weight_nbytes(self) -> int:
        return sum(p.nbytes for p in self.parts)

    def decoded_weight(self) -> torch.Tensor:
        w = np.concatenate([p.dense() for p in self.parts]) if len(self.parts) > 1 else self.parts[0].dense()
        return torch.from_numpy(w).reshape(self.weight_shape)

    def _padded(self, x):
        """(input, padding) with a non-zero padding mode or a string padding applied as ``nn.Conv2d`` does."""
        if self.padding_mode != "zeros":
            return F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode), (0, 0)
        if isinstance(self.padding, str):
            return F.pad(x, self._reversed_padding_repeated_twice), (0, 0)
        return x, self.padding

    def forward_dense(self, x: torch.Tensor) -> torch.Tensor:
        x, pad = self._padded(x)
        return F.conv2d(x, self.decoded_weight(), self.bias, self.stride, pad, self.dilation, self.groups)

    def forward_sparse(self, x: torch.Tensor) -> torch.Tensor:
        x, pad = self._padded(x.detach())
        xt, ho, wo = im2col(x.float().numpy(), self.kernel_size, self.stride, pad, self.dilation)  # [C kh kw, N L]
        k = xt.shape[0] // self.groups
        outs = [part.mm(xt[g * k:(g + 1) * k].T).T for g, part in enumerate(self.parts)]  # [out / groups, N L]
        y = outs[0] if len(outs) == 1 else np.concatenate(outs)
        if self.bias is not None:
            y += self.bias.numpy()[:, None]
        n = x.shape[0]
        if n > 1:
            y = y.reshape(self.out_channels, n, ho * wo).transpose(1, 0, 2)
        return torch.from_numpy(np.ascontiguousarray(y)).reshape(n, self.out_channels, ho, wo)

    def unfolded_bytes(self, x: torch.Tensor) -> int:
        n, c, h, w = x.shape
        kk = self.kernel_size[0] * self.kernel_size[1]
        return 4 * n * c * kk * h * w // (self.stride[0] * self.stride[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            raise RuntimeError(f"the compressed kernels run on the CPU; got an input on {x.device}")
        if self.mode != "auto":
            return self.forward_dense(x) if self.mode == "dense" else self.forward_sparse(x)
        from numba import get_num_threads

        key = (tuple(x.shape), torch.get_num_threads(), get_num_threads())
        way = self.choices.get(key)
        if way is None:
            y, self.choices[key], self.timings[key] = self._measure(x)
            return y
        return self.forward_sparse(x) if way == "sparse" else self.forward_dense(x)

    def _measure(self, x):
        def timed(f):
            t0 = time.perf_counter()
            y = f(x)
            return y, time.perf_counter() - t0

        self._warm()
        y, t_dense = timed(self.forward_dense)  # untimed warm-up (first calls at a shape allocate)
        if self.unfolded_bytes(x) > MAX_UNFOLD_BYTES:
            return y, "dense", {"dense_s": t_dense, "sparse_s": None}
        ys, t_sparse = timed(self.forward_sparse)
        if t_sparse > MEASURE["slower"] * t_dense:  # hopeless: do not spend more calls on it
            return y, "dense", {"dense_s": t_dense, "sparse_s": t_sparse}
        reps = 1 if t_dense > MEASURE["long_s"] else MEASURE["reps"]  # a long call varies little
        td, ts = [], []
        for _ in range(reps):  # alternating, so that a burst of load hits both ways alike
            y, t = timed(self.forward_dense)
            td.append(t)
            ys, t = timed(self.forward_sparse)
            ts.append(t)
        t_dense, t_sparse = min(td), min(ts)
        way = "sparse" if t_sparse < t_dense else "dense"
        return (ys if way == "sparse" else y), way, {"dense_s": t_dense, "sparse_s": t_sparse}

    def _warm(self) -> None:
        """Compile (or load from numba's cache) the sparse way's kernels on a toy input, so that the
        measurement times the kernels, not their compilation."""
        c = self.in_channels
        x = np.zeros((2, c, *self.kernel_size), np.float32)
        xt, _, _ = im2col(x, self.kernel_size, (1, 1), (0, 0), (1, 1))
        k = xt.shape[0] // self.groups
        for g, part in enumerate(self.parts):
            part.mm(xt[g * k:(g + 1) * k].T)

    def extra_repr(self) -> str:
        layouts = "+".join(sorted({p.layout for p in self.parts}))
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"groups={self.groups}, layout={layouts}, mode={self.mode}, {sum(p.nbytes for p in self.parts):,} B")


class CsrLinear(nn.Module):
    """``y = x W^T + b`` with ``W`` as a torch CSR tensor (int32 indices) on any device."""

    def __init__(self, labels: np.ndarray, codebook: np.ndarray, bias: torch.Tensor | None, name: str = "",
                 device="cpu"):
        super().__init__()
        labels = np.asarray(labels)
        self.out_features, self.in_features = labels.shape
        self.name = name
        rows, cols = np.nonzero(labels)  # row-major: CSR order
        crow = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=labels.shape[0]))])
        values = np.asarray(codebook, np.float32)[labels[rows, cols]]
        self.weight_csr = torch.sparse_csr_tensor(torch.from_numpy(crow.astype(np.int32)),
                                                  torch.from_numpy(cols.astype(np.int32)),
                                                  torch.from_numpy(values), size=labels.shape).to(device)
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone().to(device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        X = x.reshape(-1, self.in_features).to(self.weight_csr.dtype)
        if X.shape[0] == 1:
            y = torch.mv(self.weight_csr, X[0])[None]
        else:
            y = torch.mm(self.weight_csr, X.t()).t()
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)

    @property
    def weight_nbytes(self) -> int:
        w = self.weight_csr
        return sum(t.numel() * t.element_size() for t in (w.values(), w.col_indices(), w.crow_indices()))

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, csr nnz={self.weight_csr.values().numel():,}"
