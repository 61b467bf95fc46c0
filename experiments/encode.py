"""Encode stage: the quantized (and pruned) model -> one compressed file -> decoded model -> error.

Every size in the row comes from the file's own report; the ``compressed/`` error is
measured on the model rebuilt from the file, never on the in-memory model.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from compression.accounting import best_index_bits
from compression.container import LayerInput, read_compressed, write_compressed
from compression.quantize import codebook_and_labels
from experiments.checkpoints import is_rank_zero, rank_digest
from experiments.config import per_layer
from experiments.models import build_model, prunable_layers

log = logging.getLogger(__name__)

LAYER_KEYS = ("weights", "nonzeros", "density", "entries", "fillers", "weight_bits_pq", "weight_bits_pqh",
              "index_bits_pq", "index_bits_pqh", "pct_pq", "pct_pqh")


def layer_inputs(model: torch.nn.Module, index_bits: dict, optimize: bool = False) -> list[LayerInput]:
    """One LayerInput per weight-shared layer, keyed by its state_dict name."""
    paths = dict(model.layer_paths)
    out = []
    for name, module, kind in prunable_layers(model):
        codebook, labels, sparse = codebook_and_labels(module)
        bits = int(round(np.log2(codebook.numel())))
        ib = int(per_layer(index_bits, name, kind, "encode.index_bits"))
        if optimize and sparse:
            ib, _ = best_index_bits(labels.numpy().ravel(), bits)
        out.append(LayerInput(key=f"{paths[name]}.weight", name=name, kind=kind, shape=tuple(labels.shape),
                              codebook=codebook.numpy().astype(np.float32), labels=labels.numpy(),
                              weight_bits=bits, index_bits=ib, sparse=sparse))
    return out


def raw_tensors(model: torch.nn.Module, encoded_keys: set[str]) -> dict[str, torch.Tensor]:
    """Every other state_dict entry the model needs (biases, ...), stored as fp32 and counted."""
    from experiments.pipeline import clean_state_dict

    return {k: v.cpu() for k, v in clean_state_dict(model).items() if k not in encoded_keys}


def encode_model(model: torch.nn.Module, path: Path, index_bits: dict, meta: dict, optimize: bool = False,
                 symbol_counts: dict | None = None, float_dtype: str = "float32") -> dict:
    """Write the compressed file; if ``symbol_counts`` is a dict, fill it per layer name with how
    often each quantized-weight symbol and each index-gap symbol occurs in the stored streams.
    ``float_dtype``: how codebooks and biases are stored (``encode.float_dtype``)."""
    layers = layer_inputs(model, index_bits, optimize)
    raw = raw_tensors(model, {l.key for l in layers})
    if symbol_counts is not None:
        symbol_counts.update({l.name: stream_symbol_counts(l) for l in layers})
    return write_compressed(path, layers, raw, meta, float_dtype=float_dtype)


def stream_symbol_counts(layer: LayerInput) -> dict:
    """The symbol histograms the Huffman coder sees (DC Fig. 5): weight indices and relative-index gaps."""
    from compression.sparse_format import encode_relative

    labels = np.asarray(layer.labels).ravel()
    k = 1 << int(layer.weight_bits)
    if layer.sparse:
        symbols, gaps = encode_relative(labels, int(layer.index_bits))
        return {"weight_symbol_counts": np.bincount(symbols, minlength=k).tolist(),
                "gap_symbol_counts": np.bincount(gaps, minlength=1 << int(layer.index_bits)).tolist()}
    return {"weight_symbol_counts": np.bincount(labels, minlength=k).tolist()}


def encode_stage(run) -> None:
    cfg = run.cfg
    # Staged in the run folder; publish() moves it beside the row: results/runs/<experiment>/<run_id>.dcz
    path = Path(run.out_dir) / f"{run.row['run_id']}.dcz"
    if not is_rank_zero():  # every rank evaluates a decoded file; rank 0's is the one kept
        path = path.with_suffix(f".rank{os.environ.get('LOCAL_RANK', 'x')}.dcz")
    _check_ranks_agree(run)
    meta = {"model": cfg.model.name, **run.shape, "run_id": run.row["run_id"]}
    counts: dict = {}
    report = encode_model(run.model, path, dict(cfg.encode.index_bits), meta, cfg.encode.optimize_index_bits, counts,
                          cfg.encode.float_dtype)
    try:
        decoded = decode_to_model(path)
        if run.storage_only:
            _check_round_trip(run.model, decoded, cfg.encode.float_dtype)
        else:
            run.record("compressed", run.evaluate(decoded))
    except BaseException:
        path.unlink(missing_ok=True)  # no file without its row
        raise
    if not is_rank_zero():
        path.unlink(missing_ok=True)
    for lr in report["layers"]:
        e = run.layer_entry(lr["name"])
        e.update({k: _round(lr[k]) for k in LAYER_KEYS if k in lr})
        e.update(counts.get(lr["name"], {}))
    run.row["size"] = {k: int(report[k]) for k in ("dense_bytes", "pq_bytes", "pqh_bytes", "file_bytes")}
    run.row.setdefault("ratio", {}).update({k: round(float(v), 4) for k, v in report["ratio"].items() if k != "p"})
    run.row["artifacts"]["compressed_file"] = str(path)
    log.info("compressed file %s: %d bytes, %.1fx", path, report["file_bytes"], report["ratio"]["pqh"])


def decode_to_model(path: str | Path) -> torch.nn.Module:
    """Rebuild the model described by a compressed file and load its decoded weights."""
    state, meta, _ = read_compressed(path)
    model = build_model(meta["model"], num_classes=meta["num_classes"], in_channels=meta.get("in_channels", 1),
                        image_size=meta.get("image_size", 28))
    model.load_state_dict(state, strict=True)
    return model


def _round(v):
    return round(float(v), 4) if isinstance(v, float) else v


def _check_round_trip(model: torch.nn.Module, decoded: torch.nn.Module, float_dtype: str = "float32") -> None:
    """The file must decode to exactly the in-memory quantized weights, rounded to ``float_dtype``
    (storage-only runs have no data to test on)."""
    from experiments.pipeline import clean_state_dict

    want = clean_state_dict(model)
    for k, v in decoded.state_dict().items():
        w = want[k].to(getattr(torch, float_dtype)) if want[k].is_floating_point() else want[k]
        if not torch.equal(v, w.to(v.dtype)):
            raise RuntimeError(f"compressed file does not decode to the model: tensor {k} differs")


def _check_ranks_agree(run) -> None:
    """Under DDP, masks, codebooks and assignments must be identical on every rank."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    digests = [None] * dist.get_world_size()
    dist.all_gather_object(digests, rank_digest(run.model))
    run.row["ranks"] = {"world_size": len(digests), "identical_masks_and_codebooks": len(set(digests)) == 1}
    if len(set(digests)) != 1:
        raise RuntimeError(f"masks/codebooks differ across DDP ranks: {digests}")
