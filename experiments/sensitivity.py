"""Per-layer pruning sensitivity (LWC Fig. 6): prune one layer at a time, no retraining,
and measure the error on the validation split.

    python -m experiments.sensitivity +experiment=lenet300                       # trains the dense model first
    python -m experiments.sensitivity +experiment=lenet5 sensitivity.checkpoint=outputs/.../dense.pt

Writes ``results/sensitivity/<experiment>_<dataset>.csv`` (one line per layer and density)
and ``.png``/``.pdf`` (accuracy vs fraction pruned, one line per layer, conv and fc panels).
"""

from __future__ import annotations

import copy
import csv
import io
import logging
import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from compression.atomic import atomic_write_bytes
from compression.prune import magnitude_prune
from compression.specs import module_of, specs_of
from experiments.config import register_configs
from experiments.errors import UserError
from experiments.models import load_checkpoint

log = logging.getLogger(__name__)


@torch.no_grad()
def val_error(model: torch.nn.Module, loader) -> float:
    model.eval()
    wrong = total = 0
    for x, y in loader:
        wrong += int((model(x).argmax(1) != y).sum())
        total += y.numel()
    return 100.0 * wrong / total


def sensitivity(model: torch.nn.Module, loader, densities: list[float]) -> list[dict]:
    """Rows {layer, kind, density, fraction_pruned, val_top1_err} (plus a density-1.0 baseline per layer)."""
    base = val_error(model, loader)
    rows = []
    for spec in specs_of(model):
        name, kind = spec.name, spec.kind
        rows.append({"layer": name, "kind": kind, "density": 1.0, "fraction_pruned": 0.0, "val_top1_err": base})
        for d in densities:
            m = copy.deepcopy(model)
            magnitude_prune(module_of(m, spec), spec.param, density=d)
            rows.append({"layer": name, "kind": kind, "density": d, "fraction_pruned": round(1 - d, 6),
                         "val_top1_err": val_error(m, loader)})
        log.info("%s: %s", name, ", ".join(f"{r['density']:.2f}:{r['val_top1_err']:.1f}" for r in rows if r["layer"] == name))
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def plot(rows: list[dict], title: str, stem: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 4), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for layer in dict.fromkeys(r["layer"] for r in rows if r["kind"] == kind):
            pts = sorted((r["fraction_pruned"], 100 - r["val_top1_err"]) for r in rows if r["layer"] == layer)
            ax.plot([100 * p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=layer)
        ax.set_xlabel("parameters pruned away (%)")
        ax.set_ylabel("validation accuracy (%)")
        ax.set_title(f"{kind} layers")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title + "\n(prune one layer at a time, no retraining; cf. LWC Fig. 6)", fontsize=10)
    fig.tight_layout()
    out = []
    for ext in ("png", "pdf"):
        p = stem.with_suffix("." + ext)
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=150)
        atomic_write_bytes(p, buf.getvalue())
        out.append(p)
    plt.close(fig)
    return out


def run_sensitivity(cfg: DictConfig) -> Path:
    from experiments.pipeline import Run, dense_stage  # noqa: F401  (Run: the context every stage uses)

    run = Run(cfg)
    s = cfg.sensitivity
    if s.checkpoint:
        load_checkpoint(run.model, s.checkpoint)
    else:
        dense_stage(run)
    rows = sensitivity(run.model, run.dm.val_dataloader(), list(s.densities))
    stem = Path(cfg.paths.results_dir) / "sensitivity" / f"{cfg.experiment}_{run.dm.name}"
    write_csv(rows, stem.with_suffix(".csv"))
    plot(rows, f"{run.conf.model['name']} on {run.dm.name}: per-layer sensitivity", stem)
    print(f"wrote {stem}.csv, .png, .pdf")
    return stem


register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        run_sensitivity(cfg)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
