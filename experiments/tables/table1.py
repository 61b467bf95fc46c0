"""DC Table 1: the headline results, ours beside the paper's."""

from __future__ import annotations

from experiments import paper_values as pv
from experiments.analysis.stats import stage_delta
from experiments.tables.cells import (ARROW, NA, dataset, delta, err, get, rate, run_label, size)
from experiments.tables.choice import Choice
from experiments.tables.render import Table

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


def torchvision_note(row: dict | None) -> str | None:
    """torchvision's AlexNet beside the paper's Caffe model (Table 1 and Table 4 show the Caffe one)."""
    if row is None:
        return None
    s, r = row.get("size") or {}, (row.get("ratio") or {}).get("pqh")
    sizes = (f": {size(s.get('dense_bytes'), 'MB')} → {size(s.get('file_bytes'), 'MB')}, {rate(r)}"
             if s.get("file_bytes") else "")
    return (f"AlexNet, torchvision's variant (`model=alexnet`: 64/192/384/256/256 conv channels, no grouping or "
            f"LRN, conv1 23K weights against the paper's 35K, conv3/conv4 sizes swapped), same densities and bits"
            f"{sizes} (row {run_label(row)}); the lines above use the paper's Caffe AlexNet (`model=alexnet_caffe`)")


def table1(choices: dict[str, Choice], runs_dir: str = "results/runs", tv_alexnet: dict | None = None) -> Table:
    columns = ["Network", "Dataset: ours / paper",
               "Top-1 err ref → compr., ours", "Top-1 err, paper", "Top-1 change, ours / paper (pts)",
               "Top-5 err ref → compr., ours", "Top-5 err, paper", "Top-5 change, ours / paper (pts)",
               "Size ref → compr., ours", "Size, paper", "Rate, ours", "Rate, paper", "Δ rate"]
    lines, records, data_notes, other_notes, runs = [], [], [], [], []
    for net, info in pv.NETWORKS.items():
        p, ch, row = pv.DC_TABLE1[net], choices[net], choices[net].row
        unit = info["size_unit"]
        paper_errs = [ARROW.join(err(x) for x in (p[f"{k}_ref"], p[f"{k}_compressed"]))
                      if p[f"{k}_ref"] is not None else "–" for k in ("top1", "top5")]
        paper_cells = [ARROW.join(p["size_text"]), p["rate_text"]]
        name = info["name"]
        m = get(row, "metrics") or {}
        ours = {f"{k}_{s}": m.get(f"{stage}/{k}_err") for k in ("top1", "top5")
                for s, stage in (("ref", "dense"), ("compressed", "compressed"))}
        if ch.kind == "not run":
            err_cells = ["not run", paper_errs[0], "–", "not run", paper_errs[1], "–"]
            size_cells = ["not run", paper_cells[0], "not run", paper_cells[1], "–"]
            ds = f"not run / {info['dataset']}"
            ours = dict.fromkeys(ours)
            size_ref = size_c = rt = None
            other_notes.append(f"{name}: not run — no clean (`git_dirty: false`), complete or storage-only row "
                               f"of the experiment's own config in `{runs_dir}/{info['experiment']}/`.")
        else:
            ds = f"{dataset(row)} / {info['dataset']}"
            size_ref, size_c = get(row, "size", "dense_bytes"), get(row, "size", "file_bytes")
            rt = get(row, "ratio", "pqh")
            size_cells = [ARROW.join((size(size_ref, unit), size(size_c, unit))), paper_cells[0],
                          rate(rt), paper_cells[1], NA if rt is None else f"{rt - p['rate']:+.1f}×"]
            if ch.kind == "storage-only":
                ours = dict.fromkeys(ours)
                nm = "not measured (storage-only)"
                err_cells = [nm, paper_errs[0], "–", nm, paper_errs[1], "–"]
                other_notes.append(f"{name}: storage-only row (`storage_only: true`, weights "
                                   f"{row.get('weights_source', 'unknown')}; no training, no evaluation): "
                                   f"it supplies only the size and rate columns.")
            else:
                err_cells = []
                paired = stage_delta(row)  # top-1, paired over the test examples (None: row predates the bitsets)
                for k in ("top1", "top5"):
                    o = (ours[f"{k}_ref"], ours[f"{k}_compressed"])
                    err_cells.append(ARROW.join(err(x) for x in o) if any(x is not None for x in o) else NA)
                    err_cells.append(paper_errs[0 if k == "top1" else 1])
                    paper_change = delta(p[f"{k}_compressed"], p[f"{k}_ref"]) if p[f"{k}_ref"] is not None else "–"
                    ci = (f" [{paired.ci_low:+.2f}, {paired.ci_high:+.2f}], p {paired.p_mcnemar:.2g}"
                          if k == "top1" and paired is not None else "")
                    err_cells.append(f"{delta(o[1], o[0])}{ci} / {paper_change}")
            if row.get("dataset") in DATASET_NOTES and ch.kind == "complete":
                data_notes.append(f"{name}: {DATASET_NOTES[row['dataset']]}.")
            if net == "alexnet" and row.get("model") == "alexnet":
                other_notes.append(TORCHVISION_ALEXNET_NOTE + ".")
            runs.append(f"{name} {run_label(row)}")
        if net == "alexnet" and (row is None or row.get("model") != "alexnet") and torchvision_note(tv_alexnet):
            other_notes.append(torchvision_note(tv_alexnet) + ".")
        lines.append([name, ds, *err_cells, *size_cells])
        d = lambda a, b: None if a is None or b is None else a - b  # noqa: E731
        rec = {"network": net, "status": ch.kind, "run_id": get(row, "run_id") or "",
               "git_commit": get(row, "git_commit") or "", "dataset": get(row, "dataset") or "",
               "paper_dataset": info["dataset"]}
        for k in ("top1", "top5"):
            rec.update({f"{k}_ref": ours[f"{k}_ref"], f"{k}_compressed": ours[f"{k}_compressed"],
                        f"paper_{k}_ref": p[f"{k}_ref"], f"paper_{k}_compressed": p[f"{k}_compressed"],
                        f"delta_{k}_ref": d(ours[f"{k}_ref"], p[f"{k}_ref"]),
                        f"delta_{k}_compressed": d(ours[f"{k}_compressed"], p[f"{k}_compressed"]),
                        f"change_{k}": d(ours[f"{k}_compressed"], ours[f"{k}_ref"]),
                        f"paper_change_{k}": d(p[f"{k}_compressed"], p[f"{k}_ref"])})
        rec.update({"size_ref_bytes": size_ref, "size_compressed_bytes": size_c,
                    "paper_size_ref_bytes": p["size_ref_bytes"], "paper_size_compressed_bytes": p["size_compressed_bytes"],
                    "rate": rt, "paper_rate": p["rate"], "delta_rate": d(rt, p["rate"])})
        paired = stage_delta(row) if ch.kind == "complete" else None
        rec.update({"change_top1_ci_low": paired.ci_low if paired else None,
                    "change_top1_ci_high": paired.ci_high if paired else None,
                    "change_top1_p_mcnemar": paired.p_mcnemar if paired else None})
        records.append(rec)
    notes = [
        "Errors: test-split top-1/top-5 error in %, reference = our dense fp32 model (`dense/top*_err`), "
        "compressed = the model decoded from the compressed file (`compressed/top*_err`). "
        "Change = compressed − reference error in percentage points, ours / the paper's: the comparable "
        "number where the datasets differ; in brackets its paired 95% bootstrap confidence interval over the "
        "test examples and McNemar's exact p-value (from the per-example records of rows that have them; "
        "a 10,000-image test set has about ±0.3 points of noise at a 10% error rate). Paper: DC Table 1.",
        "Size: reference = dense fp32 parameters (`size.dense_bytes`), compressed = the compressed file "
        "(`size.file_bytes`). 1 KB = 1,000 B and 1 MB = 1,000,000 B, the paper's units (its 1070 KB for "
        "LeNet-300-100 is 266,610 fp32 parameters = 1,066,440 B). Rate = `ratio.pqh` = dense fp32 bytes / "
        "pruned + quantized + Huffman-coded bytes, as in the paper; Δ rate = ours − paper.",
        *data_notes, *other_notes,
        "Runs used: " + ("; ".join(runs) if runs else "none") +
        ". Row choice: per network the latest clean, complete row whose config is exactly its experiment file's "
        "(the paper's recipe; docs/tables.md).",
    ]
    return Table("table1", "Table 1. Deep Compression results: ours beside DC Table 1",
                 columns, lines, notes, list(records[0]), [list(r.values()) for r in records])
