"""DC Tables 2-5: per-layer compression statistics, ours beside the paper's; where our file format
differs from the paper's (searched gap widths, float16 codebooks), the same weights re-encoded in
the paper's own format too."""

from __future__ import annotations

from pathlib import Path

from experiments import paper_values as pv
from experiments.tables.cells import NA, bits, count, dataset, get, pct, rate, run_label
from experiments.tables.choice import Choice
from experiments.tables.render import Table
from experiments.tables.table1 import TORCHVISION_ALEXNET_NOTE, torchvision_note

LAYER_KEYS = ("weight_bits_pq", "weight_bits_pqh", "index_bits_pq", "index_bits_pqh")
PAPER_FORMAT = "ours, paper's format"


def _nonzeros(layer: dict):
    if layer.get("nonzeros") is not None:
        return layer["nonzeros"]
    if layer.get("density") is None or layer.get("weights") is None:
        return None
    return round(layer["density"] * layer["weights"])


def layer_totals(row: dict) -> dict:
    """The total line: weights summed, density = sum nonzeros / sum weights, bits weighted by
    stored entries (`entries`, else nonzeros), size % and rates from the row's size totals."""
    layers = row.get("layers") or []
    w = sum(l.get("weights") or 0 for l in layers)
    nzs = [_nonzeros(l) for l in layers]
    nz = None if any(n is None for n in nzs) else sum(nzs)
    tot = {"weights": w or None, "density": nz / w if nz is not None and w else None,
           "ratio_p": w / nz if nz else None}
    for key in LAYER_KEYS:
        num = den = 0.0
        for l, n in zip(layers, nzs):
            e = l.get("entries", n)
            if l.get(key) is not None and e is not None:
                num, den = num + l[key] * e, den + e
        tot[key] = num / den if den else None
    dense = get(row, "size", "dense_bytes")
    for s in ("pq", "pqh"):
        b = get(row, "size", f"{s}_bytes")
        tot[f"pct_{s}"] = 100 * b / dense if b is not None and dense else None
        tot[f"ratio_{s}"] = get(row, "ratio", s) or (dense / b if b and dense else None)
    return tot


def _ours_cells(layer: dict, total: bool) -> list[str]:
    dens = NA if layer.get("density") is None else pct(100 * layer["density"], 1)
    pq, pqh = pct(layer.get("pct_pq")), pct(layer.get("pct_pqh"))
    if total:
        dens += f" ({rate(layer.get('ratio_p'))})" if layer.get("ratio_p") else ""
        pq += f" ({rate(layer.get('ratio_pq'))})" if layer.get("ratio_pq") else ""
        pqh += f" ({rate(layer.get('ratio_pqh'))})" if layer.get("ratio_pqh") else ""
    return [count(layer.get("weights")), dens, *(bits(layer.get(k)) for k in LAYER_KEYS), pq, pqh]


def _file_of(row: dict, runs_dir: Path) -> Path | None:
    """The row's compressed file: beside the row (results/runs/<experiment>/<run_id>.dcz)."""
    p = Path(runs_dir) / str(row.get("experiment")) / f"{row.get('run_id')}.dcz"
    return p if p.is_file() else None


def needs_paper_format(row: dict | None) -> bool:
    """Our file format departs from the paper's for this row: searched gap widths or float16 codebooks."""
    enc = get(row, "config", "encode") or {}
    return bool(enc.get("optimize_index_bits")) or enc.get("float_dtype", "float32") != "float32"


def paper_format_layers(row: dict, runs_dir: Path) -> list[dict] | None:
    """The row's layers re-encoded from its committed file in the paper's format: the experiment's
    fixed gap width (``encode.index_bits``), a 2**bits fp32 codebook, no offsets. None without the file."""
    path = _file_of(row, runs_dir)
    if path is None:
        return None
    from compression.accounting import paper_format
    from compression.container import read_layers

    index_bits = get(row, "config", "encode", "index_bits") or {}
    layers, _, _, _ = read_layers(path)
    out = []
    for layer in layers:
        ib = next((index_bits[k] for k in (layer.name, layer.kind, "*") if k in index_bits), 5)
        out.append(paper_format(layer, int(ib)))
    return out


