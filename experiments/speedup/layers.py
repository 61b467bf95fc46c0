"""The benchmarked layers: the paper's six fc shapes and densities, or a real checkpoint's.

Every layer is prepared once in every format, all holding the *same* matrix: the pruned
weights quantized to a codebook (index 0 = 0.0, then ``2**bits - 1`` centroids), so dense,
CSR and compressed-format products can be compared element by element.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from compression.sparse_format import encode_relative

# (network, layer, out_features, in_features, density, index_bits); DC Tables 4-5 densities,
# 4-bit gaps for AlexNet (as its table) and 5-bit for VGG-16, 5-bit fc codebooks for both.
PAPER_LAYERS = [
    ("alexnet", "fc6", 4096, 9216, 0.09, 4),
    ("alexnet", "fc7", 4096, 4096, 0.09, 4),
    ("alexnet", "fc8", 1000, 4096, 0.25, 4),
    ("vgg16", "fc6", 4096, 25088, 0.04, 5),
    ("vgg16", "fc7", 4096, 4096, 0.04, 5),
    ("vgg16", "fc8", 1000, 4096, 0.23, 5),
]
WEIGHT_BITS = 5

# DC Table 8, Core i7-5930K, time per input in microseconds (MKL GEMV/GEMM vs CSRMV/CSRMM).
PAPER_I7_US = {
    ("alexnet", "fc6"): dict(dense_b1=7516.2, sparse_b1=3066.5, dense_b64=318.4, sparse_b64=1417.6),
    ("alexnet", "fc7"): dict(dense_b1=6187.1, sparse_b1=1282.1, dense_b64=188.9, sparse_b64=682.1),
    ("alexnet", "fc8"): dict(dense_b1=1134.9, sparse_b1=890.5, dense_b64=45.8, sparse_b64=407.7),
    ("vgg16", "fc6"): dict(dense_b1=35022.8, sparse_b1=3774.3, dense_b64=1056.0, sparse_b64=1780.3),
    ("vgg16", "fc7"): dict(dense_b1=5372.8, sparse_b1=545.1, dense_b64=188.3, sparse_b64=274.9),
    ("vgg16", "fc8"): dict(dense_b1=774.2, sparse_b1=777.3, dense_b64=45.7, sparse_b64=363.1),
}
# DC Table 8, Titan X (cuBLAS GEMV/GEMM vs cuSPARSE CSRMV/CSRMM), same units.
PAPER_TITANX_US = {
    ("alexnet", "fc6"): dict(dense_b1=541.5, sparse_b1=134.8, dense_b64=19.8, sparse_b64=94.6),
    ("alexnet", "fc7"): dict(dense_b1=243.0, sparse_b1=65.8, dense_b64=8.9, sparse_b64=51.5),
    ("alexnet", "fc8"): dict(dense_b1=80.5, sparse_b1=54.6, dense_b64=5.9, sparse_b64=23.2),
    ("vgg16", "fc6"): dict(dense_b1=1467.8, sparse_b1=167.0, dense_b64=53.6, sparse_b64=121.5),
    ("vgg16", "fc7"): dict(dense_b1=243.0, sparse_b1=39.8, dense_b64=8.9, sparse_b64=24.4),
    ("vgg16", "fc8"): dict(dense_b1=80.5, sparse_b1=48.0, dense_b64=5.9, sparse_b64=22.0),
}


def linear_codebook(values: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Codebook ``[0.0, c_1 .. c_{K-1}]`` with the ``K - 1`` centroids evenly spaced between the
    survivors' min and max (DC's linear initialization, no k-means iterations: enough for
    timing), and each survivor's nearest-centroid label in ``1..K-1``. No centroid is 0.0,
    so every survivor stays a stored non-zero.
    """
    k = 1 << bits
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return np.zeros(k, np.float32), np.zeros(0, np.uint8)
    lo, hi = float(values.min()), float(values.max())
    cents = np.linspace(lo, hi, k - 1) if hi > lo else np.full(k - 1, lo)
    tiny = max(abs(lo), abs(hi), 1e-30) * 1e-6
    cents = np.where(cents == 0.0, tiny, cents)
    mids = (cents[1:] + cents[:-1]) / 2
    labels = np.searchsorted(mids, values) + 1
    codebook = np.concatenate([[0.0], cents]).astype(np.float32)
    return codebook, labels.astype(np.uint8 if k <= 256 else np.uint16)


@dataclass
class Layer:
    network: str
    name: str
    out_features: int
    in_features: int
    index_bits: int
    weight_bits: int
    source: str  # "random" or "checkpoint:<path>"
    dense: np.ndarray  # float32 [out, in], the quantized matrix
    codebook: np.ndarray  # float32 [K], codebook[0] == 0
    symbols: np.ndarray  # encode_relative output, uint8
    gaps: np.ndarray  # encode_relative output, uint8
    indptr: np.ndarray  # CSR int32
    indices: np.ndarray  # CSR int32
    data: np.ndarray  # CSR float32
    target_density: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.out_features, self.in_features)

    @property
    def nnz(self) -> int:
        return int(self.data.size)

    @property
    def density(self) -> float:
        return self.nnz / float(self.out_features * self.in_features)

    @property
    def entries(self) -> int:
        return int(self.symbols.size)

    @property
    def fillers(self) -> int:
        return self.entries - self.nnz


