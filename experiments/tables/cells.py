"""How the tables print numbers: the paper's units and roundings."""

from __future__ import annotations

from experiments import paper_values as pv

NA = "n/a"
ARROW = " → "
DATASET_NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "mnist_sample": "MNIST sample (5,000 digits)",
                 "imagenet": "ImageNet", "fake_imagenet": "fake ImageNet (random images)", "none": "no data"}


def get(d: dict | None, *keys):
    for k in keys:
        if not isinstance(d, dict) or d.get(k) is None:
            return None
        d = d[k]
    return d


def dataset(row: dict) -> str:
    ds = row.get("dataset")
    return DATASET_NAMES.get(ds, str(ds))


def err(x) -> str:
    return NA if x is None else f"{x:.2f}%"


def delta(ours, paper) -> str:
    return NA if ours is None or paper is None else f"{ours - paper:+.2f}"


def size(nbytes, unit: str) -> str:
    if nbytes is None:
        return NA
    v = nbytes / (pv.KB if unit == "KB" else pv.MB)
    digits = 0 if v >= 100 else 1 if v >= 10 else 2
    return f"{v:.{digits}f} {unit}"


def count(n) -> str:
    """Weights like the paper: 235.2K, 0.5K, 1K, 37.7M."""
    if n is None:
        return NA
    v, unit = (n / 1e6, "M") if n >= 1e6 else (n / 1e3, "K")
    s = f"{v:.1f}"
    return (s[:-2] if s.endswith(".0") else s) + unit


def bits(x) -> str:
    if x is None:
        return NA
    return f"{x:.2f}".rstrip("0").rstrip(".")  # 6 -> "6", 4.4 -> "4.4", 4.3506 -> "4.35", like the paper


def pct(x, digits: int = 2) -> str:
    return NA if x is None else f"{x:.{digits}f}%"


def rate(x) -> str:
    return NA if x is None else f"{x:.1f}×"


def run_label(row: dict) -> str:
    commit = (row.get("git_commit") or "unknown")[:7]
    return f"`{row.get('run_id')}` (commit `{commit}`)"


def variant_note(name: str, label: str) -> str | None:
    """A note for a line whose row is not the experiment file's recipe (ours, beyond the papers)."""
    if not label:
        return None
    return f"{name}: a variant of the experiment's config, `{label}` (ours, not the papers' recipe)."