def _paper_format_total(layers: list[dict]) -> dict:
    w = sum(l["weights"] for l in layers)
    nz = sum(l["nonzeros"] for l in layers)
    e = sum(l["entries"] for l in layers)
    pq, pqh = sum(l["pq_bits"] for l in layers), sum(l["pqh_bits"] for l in layers)
    return {"weights": w, "density": nz / w, "ratio_p": w / nz if nz else None, "entries": e,
            "weight_bits_pq": sum(l["entries"] * l["weight_bits_pq"] for l in layers) / e,
            "weight_bits_pqh": sum(l["weight_stream_bits"] for l in layers) / e,
            "index_bits_pq": sum(l["entries"] * l["index_bits_pq"] for l in layers) / e,
            "index_bits_pqh": sum(l["index_stream_bits"] for l in layers) / e,
            "pct_pq": 100 * pq / (32 * w), "ratio_pq": 32 * w / pq, "pct_pqh": 100 * pqh / (32 * w),
            "ratio_pqh": 32 * w / pqh}


def layer_table(net: str, ch: Choice, runs_dir: str | Path = "results/runs", tv_alexnet: dict | None = None) -> Table:
    info, num = pv.NETWORKS[net], pv.DC_TABLE_NUMBER[net]
    name = info["name"]
    columns = ["Layer", "Source", "#W", "Density (P)", "Weight bits P+Q", "Weight bits P+Q+H",
               "Index bits P+Q", "Index bits P+Q+H", "Size P+Q", "Size P+Q+H"]
    csv_columns = ["network", "layer", "source", "run_id", "weights", "nonzeros", "entries", "density_pct", "ratio_p",
                   *LAYER_KEYS, "pct_pq", "ratio_pq", "pct_pqh", "ratio_pqh"]
    paper_cells = {c[0]: list(c[1:]) for c in pv.DC_LAYERS[net]}
    paper_nums = {d["layer"]: d for d in pv.layer_numbers(net)}
    paper_order = [c[0] for c in pv.DC_LAYERS[net] if c[0] != "total"]
    row = ch.row
    ours = {l.get("name"): l for l in (row.get("layers") or [])} if row else {}
    order = paper_order + [n for n in ours if n not in paper_order]
    lines, csv_lines, rule_before = [], [], set()
    run_id = get(row, "run_id") or ""
    reformat = paper_format_layers(row, Path(runs_dir)) if row is not None and needs_paper_format(row) else None
    pf = {l["name"]: {**l, "ratio_p": None} for l in reformat or []}
    if reformat:
        pf["total"] = _paper_format_total(reformat)

    def paper_csv(layer):
        d = paper_nums.get(layer)
        if d is None:
            return None
        return [net, layer, "paper", "", d["weights"], "", "", 100 * d["density"], d.get("ratio_p"),
                *(d[k] for k in LAYER_KEYS), d["pct_pq"], d.get("ratio_pq"), d["pct_pqh"], d.get("ratio_pqh")]

    def ours_csv(layer, d, nz, source="ours"):
        return [net, layer, source, run_id, d.get("weights"), nz, d.get("entries"),
                None if d.get("density") is None else 100 * d["density"], d.get("ratio_p"),
                *(d.get(k) for k in LAYER_KEYS), d.get("pct_pq"), d.get("ratio_pq"), d.get("pct_pqh"),
                d.get("ratio_pqh")]

    for layer in order + ["total"]:
        if layer == "total":
            rule_before.add(len(lines))
        if row is not None:
            if layer == "total":
                t = layer_totals(row)
                lines.append(["total", "ours", *_ours_cells(t, True)])
                csv_lines.append(ours_csv("total", {**t, "entries": None}, None if t["density"] is None
                                          else round(t["density"] * t["weights"])))
            elif layer in ours:
                lines.append([layer, "ours", *_ours_cells(ours[layer], False)])
                csv_lines.append(ours_csv(layer, ours[layer], _nonzeros(ours[layer])))
            else:
                lines.append([layer, "ours", "not in our model", *[""] * 7])
        if layer in pf:
            lines.append([layer, PAPER_FORMAT, *_ours_cells(pf[layer], layer == "total")])
            csv_lines.append(ours_csv(layer, pf[layer], round(pf[layer]["density"] * pf[layer]["weights"]),
                                      "ours_paper_format"))
        if layer in paper_cells:
            lines.append([layer, "paper", *paper_cells[layer]])
            csv_lines.append(paper_csv(layer))
        elif row is not None:
            lines.append([layer, "paper", "not in the paper's model", *[""] * 7])

    notes = [f"Paper: DC Table {num}, cells verbatim. Columns: weights, density after pruning (P), bits per stored "
             "weight and per stored index after pruning + quantization (P+Q) and after Huffman coding (P+Q+H), "
             "and the layer's compressed size as % of its dense fp32 weights."]
    if row is None:
        notes.append(f"Ours: not run — no clean (`git_dirty: false`), complete or storage-only row of the "
                     f"experiment's own config in `{runs_dir}/{info['experiment']}/`.")
    else:
        notes.append("Ours, total line: weights summed; density = Σ non-zeros / Σ weights (non-zeros = `nonzeros`, "
                     "else round(density × weights)), (×) its inverse; bits averaged over layers weighted by stored "
                     "entries (non-zeros + filler zeros); size % = `size.pq_bytes` / `size.pqh_bytes` over "
                     "`size.dense_bytes` (whole model, biases included), (×) = `ratio.pq` / `ratio.pqh`.")
        if reformat:
            enc = get(row, "config", "encode") or {}
            notes.append(f"\"{PAPER_FORMAT}\": the same committed weights (decoded from the row's file) re-encoded as "
                         f"the paper stores them: the experiment's fixed gap width (`encode.index_bits` "
                         f"{enc.get('index_bits')}) instead of the searched widths, a 2^bits-entry fp32 codebook, "
                         "Huffman streams with their code tables and no chunk offsets; its total counts the weights "
                         "only, as the paper's does. Ours above it: the file as written (searched gap widths, "
                         f"{enc.get('float_dtype', 'float32')} codebooks), so ip1-sized layers sit above and small "
                         "layers below the paper's percentages by design; compare like with like.")
        elif needs_paper_format(row):
            notes.append(f"\"{PAPER_FORMAT}\" lines need the row's compressed file beside it "
                         f"(`{runs_dir}/{row.get('experiment')}/{row.get('run_id')}.dcz`), which is absent here.")
        if ch.kind == "storage-only":
            notes.append(f"Ours is a storage-only row (`storage_only: true`, weights "
                         f"{row.get('weights_source', 'unknown')}; no training, no evaluation): storage columns only.")
        if net == "alexnet" and row.get("model") == "alexnet":
            notes.append(TORCHVISION_ALEXNET_NOTE + ".")
        notes.append(f"Run used: {name} {run_label(row)}, dataset {dataset(row)}. Row choice: docs/tables.md.")
    if net == "alexnet" and (row is None or row.get("model") != "alexnet") and torchvision_note(tv_alexnet):
        notes.append(torchvision_note(tv_alexnet) + ".")
    if net == "lenet300":
        notes.append("The paper's total P+Q+H weight bits (5.1) exceed every per-layer value: an oddity of DC Table 2, "
                     "kept as printed.")
    if net == "alexnet":
        notes.append("DC's text says 8-bit index gaps for conv and 5-bit for fc, but DC Table 4 uses 4-bit gaps "
                     "for every layer.")
    title = f"Table {num}. {name}: per-layer compression statistics, ours beside DC Table {num}"
    return Table(f"table{num}_{net}", title, columns, lines, notes, csv_columns, csv_lines, rule_before)
