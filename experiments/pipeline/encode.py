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
from compression.architecture import decode_model
from compression.container import LayerInput, write_compressed
from compression.quantize import codebook_and_labels
from compression.sparse_format import encode_relative
from experiments.checkpoints import is_rank_zero, rank_digest
from experiments.models import architecture_of
from experiments.models.state import clean_state_dict

log = logging.getLogger(__name__)

LAYER_KEYS = ("weights", "nonzeros", "density", "entries", "fillers", "weight_bits_pq", "weight_bits_pqh",
              "index_bits_pq", "index_bits_pqh", "pct_pq", "pct_pqh")


def layer_inputs(run, coder) -> list[LayerInput]:
    """One LayerInput per weight-shared layer, keyed by its tensor's state_dict key."""
    c = run.conf.encode
    out = []
    for spec, module in run.modules():
        codebook, labels, sparse = codebook_and_labels(module, spec.param)
        bits = int(round(np.log2(codebook.numel())))
        ib = int(run.value("encode.index_bits", spec))
        if c.optimize_index_bits and sparse:
            ib, _ = best_index_bits(labels.numpy().ravel(), bits, coder=coder)
        out.append(LayerInput(key=spec.key, name=spec.name, kind=spec.kind, shape=tuple(labels.shape),
                              codebook=codebook.numpy().astype(np.float32), labels=labels.numpy(),
                              weight_bits=bits, index_bits=ib, sparse=sparse))
    return out


def stream_symbol_counts(layer: LayerInput) -> dict:
    """The symbol histograms the entropy coder sees (DC Fig. 5): weight indices and relative-index gaps."""
    labels = np.asarray(layer.labels).ravel()
    k = 1 << int(layer.weight_bits)
    if layer.sparse:
        symbols, gaps = encode_relative(labels, int(layer.index_bits))
        return {"weight_symbol_counts": np.bincount(symbols, minlength=k).tolist(),
                "gap_symbol_counts": np.bincount(gaps, minlength=1 << int(layer.index_bits)).tolist()}
    return {"weight_symbol_counts": np.bincount(labels, minlength=k).tolist()}


def encode_stage(run) -> None:
    c = run.conf.encode
    # Staged in the run folder; publish() moves it beside the row: results/runs/<experiment>/<run_id>.dcz
    path = Path(run.out_dir) / f"{run.row['run_id']}.dcz"
    if not is_rank_zero():  # every rank evaluates a decoded file; rank 0's is the one kept
        path = path.with_suffix(f".rank{os.environ.get('LOCAL_RANK', 'x')}.dcz")
    _check_ranks_agree(run)
    coder = run.plugins["encode.coder"]
    layers = layer_inputs(run, coder)
    keys = {l.key for l in layers}
    raw = {k: v.cpu() for k, v in clean_state_dict(run.model, run.specs).items() if k not in keys}
    # The file names the network (class and constructor arguments) and nothing run-specific: the same
    # weights always give the same bytes. The row keeps the run id.
    meta = {"model": architecture_of(run.conf.model, run.shape)}
    report = write_compressed(path, layers, raw, meta, float_dtype=c.float_dtype, coder=coder)
    try:
        decoded = decode_model(path)
        if run.storage_only:
            _check_round_trip(run, decoded, c.float_dtype)
        else:
            run.record("compressed", run.evaluate(decoded, val=True))
    except BaseException:
        path.unlink(missing_ok=True)  # no file without its row
        raise
    if not is_rank_zero():
        path.unlink(missing_ok=True)
    for lr in report["layers"]:
        e = run.layer_entry(lr["name"])
        e.update({k: _round(lr[k]) for k in LAYER_KEYS if k in lr})
    for layer in layers:
        run.layer_entry(layer.name).update(stream_symbol_counts(layer))
    run.row["size"] = {k: int(report[k]) for k in ("dense_bytes", "pq_bytes", "pqh_bytes", "file_bytes")}
    run.row.setdefault("ratio", {}).update({k: round(float(v), 4) for k, v in report["ratio"].items() if k != "p"})
    run.row["artifacts"]["compressed_file"] = str(path)
    log.info("compressed file %s: %d bytes, %.1fx", path, report["file_bytes"], report["ratio"]["pqh"])


def _round(v):
    return round(float(v), 4) if isinstance(v, float) else v


def _check_round_trip(run, decoded: torch.nn.Module, float_dtype: str = "float32") -> None:
    """The file must decode to exactly the in-memory quantized weights, rounded to ``float_dtype``
    (storage-only runs have no data to test on)."""
    want = clean_state_dict(run.model, run.specs)
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
    dist.all_gather_object(digests, rank_digest(run.model, run.specs))
    run.row["ranks"] = {"world_size": len(digests), "identical_masks_and_codebooks": len(set(digests)) == 1}
    if len(set(digests)) != 1:
        raise RuntimeError(f"masks/codebooks differ across DDP ranks: {digests}")