def prepare_layer(network: str, name: str, labels: np.ndarray, codebook: np.ndarray, index_bits: int,
                  weight_bits: int, source: str, target_density: float | None = None) -> Layer:
    """Every format of one layer from its ``[out, in]`` labels (0 = pruned) and codebook."""
    labels = np.ascontiguousarray(labels)
    out_f, in_f = labels.shape
    codebook = np.asarray(codebook, dtype=np.float32)
    if codebook[0] != 0.0:
        raise ValueError("codebook[0] must be 0.0 (pruned weights and fillers)")
    dense = codebook[labels]
    rows, cols = np.nonzero(labels)  # row-major order
    indptr = np.zeros(out_f + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=out_f), out=indptr[1:])
    if indptr[-1] >= 2**31:
        raise ValueError("layer too large for int32 CSR indices")
    symbols, gaps = encode_relative(labels.reshape(-1), index_bits)
    return Layer(network=network, name=name, out_features=out_f, in_features=in_f, index_bits=index_bits,
                 weight_bits=weight_bits, source=source, dense=dense, codebook=codebook,
                 symbols=symbols, gaps=gaps, indptr=indptr.astype(np.int32), indices=cols.astype(np.int32),
                 data=dense[rows, cols].astype(np.float32), target_density=target_density)


def random_layer(network: str, name: str, out_f: int, in_f: int, density: float, index_bits: int,
                 weight_bits: int = WEIGHT_BITS, seed: int = 0) -> Layer:
    """A uniformly random mask at ``density`` with normal weights, quantized to the codebook."""
    rng = np.random.default_rng(seed)
    mask = rng.random((out_f, in_f), dtype=np.float32) < density
    values = rng.standard_normal(int(mask.sum()), dtype=np.float32) * 0.01
    codebook, lab = linear_codebook(values, weight_bits)
    labels = np.zeros((out_f, in_f), lab.dtype if lab.size else np.uint8)
    labels[mask] = lab
    return prepare_layer(network, name, labels, codebook, index_bits, weight_bits, "random", density)


def weight_layer(network: str, name: str, weight: np.ndarray, index_bits: int,
                 weight_bits: int = WEIGHT_BITS, source: str = "checkpoint") -> Layer:
    """A real (pruned) weight matrix: its zeros are the mask, its survivors get a linear codebook."""
    weight = np.asarray(weight, dtype=np.float32).reshape(weight.shape[0], -1)
    mask = weight != 0
    codebook, lab = linear_codebook(weight[mask], weight_bits)
    labels = np.zeros(weight.shape, lab.dtype if lab.size else np.uint8)
    labels[mask] = lab
    return prepare_layer(network, name, labels, codebook, index_bits, weight_bits, source)


def paper_layers(seed: int = 0, only: list[str] | None = None):
    """Yield the six random layers one at a time (VGG fc6 alone is 411 MB dense)."""
    for i, (net, name, o, n, d, b) in enumerate(PAPER_LAYERS):
        if only and f"{net}.{name}" not in only and name not in only:
            continue
        yield random_layer(net, name, o, n, d, b, seed=seed + i)


def checkpoint_layers(path: str):
    """Yield the fc layers of a saved AlexNet / VGG-16 (or any model's 2-D ``*.weight``).

    Accepts a state_dict or a Lightning checkpoint (``state_dict`` key, ``model.`` prefix);
    pruning re-parametrizations (``weight_orig`` * ``weight_mask``) and the project's
    weight-sharing parametrization (codebook ``original`` + ``labels`` [+ ``mask``]) are
    folded into the effective weight first.
    """
    import torch

    state = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and "state_dict" in state:
        state = {k.removeprefix("model."): v for k, v in state["state_dict"].items()}
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state_dict")

    def effective(prefix: str):
        if f"{prefix}.weight" in state:
            return state[f"{prefix}.weight"]
        if f"{prefix}.weight_orig" in state:
            w = state[f"{prefix}.weight_orig"]
            m = state.get(f"{prefix}.weight_mask")
            return w if m is None else w * m
        pk = f"{prefix}.parametrizations.weight"
        if f"{pk}.original" in state:
            orig = state[f"{pk}.original"]
            labels = state.get(f"{pk}.0.labels")
            if labels is None:
                return orig
            w = orig[labels.long()]
            m = state.get(f"{pk}.0.mask")
            return w if m is None else w * m
        return None

    from compression.architecture import model_class
    from compression.specs import specs_of

    for net, target, bits in (("vgg16", "experiments.models.vgg.VGG16", 5),
                              ("alexnet", "experiments.models.alexnet.AlexNetCaffe", 4),
                              ("alexnet", "experiments.models.alexnet.AlexNet", 4)):
        with torch.device("meta"):  # the layer specs only: no memory for 61M / 138M weights
            specs = {s.name: s for s in specs_of(model_class(target)())}
        ws = {n: effective(specs[n].module) for n in ("fc6", "fc7", "fc8")}
        if all(w is not None and w.dim() == 2 for w in ws.values()):
            if net == "vgg16" and ws["fc6"].shape[1] != 25088:
                continue
            for n, w in ws.items():
                yield weight_layer(net, n, w.detach().float().numpy(), bits, source=f"checkpoint:{path}")
            return
    prefixes = sorted({k.rsplit(".", 1)[0] for k in state if k.endswith((".weight", ".weight_orig"))}
                      | {k.split(".parametrizations.")[0] for k in state if ".parametrizations.weight." in k})
    found = False
    for p in prefixes:
        w = effective(p)
        if w is not None and w.dim() == 2:
            found = True
            yield weight_layer("checkpoint", p, w.detach().float().numpy(), 5, source=f"checkpoint:{path}")
    if not found:
        raise ValueError(f"{path}: no 2-D weight tensors found")
