"""DC Fig. 9 style speedup bars and a Fig. 10 style energy estimate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.speedup.bench import geomean
from experiments.speedup.layers import PAPER_I7_US

BARS = [("csr_torch", "CSR, torch/MKL", "#4c72b0"), ("csr_blocked_torch", "CSR column-blocked, torch/MKL", "#27466f"),
        ("csr_scipy", "CSR, scipy", "#8fa8d0"),
        ("csr_numba", "CSR, numba", "#55a868"), ("csr_blocked_numba", "CSR column-blocked, numba", "#2d7a45"),
        ("relative_numba", "compressed, relative stream, numba", "#c44e52"),
        ("grouped_numba", "compressed, weight-grouped, numba", "#8c1c20")]
PAPER_COLOR = "#999999"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path, stem: str) -> list[Path]:
    paths = []
    for ext in ("png", "pdf"):
        p = out / f"{stem}.{ext}"
        fig.savefig(p, dpi=150, bbox_inches="tight")
        paths.append(p)
    return paths


def speedup_figure(rows: list[dict], out: Path, cache: str, title_extra: str = "") -> list[Path]:
    """Speedup over dense (dense = 1, as DC Fig. 9 normalizes to CPU dense), batch 1 and 64,
    our kernels beside the paper's i7 CSR; ticks mark each format's bandwidth bound."""
    plt = _plt()
    rows = [r for r in rows if r["device"] == "cpu" and r["cache"] == cache]
    batches = sorted({r["batch"] for r in rows})
    layers = list(dict.fromkeys((r["network"], r["layer"]) for r in rows))
    fig, axes = plt.subplots(1, len(batches), figsize=(7.2 * len(batches), 4.6), squeeze=False)
    for ax, batch in zip(axes[0], batches):
        groups = [f"{n}\n{l}" for n, l in layers] + ["geo.\nmean"]
        nb = len(BARS) + 1
        width = 0.8 / nb
        xs = np.arange(len(groups))
        for j, (k, label, color) in enumerate(BARS):
            vals, bounds = [], []
            for n, l in layers:
                r = next((r for r in rows if (r["network"], r["layer"], r["batch"], r["kernel"]) == (n, l, batch, k)), None)
                vals.append(r["speedup_vs_dense"] if r else np.nan)
                bounds.append(r["bandwidth_bound_speedup"] if r else np.nan)
            vals.append(geomean([v for v in vals if np.isfinite(v)]))
            bounds.append(geomean([v for v in bounds if np.isfinite(v)]))
            pos = xs - 0.4 + width * (j + 0.5)
            ax.bar(pos, vals, width, label=label, color=color)
            if batch == 1:
                ax.scatter(pos, bounds, marker="_", s=120, color="black", zorder=3,
                           label="bandwidth bound" if j == 0 else None)
            for p, v in zip(pos, vals):
                if np.isfinite(v):
                    ax.text(p, v * 1.04, f"{v:.1f}", ha="center", va="bottom", fontsize=6, rotation=90)
        paper = []
        for n, l in layers:
            p = PAPER_I7_US.get((n, l))
            paper.append(p[f"dense_b{batch}"] / p[f"sparse_b{batch}"] if p and f"dense_b{batch}" in p else np.nan)
        finite = [v for v in paper if np.isfinite(v)]
        paper.append(geomean(finite) if finite else np.nan)
        pos = xs - 0.4 + width * (len(BARS) + 0.5)
        ax.bar(pos, paper, width, label="paper: i7-5930K MKL CSR (DC Table 8)", color=PAPER_COLOR, hatch="//")
        for p, v in zip(pos, paper):
            if np.isfinite(v):
                ax.text(p, v * 1.04, f"{v:.1f}", ha="center", va="bottom", fontsize=6, rotation=90)
        ax.axhline(1.0, color="black", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_xticks(xs, groups, fontsize=8)
        ax.set_ylabel("speedup over dense (dense = 1)")
        ax.set_title(f"batch {batch}, {cache} cache" + (" (ticks: bandwidth bound)" if batch == 1 else ""),
                     fontsize=10)
        ax.set_ylim(0.1, 40)
        ax.grid(axis="y", which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=(len(labels) + 1) // 2, bbox_to_anchor=(0.5, -0.12))
    if title_extra:
        fig.suptitle(title_extra.strip(", "), fontsize=9)
    fig.tight_layout()
    paths = _save(fig, out, f"fig9_speedup_{cache}")
    plt.close(fig)
    return paths


def energy_figure(rows: list[dict], out: Path, sram_mb: list[float]) -> list[Path]:
    """(a) per network, paper sizes: dense all-DRAM vs compressed all-DRAM vs compressed with
    each SRAM budget; (b) the same for each network's fc6-fc8 in the benchmark's formats."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(14, 6.2))
    for ax, scope, fmts in ((axes[0], "network", ["dense fp32", "compressed (DC)", "compressed (ours)"]),
                            (axes[1], "fc stack", ["dense fp32", "CSR fp32+int32", "relative uint8+uint8 (as run)",
                                                   "relative packed bits"])):
        sub = [r for r in rows if r["scope"] == scope]
        names = list(dict.fromkeys(r["name"] for r in sub))
        series = []
        for f in fmts:
            series.append((f"{f}, DRAM", f, 0))
        for f in fmts[1:]:
            for b in sram_mb:
                series.append((f"{f}, {b:g} MB SRAM", f, b))
        width = 0.85 / len(series)
        xs = np.arange(len(names))
        cmap = plt.get_cmap("tab20")
        for j, (label, f, b) in enumerate(series):
            vals, fits = [], []
            for n in names:
                r = next((r for r in sub if r["name"] == n and r["format"] == f and r["sram_budget_mb"] == b), None)
                vals.append(r["total_uJ"] if r else np.nan)  # no row of ours for this network: no bar
                fits.append(bool(r and r["fits_sram"]))
            pos = xs - 0.425 + width * (j + 0.5)
            ax.bar(pos, vals, width, label=label, color=cmap(j))
            if b:
                for p, v, ok in zip(pos, vals, fits):
                    if np.isnan(v):
                        continue
                    ax.text(p, v * 1.1, "fits" if ok else "DRAM", ha="center", va="bottom", fontsize=5,
                            rotation=90)
        ax.set_yscale("log")
        ax.set_xticks(xs, names, fontsize=8)
        ax.set_ylabel("weight-fetch + add energy per inference (µJ)")
        ax.set_title("whole networks: DC Table 1 sizes and our files (results/runs)" if scope == "network"
                     else "fc6+fc7+fc8 as benchmarked", fontsize=10)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    fig.suptitle("Energy estimate from LWC 45 nm costs: DRAM 640 pJ, SRAM 5 pJ per 32-bit read, "
                 "float add 0.9 pJ", fontsize=10)
    fig.tight_layout()
    paths = _save(fig, out, "fig10_energy")
    plt.close(fig)
    return paths
