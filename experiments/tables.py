"""Regenerate the paper's tables (DC Table 1, Tables 2-5) from result rows, ours beside the paper's.

    python -m experiments.tables [--runs results/runs] [--out results/tables]

Reads ``<runs>/**/*.json`` (docs/results_row.md) and writes, each file atomically (temp file +
``os.replace``), Markdown, CSV and LaTeX for:

    table1.*            headline results, one line per network (DC Table 1)
    table2_lenet300.*   per-layer LeNet-300-100 (DC Table 2)
    table3_lenet5.*     per-layer LeNet-5 (DC Table 3)
    table4_alexnet.*    per-layer AlexNet (DC Table 4)
    table5_vgg16.*      per-layer VGG-16 (DC Table 5)
    seeds.*             run-to-run spread: every complete row with the chosen row's config except
                        the seed (mean, standard deviation, min, max per network)

Row choice rule (also in docs/tables.md). For each network (lenet300, lenet5, alexnet, vgg16):

1. Candidates are default-config rows of the network's default experiment: files directly in
   ``<runs>/<experiment>/`` (a row in a subfolder is a sweep job and is never used) whose
   ``experiment`` is that experiment and whose ``model`` is that network; and ``git_dirty`` is
   exactly ``false`` (dirty or unknown rows are ignored). Smoke runs (fake ImageNet data or
   ``trainer=smoke``) are never candidates.
2. Use the latest (greatest ``run_id``; run ids sort by time) *complete* candidate: not
   ``storage_only``, with ``metrics["compressed/top1_err"]`` and ``size.file_bytes``. Rows that
   retrained with distillation (``prune.distill`` or ``quantize.distill`` > 0, ours, not in the papers) are used only
   when no complete row without it exists, and are then marked in the notes.
3. If none is complete, use the latest ``storage_only: true`` candidate that has
   ``size.file_bytes``: it fills only the size and rate columns of Table 1 (its error columns say
   "not measured (storage-only)") and the storage columns of Tables 2-5.
4. Otherwise the network is "not run": Table 1 says so in our columns; its per-layer table
   shows the paper's lines only.

Every table names the run(s) it used (run_id and short git commit) in a footnote.

Units: sizes use decimal units, 1 KB = 1000 B and 1 MB = 10^6 B, because the paper's do
(LeNet-300-100: 266,610 fp32 parameters = 1,066,440 B, printed "1070 KB"); each network is shown
in the unit the paper uses for it (KB for the LeNets, MB for AlexNet and VGG-16).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from experiments import paper_values as pv
from experiments.results import atomic_write_bytes, result_relevant

DATASET_NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "mnist_sample": "MNIST sample (5,000 digits)",
                 "imagenet": "ImageNet", "fake_imagenet": "fake ImageNet (random images)", "none": "no data"}
DATASET_NOTES = {
    "fashion_mnist": "ours on Fashion-MNIST, not the paper's MNIST (same 28×28 grey inputs and 10 classes, "
                     "a much harder task): our errors are not comparable with the paper's, sizes and rates are",
    "mnist_sample": "ours on a 5,000-digit MNIST sample (3,500 training images), not the full MNIST: "
                    "errors are not comparable with the paper's, sizes and rates are",
    "fake_imagenet": "ours on random fake ImageNet images (a smoke test): errors are meaningless, sizes and rates are "
                     "comparable",
}
TORCHVISION_ALEXNET_NOTE = ("AlexNet: ours is torchvision's AlexNet, with 64/192/384/256/256 conv channels, not the "
                            "paper's Caffe AlexNet with 96/256/384/384/256 (grouped conv2/4/5), so conv layer sizes "
                            "and the total size differ (fc6-fc8 have the paper's shapes); our own dense baseline is "
                            "reported beside the paper's")
NA = "n/a"
ARROW = " → "


# ----------------------------------------------------------------------------------------------
# Row choice
# ----------------------------------------------------------------------------------------------
@dataclass
class Choice:
    network: str
    row: dict | None = None
    kind: str = "not run"  # "complete" | "storage-only" | "not run"

    @property
    def run_label(self) -> str:
        r = self.row
        commit = (r.get("git_commit") or "unknown")[:7]
        return f"`{r.get('run_id')}` (commit `{commit}`)"


def _get(d: dict | None, *keys):
    for k in keys:
        if not isinstance(d, dict) or d.get(k) is None:
            return None
        d = d[k]
    return d


def _distill_stages(row: dict) -> list[tuple[str, float, float]]:
    """(stage, weight, temperature) for each stage that distils (``prune``, ``quantize``)."""
    return [(g, _get(row, "config", g, "distill"), _get(row, "config", g, "distill_temperature"))
            for g in ("prune", "quantize") if _get(row, "config", g, "distill")]


def distill_note(name: str, row: dict | None) -> str | None:
    """A note for rows retrained with ``prune.distill`` / ``quantize.distill`` (ours, not in the papers), else None."""
    parts = [f"`{g}.distill={a}` (temperature {t})" for g, a, t in _distill_stages(row or {})]
    if not parts:
        return None
    return (f"{name}: retrained with distillation from its own dense model ({', '.join(parts)}): "
            "ours, not in the papers, whose retraining uses the labels alone.")


def distilled(row: dict) -> bool:
    return bool(_distill_stages(row))


def variant(row: dict) -> str:
    """How a row's recipe differs from the papers' as this code runs it: '' for the recipe itself."""
    parts = []
    stages = _distill_stages(row)
    if stages:
        parts.append("distillation (" + "; ".join(f"{g} {a}, T {t}" for g, a, t in stages) + ")")
    if not _get(row, "config", "prune", "drop_dead_connections"):
        parts.append("dead connections kept")  # rows from before LWC 3.4's dropping was added
    return "; ".join(parts)


def is_complete(row: dict) -> bool:
    return (not row.get("storage_only") and _get(row, "metrics", "compressed/top1_err") is not None
            and _get(row, "size", "file_bytes") is not None)


def is_storage_only(row: dict) -> bool:
    return row.get("storage_only") is True and _get(row, "size", "file_bytes") is not None


def load_rows(runs_dir: Path) -> list[tuple[Path, dict]]:
    """Every parsable row under runs_dir, with its path relative to runs_dir (temp files skipped)."""
    out = []
    for p in sorted(runs_dir.rglob("*.json")):
        if p.name.startswith("."):
            continue
        try:
            row = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            print(f"skipping unreadable row {p}: {e}", file=sys.stderr)
            continue
        if isinstance(row, dict):
            out.append((p.relative_to(runs_dir), row))
    return out


def is_smoke(row: dict) -> bool:
    """Smoke runs (synthetic data or trainer=smoke) prove the pipeline runs; their numbers mean nothing."""
    trainer = (row.get("config") or {}).get("trainer") or {}
    return row.get("dataset") == "fake_imagenet" or bool(trainer.get("epochs_cap"))


def _candidates(rows: list[tuple[Path, dict]], net: str) -> list[dict]:
    exp = pv.NETWORKS[net]["experiment"]
    return [r for rel, r in rows
            if len(rel.parts) == 2 and rel.parts[0] == exp  # directly in runs/<experiment>/: not a sweep
            and r.get("experiment") == exp and r.get("model", net) == net
            and r.get("git_dirty") is False and r.get("run_id") and not is_smoke(r)]


def choose_rows(rows: list[tuple[Path, dict]]) -> dict[str, Choice]:
    """Apply the row choice rule (module docstring) to every network."""
    choices = {}
    for net in pv.NETWORKS:
        cands = _candidates(rows, net)
        # the papers' recipe first: a distilled row only when no other complete row exists
        cands.sort(key=lambda r: (not distilled(r), str(r["run_id"])))
        complete = [r for r in cands if is_complete(r)]
        storage = [r for r in cands if is_storage_only(r)]
        if complete:
            choices[net] = Choice(net, complete[-1], "complete")
        elif storage:
            choices[net] = Choice(net, storage[-1], "storage-only")
        else:
            choices[net] = Choice(net)
    return choices


# ----------------------------------------------------------------------------------------------
# Formatting
# ----------------------------------------------------------------------------------------------
def _err(x) -> str:
    return NA if x is None else f"{x:.2f}%"


def _delta(ours, paper) -> str:
    return NA if ours is None or paper is None else f"{ours - paper:+.2f}"


def _size(nbytes, unit: str) -> str:
    if nbytes is None:
        return NA
    v = nbytes / (pv.KB if unit == "KB" else pv.MB)
    digits = 0 if v >= 100 else 1 if v >= 10 else 2
    return f"{v:.{digits}f} {unit}"


def _count(n) -> str:
    """Weights like the paper: 235.2K, 0.5K, 1K, 37.7M."""
    if n is None:
        return NA
    v, unit = (n / 1e6, "M") if n >= 1e6 else (n / 1e3, "K")
    s = f"{v:.1f}"
    return (s[:-2] if s.endswith(".0") else s) + unit


def _bits(x) -> str:
    if x is None:
        return NA
    s = f"{x:.2f}".rstrip("0").rstrip(".")  # 6 -> "6", 4.4 -> "4.4", 4.3506 -> "4.35", like the paper
    return s


def _pct(x, digits: int = 2) -> str:
    return NA if x is None else f"{x:.{digits}f}%"


def _rate(x) -> str:
    return NA if x is None else f"{x:.1f}×"


def _num(x):
    """CSV cell: empty for missing, else a number with at most 6 significant digits."""
    if x is None:
        return ""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return x
    if isinstance(x, int) or float(x).is_integer() and abs(x) >= 1:
        return int(x)
    return float(f"{x:.6g}")


@dataclass
class Table:
    stem: str
    title: str
    columns: list[str]
    lines: list[list[str]]
    notes: list[str]
    csv_columns: list[str]
    csv_lines: list[list]
    rule_before: set[int] = field(default_factory=set)  # line indices preceded by a rule (total lines)

    # -- renderers -----------------------------------------------------------------------------
    def markdown(self) -> str:
        def md(cells):
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
        out = ["<!-- generated by `python -m experiments.tables`: do not edit -->", "", f"### {self.title}", "",
               md(self.columns), "|" + "|".join("---" for _ in self.columns) + "|"]
        out += [md(line) for line in self.lines]
        if self.notes:
            out.append("")
            out += [f"{i}. {n}" for i, n in enumerate(self.notes, 1)]
        return "\n".join(out) + "\n"

    def csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.csv_columns)
        w.writerows([[_num(c) for c in line] for line in self.csv_lines])
        return buf.getvalue()

    def latex(self) -> str:
        ncol = len(self.columns)
        align = "ll" + "r" * (ncol - 2)
        out = ["% generated by `python -m experiments.tables`: do not edit. Needs \\usepackage{booktabs,graphicx}.",
               "\\begin{table*}[t]", "\\centering", f"\\caption{{{_tex(self.title.split('. ', 1)[-1])}}}",
               f"\\label{{tab:{self.stem}}}", "\\resizebox{\\textwidth}{!}{%",
               f"\\begin{{tabular}}{{{align}}}", "\\toprule",
               " & ".join(_tex(c) for c in self.columns) + " \\\\", "\\midrule"]
        for i, line in enumerate(self.lines):
            if i in self.rule_before:
                out.append("\\midrule")
            out.append(" & ".join(_tex(c) for c in line) + " \\\\")
        out += ["\\bottomrule", "\\end{tabular}}"]
        if self.notes:
            out.append("\\par\\smallskip\\parbox{\\textwidth}{\\footnotesize")
            out += [f"({i}) {_tex(n)}\\par" for i, n in enumerate(self.notes, 1)]
            out.append("}")
        out.append("\\end{table*}")
        return "\n".join(out) + "\n"


_TEX = {"\\": "\\textbackslash{}", "%": "\\%", "_": "\\_", "&": "\\&", "#": "\\#", "$": "\\$", "{": "\\{",
        "}": "\\}", "~": "\\textasciitilde{}", "^": "\\textasciicircum{}", "→": "$\\rightarrow$",
        "×": "$\\times$", "Δ": "$\\Delta$", "−": "$-$", "–": "--", "—": "---", "≈": "$\\approx$", "Σ": "$\\Sigma$"}


def _tex(text: str) -> str:
    s = "".join(_TEX.get(ch, ch) for ch in text)
    parts = s.split("`")  # `code` -> \texttt{code}
    return "".join(f"\\texttt{{{p}}}" if i % 2 else p for i, p in enumerate(parts))


# ----------------------------------------------------------------------------------------------
# Table 1
# ----------------------------------------------------------------------------------------------
def _dataset(row: dict) -> str:
    ds = row.get("dataset")
    return DATASET_NAMES.get(ds, str(ds))


def table1(choices: dict[str, Choice], runs_dir: str = "results/runs") -> Table:
    columns = ["Network", "Dataset: ours / paper",
               "Top-1 err ref → compr., ours", "Top-1 err, paper", "Top-1 change, ours / paper (pts)",
               "Top-5 err ref → compr., ours", "Top-5 err, paper", "Top-5 change, ours / paper (pts)",
               "Size ref → compr., ours", "Size, paper", "Rate, ours", "Rate, paper", "Δ rate"]
    csv_columns = ["network", "status", "run_id", "git_commit", "dataset", "paper_dataset",
                   "top1_ref", "top1_compressed", "paper_top1_ref", "paper_top1_compressed",
                   "delta_top1_ref", "delta_top1_compressed", "change_top1", "paper_change_top1",
                   "top5_ref", "top5_compressed", "paper_top5_ref", "paper_top5_compressed",
                   "delta_top5_ref", "delta_top5_compressed", "change_top5", "paper_change_top5",
                   "size_ref_bytes", "size_compressed_bytes", "paper_size_ref_bytes", "paper_size_compressed_bytes",
                   "rate", "paper_rate", "delta_rate"]
    lines, csv_lines, data_notes, other_notes, runs = [], [], [], [], []
    for net, info in pv.NETWORKS.items():
        p, ch, row = pv.DC_TABLE1[net], choices[net], choices[net].row
        unit = info["size_unit"]
        paper_errs = [ARROW.join(_err(x) for x in (p[f"{k}_ref"], p[f"{k}_compressed"]))
                      if p[f"{k}_ref"] is not None else "–" for k in ("top1", "top5")]
        paper_cells = [ARROW.join(p["size_text"]), p["rate_text"]]
        name = info["name"]
        m = _get(row, "metrics") or {}
        ours = {f"{k}_{s}": m.get(f"{stage}/{k}_err") for k in ("top1", "top5")
                for s, stage in (("ref", "dense"), ("compressed", "compressed"))}
        if ch.kind == "not run":
            err_cells = ["not run", paper_errs[0], "–", "not run", paper_errs[1], "–"]
            size_cells = ["not run", paper_cells[0], "not run", paper_cells[1], "–"]
            ds = f"not run / {info['dataset']}"
            ours = dict.fromkeys(ours)
            size_ref = size_c = rate = None
            other_notes.append(f"{name}: not run — no clean (`git_dirty: false`), complete or storage-only "
                               f"default-config row in `{runs_dir}/{info['experiment']}/`.")
        else:
            ds = f"{_dataset(row)} / {info['dataset']}"
            size_ref, size_c = _get(row, "size", "dense_bytes"), _get(row, "size", "file_bytes")
            rate = _get(row, "ratio", "pqh")
            size_cells = [ARROW.join((_size(size_ref, unit), _size(size_c, unit))), paper_cells[0],
                          _rate(rate), paper_cells[1], NA if rate is None else f"{rate - p['rate']:+.1f}×"]
            if ch.kind == "storage-only":
                ours = dict.fromkeys(ours)
                nm = "not measured (storage-only)"
                err_cells = [nm, paper_errs[0], "–", nm, paper_errs[1], "–"]
                other_notes.append(f"{name}: storage-only row (`storage_only: true`, weights "
                                   f"{row.get('weights_source', 'unknown')}; no training, no evaluation): "
                                   f"it supplies only the size and rate columns.")
            else:
                err_cells = []
                for k in ("top1", "top5"):
                    o = (ours[f"{k}_ref"], ours[f"{k}_compressed"])
                    err_cells.append(ARROW.join(_err(x) for x in o) if any(x is not None for x in o) else NA)
                    err_cells.append(paper_errs[0 if k == "top1" else 1])
                    paper_change = (_delta(p[f"{k}_compressed"], p[f"{k}_ref"]) if p[f"{k}_ref"] is not None
                                    else "–")
                    err_cells.append(f"{_delta(o[1], o[0])} / {paper_change}")
            if row.get("dataset") in DATASET_NOTES and ch.kind == "complete":
                data_notes.append(f"{name}: {DATASET_NOTES[row['dataset']]}.")
            if net == "alexnet" and row.get("model") == "alexnet":
                other_notes.append(TORCHVISION_ALEXNET_NOTE + ".")
            other_notes += [n for n in [distill_note(name, row)] if n]
            runs.append(f"{name} {ch.run_label}")
        lines.append([name, ds, *err_cells, *size_cells])
        d = lambda a, b: None if a is None or b is None else a - b  # noqa: E731
        csv_lines.append([
            net, ch.kind, _get(row, "run_id") or "", _get(row, "git_commit") or "", _get(row, "dataset") or "",
            info["dataset"],
            ours["top1_ref"], ours["top1_compressed"], p["top1_ref"], p["top1_compressed"],
            d(ours["top1_ref"], p["top1_ref"]), d(ours["top1_compressed"], p["top1_compressed"]),
            d(ours["top1_compressed"], ours["top1_ref"]), d(p["top1_compressed"], p["top1_ref"]),
            ours["top5_ref"], ours["top5_compressed"], p["top5_ref"], p["top5_compressed"],
            d(ours["top5_ref"], p["top5_ref"]), d(ours["top5_compressed"], p["top5_compressed"]),
            d(ours["top5_compressed"], ours["top5_ref"]), d(p["top5_compressed"], p["top5_ref"]),
            size_ref, size_c, p["size_ref_bytes"], p["size_compressed_bytes"], rate, p["rate"], d(rate, p["rate"])])
    notes = [
        "Errors: test-split top-1/top-5 error in %, reference = our dense fp32 model (`dense/top*_err`), "
        "compressed = the model decoded from the compressed file (`compressed/top*_err`). "
        "Change = compressed − reference error in percentage points, ours / the paper's: the comparable "
        "number where the datasets differ. Paper: DC Table 1.",
        "Size: reference = dense fp32 parameters (`size.dense_bytes`), compressed = the compressed file "
        "(`size.file_bytes`). 1 KB = 1,000 B and 1 MB = 1,000,000 B, the paper's units (its 1070 KB for "
        "LeNet-300-100 is 266,610 fp32 parameters = 1,066,440 B). Rate = `ratio.pqh` = dense fp32 bytes / "
        "pruned + quantized + Huffman-coded bytes, as in the paper; Δ rate = ours − paper.",
        *data_notes, *other_notes,
        "Runs used: " + ("; ".join(runs) if runs else "none") +
        ". Row choice: per network the latest clean, complete row of its default experiment (docs/tables.md).",
    ]
    return Table("table1", "Table 1. Deep Compression results: ours beside DC Table 1",
                 columns, lines, notes, csv_columns, csv_lines)


# ----------------------------------------------------------------------------------------------
# Tables 2-5
# ----------------------------------------------------------------------------------------------
LAYER_KEYS = ("weight_bits_pq", "weight_bits_pqh", "index_bits_pq", "index_bits_pqh")


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
    dense = _get(row, "size", "dense_bytes")
    for s in ("pq", "pqh"):
        b = _get(row, "size", f"{s}_bytes")
        tot[f"pct_{s}"] = 100 * b / dense if b is not None and dense else None
        tot[f"ratio_{s}"] = _get(row, "ratio", s) or (dense / b if b and dense else None)
    return tot


def _ours_cells(layer: dict, total: bool) -> list[str]:
    dens = NA if layer.get("density") is None else _pct(100 * layer["density"], 1)
    pq, pqh = _pct(layer.get("pct_pq")), _pct(layer.get("pct_pqh"))
    if total:
        dens += f" ({_rate(layer.get('ratio_p'))})" if layer.get("ratio_p") else ""
        pq += f" ({_rate(layer.get('ratio_pq'))})" if layer.get("ratio_pq") else ""
        pqh += f" ({_rate(layer.get('ratio_pqh'))})" if layer.get("ratio_pqh") else ""
    return [_count(layer.get("weights")), dens, *(_bits(layer.get(k)) for k in LAYER_KEYS), pq, pqh]


def layer_table(net: str, ch: Choice, runs_dir: str = "results/runs") -> Table:
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
    run_id = _get(row, "run_id") or ""

    def paper_csv(layer):
        d = paper_nums.get(layer)
        if d is None:
            return None
        return [net, layer, "paper", "", d["weights"], "", "", 100 * d["density"], d.get("ratio_p"),
                *(d[k] for k in LAYER_KEYS), d["pct_pq"], d.get("ratio_pq"), d["pct_pqh"], d.get("ratio_pqh")]

    def ours_csv(layer, d, nz):
        return [net, layer, "ours", run_id, d.get("weights"), nz, d.get("entries"),
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
        if layer in paper_cells:
            lines.append([layer, "paper", *paper_cells[layer]])
            csv_lines.append(paper_csv(layer))
        elif row is not None:
            lines.append([layer, "paper", "not in the paper's model", *[""] * 7])

    notes = [f"Paper: DC Table {num}, cells verbatim. Columns: weights, density after pruning (P), bits per stored "
             "weight and per stored index after pruning + quantization (P+Q) and after Huffman coding (P+Q+H), "
             "and the layer's compressed size as % of its dense fp32 weights."]
    if row is None:
        notes.append(f"Ours: not run — no clean (`git_dirty: false`), complete or storage-only default-config row "
                     f"in `{runs_dir}/{info['experiment']}/`.")
    else:
        notes.append("Ours, total line: weights summed; density = Σ non-zeros / Σ weights (non-zeros = `nonzeros`, "
                     "else round(density × weights)), (×) its inverse; bits averaged over layers weighted by stored "
                     "entries (non-zeros + filler zeros); size % = `size.pq_bytes` / `size.pqh_bytes` over "
                     "`size.dense_bytes` (whole model, biases included), (×) = `ratio.pq` / `ratio.pqh`.")
        if ch.kind == "storage-only":
            notes.append(f"Ours is a storage-only row (`storage_only: true`, weights "
                         f"{row.get('weights_source', 'unknown')}; no training, no evaluation): storage columns only.")
        if net == "alexnet" and row.get("model") == "alexnet":
            notes.append(TORCHVISION_ALEXNET_NOTE + ".")
        notes += [n for n in [distill_note(name, row)] if n]
        notes.append(f"Run used: {name} {ch.run_label}, dataset {_dataset(row)}. Row choice: docs/tables.md.")
    if net == "lenet300":
        notes.append("The paper's total P+Q+H weight bits (5.1) exceed every per-layer value: an oddity of DC Table 2, "
                     "kept as printed.")
    if net == "alexnet":
        notes.append("DC's text says 8-bit index gaps for conv and 5-bit for fc, but DC Table 4 uses 4-bit gaps "
                     "for every layer.")
    title = f"Table {num}. {name}: per-layer compression statistics, ours beside DC Table {num}"
    return Table(f"table{num}_{net}", title, columns, lines, notes, csv_columns, csv_lines, rule_before)


# ----------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------
def _config_without_seed(row: dict) -> str:
    cfg = result_relevant(row.get("config") or {})
    cfg.pop("seed", None)
    return json.dumps(cfg, sort_keys=True, default=str)


def seed_rows(rows: list[tuple[Path, dict]], choice: Choice) -> list[dict]:
    """The complete, clean default-experiment rows that differ from the chosen row only in the seed."""
    if choice.kind != "complete":
        return []
    key = _config_without_seed(choice.row)
    out = [r for r in _candidates(rows, choice.network) if is_complete(r) and _config_without_seed(r) == key]
    return sorted(out, key=lambda r: (str(r.get("seed")).zfill(20), str(r["run_id"])))  # by seed, then time


def seeds_table(rows: list[tuple[Path, dict]], choices: dict[str, Choice]) -> Table:
    import statistics

    def stat(xs, fmt):
        if not xs:
            return NA, [None] * 4
        m = statistics.fmean(xs)
        sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
        return (f"{fmt(m)} ± {fmt(sd).lstrip('+')} ({fmt(min(xs))} to {fmt(max(xs))})" if len(xs) > 1 else fmt(m)), \
            [m, sd, min(xs), max(xs)]

    quantities = [
        ("dense top-1 err %", lambda r: _get(r, "metrics", "dense/top1_err"), lambda v: f"{v:.2f}"),
        ("pruned − dense, points", lambda r: _diff(r, "pruned"), lambda v: f"{v:+.2f}"),
        ("compressed − dense, points", lambda r: _diff(r, "compressed"), lambda v: f"{v:+.2f}"),
        ("P+Q+H rate (×)", lambda r: _get(r, "ratio", "pqh"), lambda v: f"{v:.1f}"),
    ]
    lines, csv_lines, notes = [], [], []
    for net in pv.NETWORKS:
        anchors = [choices[net]]
        # every other recipe variant with runs on at least two seeds gets its own line, latest first
        # (a variant run once is an earlier config the later rows supersede)
        taken = {_config_without_seed(choices[net].row)} if choices[net].row else set()
        for r in sorted((r for r in _candidates(rows, net) if is_complete(r)), key=lambda r: str(r["run_id"]),
                        reverse=True):
            ch = Choice(net, r, "complete")
            if _config_without_seed(r) not in taken and len(seed_rows(rows, ch)) >= 2:
                taken.add(_config_without_seed(r))
                anchors.append(ch)
        for anchor in anchors:
            rs = seed_rows(rows, anchor)
            if not rs:
                continue
            cells, nums = [], []
            for _, get, fmt in quantities:
                xs = [float(v) for v in (get(r) for r in rs) if v is not None]
                c, n = stat(xs, fmt)
                cells.append(c)
                nums += n
            seeds = ", ".join(str(r.get("seed")) for r in rs)
            label = variant(anchor.row)
            name = pv.NETWORKS[net]["name"] + (f": {label}" if label else "")
            lines.append([name, f"{len(rs)} (seeds {seeds})", *cells])
            csv_lines.append([net + (f" {label}" if label else ""), len(rs), seeds, *nums])
            notes.append(f"{name}: runs " + ", ".join(f"`{r['run_id']}`" for r in rs) + ".")
    notes.append("Each line: every clean, complete row of the network's default experiment whose config equals "
                 "the Table 1 row's except for the seed; mean ± sample standard deviation (min to max). "
                 "Further lines: the same for every other variant run on at least two seeds, latest first; "
                 "distillation (`prune.distill`, `quantize.distill`) is ours, not in the papers, and Table 1 "
                 "uses it only when no other row exists; \"dead connections kept\" marks rows from before "
                 "`prune.drop_dead_connections` (LWC section 3.4) was added. "
                 "Thread count and hardware also change the trajectory, so one seed is not bit-reproducible "
                 "across machines.")
    return Table(
        stem="seeds", title="Run-to-run spread over seeds (ours)",
        columns=["network", "runs", *[q[0] for q in quantities]], lines=lines, notes=notes,
        csv_columns=["network", "runs", "seeds", *[f"{a}_{b}" for a in ("dense_err", "pruned_minus_dense",
                                                                            "compressed_minus_dense", "ratio_pqh")
                                                   for b in ("mean", "std", "min", "max")]],
        csv_lines=csv_lines)


def _diff(row: dict, stage: str):
    a, b = _get(row, "metrics", f"{stage}/top1_err"), _get(row, "metrics", "dense/top1_err")
    return None if a is None or b is None else float(a) - float(b)


def build_tables(runs_dir: str | Path) -> list[Table]:
    runs_dir = Path(runs_dir)
    rows = load_rows(runs_dir)
    choices = choose_rows(rows)
    shown = str(runs_dir).rstrip("/")
    return [table1(choices, shown), *(layer_table(net, choices[net], shown) for net in pv.NETWORKS),
            seeds_table(rows, choices)]


def write_tables(runs_dir: str | Path, out_dir: str | Path) -> list[Path]:
    written = []
    for t in build_tables(runs_dir):
        for ext, text in (("md", t.markdown()), ("csv", t.csv()), ("tex", t.latex())):
            path = Path(out_dir) / f"{t.stem}.{ext}"
            atomic_write_bytes(path, text.encode("utf-8"))
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.tables", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", default="results/runs", help="folder of result rows (default: results/runs)")
    ap.add_argument("--out", default="results/tables", help="output folder (default: results/tables)")
    args = ap.parse_args(argv)
    if not Path(args.runs).is_dir():
        print(f"tables: no such folder: {args.runs}", file=sys.stderr)
        return 2
    for p in write_tables(args.runs, args.out):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
