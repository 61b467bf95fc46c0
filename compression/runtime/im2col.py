"""``im2col``: a convolution's input unfolded into the input-major matrix the sparse kernels read.

Row ``(c, i, j)`` (channel, kernel row, kernel column: the order of a ``Conv2d`` weight's
flattened inputs) holds, for every image ``n`` and output position ``(oy, ox)``, the input pixel
that kernel tap sees: ``x[n, c, oy * stride - pad + i * dilation, ...]``, 0 in the padding. The
columns run over ``(n, oy, ox)``, so one output channel's row of the product is its feature maps
of all images side by side. It does what ``torch.nn.functional.unfold`` does (followed by a
transpose for a batch), in one pass; torch's took 35-75 microseconds on LeNet-5's small inputs.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from compression.kernels import _JIT


@njit(parallel=True, **_JIT)
def _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo):
    n, c, h, w = x.shape
    L = ho * wo
    out = np.empty((c * kh * kw, n * L), np.float32)
    for row in prange(c * kh * kw):
        ci = row // (kh * kw)
        i = (row // kw) % kh
        j = row % kw
        for b in range(n):
            for oy in range(ho):
                iy = oy * sh - ph + i * dh
                base = b * L + oy * wo
                if iy < 0 or iy >= h:
                    for ox in range(wo):
                        out[row, base + ox] = 0.0
                    continue
                for ox in range(wo):
                    ix = ox * sw - pw + j * dw
                    out[row, base + ox] = x[b, ci, iy, ix] if 0 <= ix < w else np.float32(0.0)
    return out


def output_size(h: int, w: int, kernel, stride, padding, dilation) -> tuple[int, int]:
    return ((h + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1,
            (w + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1)


def im2col(x: np.ndarray, kernel, stride, padding, dilation) -> tuple[np.ndarray, int, int]:
    """``x``: ``[N, C, H, W]`` float32 -> ``([C kh kw, N ho wo], ho, wo)``."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    ho, wo = output_size(x.shape[2], x.shape[3], kernel, stride, padding, dilation)
    return _im2col(x, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1], dilation[0],
                   dilation[1], ho, wo), ho, wo
