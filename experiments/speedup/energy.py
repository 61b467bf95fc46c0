"""Weight-fetch energy per inference from LWC's 45 nm access costs (LWC Fig. 1).

Model (an estimate, not a measurement): every 32 bits of stored weights read once per
inference cost one 32-bit access, from DRAM (640 pJ) unless the whole model fits the on-chip
SRAM budget (5 pJ). Each connection kept adds one float add (0.9 pJ); a compressed model also
reads one codebook entry per stored entry (an SRAM access, 5 pJ) -- the decode cost the
paper's EIE hides in a register file. Multiplies are left out (LWC's table gives only the add).
"""

from __future__ import annotations

DRAM_PJ = 640.0  # 32-bit DRAM read
SRAM_PJ = 5.0  # 32-bit SRAM read
FADD_PJ = 0.9  # 32-bit float add

MB = 1e6  # the paper's MB

# DC Table 1 sizes (bytes), weight counts and kept connections (LWC Table 1 / DC Tables 2-5).
NETWORKS = {
    "LeNet-300-100": dict(dense_bytes=1070e3, compressed_bytes=27e3, weights=266e3, density=0.08),
    "LeNet-5": dict(dense_bytes=1720e3, compressed_bytes=44e3, weights=431e3, density=0.08),
    "AlexNet": dict(dense_bytes=240 * MB, compressed_bytes=6.9 * MB, weights=61e6, density=0.11),
    "VGG-16": dict(dense_bytes=552 * MB, compressed_bytes=11.3 * MB, weights=138e6, density=0.075),
}


def fetch_energy_uj(nbytes: float, on_chip: bool) -> float:
    return nbytes / 4 * (SRAM_PJ if on_chip else DRAM_PJ) * 1e-6


def inference_energy(nbytes: float, macs: float, entries: float, sram_budget_bytes: float | None,
                     codebook: bool) -> dict:
    """Energy (uJ) of one inference's weight traffic for a model of ``nbytes`` stored bytes."""
    fits = sram_budget_bytes is not None and nbytes <= sram_budget_bytes
    fetch = fetch_energy_uj(nbytes, fits)
    decode = entries * SRAM_PJ * 1e-6 if codebook else 0.0
    arith = macs * FADD_PJ * 1e-6
    return {"fits_sram": fits, "memory": "SRAM" if fits else "DRAM", "fetch_uJ": fetch, "decode_uJ": decode,
            "add_uJ": arith, "total_uJ": fetch + decode + arith}


def network_rows(sram_mb: list[float]) -> list[dict]:
    """Per network (paper's sizes): dense vs compressed, all-DRAM and at each SRAM budget."""
    rows = []
    for name, n in NETWORKS.items():
        kept = n["weights"] * n["density"]
        for fmt, nbytes, macs, entries, cb in (("dense fp32", n["dense_bytes"], n["weights"], 0, False),
                                               ("compressed (DC)", n["compressed_bytes"], kept, kept, True)):
            for budget in [None, *sram_mb]:
                e = inference_energy(nbytes, macs, entries, None if budget is None else budget * MB, cb)
                rows.append({"scope": "network", "name": name, "format": fmt, "bytes": nbytes,
                             "sram_budget_mb": budget if budget is not None else 0, **e})
    return rows


def our_network_rows(runs_dir, sram_mb: list[float]) -> list[dict]:
    """Per network, the row Table 1 uses (``experiments.analysis.rows.paper_recipe``: the newest clean,
    complete -- else storage-only -- row of the experiment's own config under ``runs_dir``): its
    compressed file's real size on disk, non-zeros and stored entries (fillers included)."""
    from pathlib import Path

    from experiments import paper_values as pv
    from experiments.analysis import rows as R

    rows = []
    if not Path(runs_dir).is_dir():
        return rows
    df = R.load_runs(runs_dir)
    for net, info in pv.NETWORKS.items():
        _, r = R.paper_recipe(df, info["experiment"])
        if r is None:
            continue
        kept = sum(l.get("nonzeros", 0) for l in r["layers"])
        entries = sum(l.get("entries", 0) for l in r["layers"])
        for budget in [None, *sram_mb]:
            e = inference_energy(r["size"]["file_bytes"], kept, entries, None if budget is None else budget * MB, True)
            rows.append({"scope": "network", "name": pv.NETWORKS[net]["name"], "format": "compressed (ours)",
                         "bytes": r["size"]["file_bytes"], "run_id": r["run_id"],
                         "storage_only": bool(r.get("storage_only")),
                         "sram_budget_mb": budget if budget is not None else 0, **e})
    return rows


def layer_rows(layers: list[dict], sram_mb: list[float]) -> list[dict]:
    """Per benchmarked fc layer: the formats as stored by the benchmark (see ``bandwidth``)."""
    rows = []
    for L in layers:
        for fmt, nbytes, macs, entries, cb in (
                ("dense fp32", L["dense_weight_bytes"], L["weights"], 0, False),
                ("CSR fp32+int32", L["csr_weight_bytes"], L["nnz"], 0, False),
                ("relative uint8+uint8 (as run)", L["relative_weight_bytes"], L["nnz"], L["entries"], True),
                ("relative packed bits", L["relative_packed_weight_bytes"], L["nnz"], L["entries"], True)):
            for budget in [None, *sram_mb]:
                e = inference_energy(nbytes, macs, entries, None if budget is None else budget * MB, cb)
                rows.append({"scope": "layer", "name": f"{L['network']}.{L['layer']}", "format": fmt,
                             "bytes": nbytes, "sram_budget_mb": budget if budget is not None else 0, **e})
    return rows
