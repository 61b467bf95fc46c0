"""Storage accounting: the columns of DC Tables 2-5, from what is actually encoded.

Per layer (``layer_accounting``), with ``K = 2**weight_bits`` codebook entries:

* ``weights``   numel of the weight tensor; ``nonzeros`` surviving (non-pruned) weights; for a
  dense-quantized layer every weight is stored, so ``nonzeros = weights`` (density 1).
* ``density``   nonzeros / weights.
* ``entries``   stored entries = nonzeros + ``fillers`` (relative-index filler zeros, DC Fig. 2);
  a dense-quantized layer stores ``weights`` entries and no fillers.
* ``weight_bits_pq`` = weight_bits; ``index_bits_pq`` = index_bits (0 for dense-quantized).
* ``weight_bits_pqh`` = real Huffman bits of the weight-index stream / entries;
  ``index_bits_pqh`` = real Huffman bits of the gap stream / entries (0 for dense-quantized).
* ``pq_bits``   = entries * (weight_bits + index_bits) + 32 * K   (fixed-width indices + fp32
                 codebook: the paper's formula, DC section 3 Eq. 1)
* ``pqh_bits``  = weight-stream bits + gap-stream bits (real, not padded to bytes)
                 + code-table bits (the stored tables: 8 * their bytes)
                 + chunk-offset bits (8 * the stored offset bytes)
                 + ``codebook_bits``: the codebook as stored (file format 2: only the centroids
                 of symbols present in the stream, a sparse layer's 0 implied, float32 or
                 float16; 32 * K when not given, as format 1 stored it)
* ``pct_pq``  = 100 * pq_bits / (32 * weights);  ``pct_pqh`` = 100 * pqh_bits / (32 * weights).

Totals (``totals``):

* ``size.dense_bytes`` = 4 * (all weights + all raw tensor elements: biases etc.)
* ``size.pq_bytes``    = ceil(sum of pq_bits / 8) + bytes of the raw tensors as stored
* ``size.pqh_bytes``   = bytes of every payload section actually written to the file: codebooks,
  code tables, bitstreams (padded to whole bytes), chunk offsets, raw tensors; i.e. the file
  size minus the fixed part (magic, version, lengths, JSON header with shapes/metadata, SHA-256).
* ``size.file_bytes``  = real size of the file on disk.
* ``ratio.p`` = weights / nonzeros (over all layers), ``ratio.pq`` = dense_bytes / pq_bytes,
  ``ratio.pqh`` = dense_bytes / pqh_bytes.
* ``total``: the table's "total" row: sums, and bits per entry averaged over all entries
  (``weight_bits_pq`` = sum(entries * weight_bits) / sum(entries), ``weight_bits_pqh`` = sum of
  weight-stream bits / sum(entries), likewise for the index), ``pct_*`` over all weights.
"""

from __future__ import annotations

import math

__all__ = ["layer_accounting", "totals", "huffman_bits", "best_index_bits", "pruned_ratio", "lowrank_ratio"]


def _div(a: float, b: float) -> float:
    return float(a) / float(b) if b else 0.0


def layer_accounting(
    *,
    name: str,
    kind: str,
    weights: int,
    nonzeros: int,
    entries: int,
    weight_bits: int,
    index_bits: int,
    sparse: bool,
    weight_stream_bits: int,
    index_stream_bits: int,
    table_bits: int,
    offset_bits: int,
    codebook_bits: int | None = None,
    **extra,
) -> dict:
    """One row of DC Tables 2-5 (see the module docstring). ``extra`` keys are copied first."""
    k = 1 << int(weight_bits)
    ib = int(index_bits) if sparse else 0
    pq_bits = entries * (weight_bits + ib) + 32 * k
    codebook_bits = 32 * k if codebook_bits is None else int(codebook_bits)
    pqh_bits = weight_stream_bits + index_stream_bits + table_bits + offset_bits + codebook_bits
    row = dict(extra)
    row.update(
        name=name,
        kind=kind,
        sparse=bool(sparse),
        weights=int(weights),
        nonzeros=int(nonzeros),
        density=_div(nonzeros, weights),
        entries=int(entries),
        fillers=int(entries - nonzeros) if sparse else 0,
        weight_bits_pq=int(weight_bits),
        weight_bits_pqh=_div(weight_stream_bits, entries),
        index_bits_pq=ib,
        index_bits_pqh=_div(index_stream_bits, entries),
        codebook_bits=codebook_bits,
        weight_stream_bits=int(weight_stream_bits),
        index_stream_bits=int(index_stream_bits),
        table_bits=int(table_bits),
        offset_bits=int(offset_bits),
        pq_bits=int(pq_bits),
        pqh_bits=int(pqh_bits),
        pct_pq=_div(100.0 * pq_bits, 32 * weights),
        pct_pqh=_div(100.0 * pqh_bits, 32 * weights),
    )
    return row


def totals(layers: list[dict], *, raw_elements: int, raw_bytes: int, pqh_bytes: int, file_bytes: int) -> dict:
    """``{"size": ..., "ratio": ..., "total": ...}`` from the per-layer rows (module docstring)."""
    w = sum(r["weights"] for r in layers)
    nz = sum(r["nonzeros"] for r in layers)
    e = sum(r["entries"] for r in layers)
    pq_bits = sum(r["pq_bits"] for r in layers)
    pqh_bits = sum(r["pqh_bits"] for r in layers)
    dense_bytes = 4 * (w + int(raw_elements))
    pq_bytes = math.ceil(pq_bits / 8) + int(raw_bytes)
    total = {
        "weights": w,
        "nonzeros": nz,
        "density": _div(nz, w),
        "entries": e,
        "fillers": sum(r["fillers"] for r in layers),
        "weight_bits_pq": _div(sum(r["entries"] * r["weight_bits_pq"] for r in layers), e),
        "weight_bits_pqh": _div(sum(r["weight_stream_bits"] for r in layers), e),
        "index_bits_pq": _div(sum(r["entries"] * r["index_bits_pq"] for r in layers), e),
        "index_bits_pqh": _div(sum(r["index_stream_bits"] for r in layers), e),
        "pq_bits": pq_bits,
        "pqh_bits": pqh_bits,
        "pct_pq": _div(100.0 * pq_bits, 32 * w),
        "pct_pqh": _div(100.0 * pqh_bits, 32 * w),
        "raw_elements": int(raw_elements),
        "raw_bytes": int(raw_bytes),
    }
    size = {"dense_bytes": dense_bytes, "pq_bytes": pq_bytes, "pqh_bytes": int(pqh_bytes), "file_bytes": int(file_bytes)}
    ratio = {"p": _div(w, nz), "pq": _div(dense_bytes, pq_bytes), "pqh": _div(dense_bytes, pqh_bytes)}
    return {"size": size, "ratio": ratio, "total": total}


def huffman_bits(symbols, alphabet: int) -> int:
    """Bits of a Huffman-coded stream plus its stored code table (what the file would hold)."""
    import numpy as np

    from compression.huffman import code_lengths, pack_lengths

    counts = np.bincount(np.asarray(symbols, dtype=np.int64), minlength=alphabet)
    lengths = code_lengths(counts)
    return int((counts * lengths.astype(np.int64)).sum()) + 8 * len(pack_lengths(lengths))


def best_index_bits(labels, weight_bits: int, candidates=range(2, 13), coder=None) -> tuple[int, dict[int, int]]:
    """The relative-index width that makes a layer's P+Q+H storage smallest.

    Wider gaps need fewer filler entries (each costs a weight index and a gap) but a larger
    gap alphabet; after entropy coding (``coder``, default Huffman) the optimum is often above
    the paper's fixed 4-5 bits. Returns (best width, {width: weight-stream + gap-stream + table bits}).
    """
    from compression.sparse_format import encode_relative

    if coder is None:
        from compression.coders.huffman import Huffman

        coder = Huffman()
    cost = {}
    for b in candidates:
        symbols, gaps = encode_relative(labels, b)
        cost[b] = coder.cost_bits(symbols, 2**weight_bits) + coder.cost_bits(gaps, 2**b)
    best = min(cost, key=lambda b: (cost[b], b))
    return best, cost


def pruned_ratio(layers, raw_elements: int) -> float:
    """Pruning alone, stored (DC Fig. 6 "pruning only"): dense fp32 bytes / sparse bytes.

    ``layers``: (non-zero mask, gap width) per compressed tensor. Each layer stores every non-zero
    and every filler entry as a 32-bit value plus a ``gap width``-bit relative index (DC Fig. 2);
    every other tensor (biases, ...; ``raw_elements`` numbers) as fp32.
    """
    import numpy as np

    from compression.sparse_format import encode_relative

    bits = weights = 0
    for mask, index_bits in layers:
        nonzero = (np.asarray(mask).ravel() != 0).astype(np.uint8)
        symbols, _ = encode_relative(nonzero, int(index_bits))
        bits += int(symbols.size) * (32 + int(index_bits))
        weights += nonzero.size
    return 4 * (weights + raw_elements) / (math.ceil(bits / 8) + 4 * raw_elements)


def lowrank_ratio(weights: int, raw_elements: int, stored_numbers: int) -> float:
    """A low-rank baseline (DC Fig. 6 "SVD"), fp32 throughout: (weights + other tensors) / (the
    numbers stored for the weights -- factors, and untouched layers whole -- + other tensors)."""
    return (weights + raw_elements) / (stored_numbers + raw_elements)


def paper_format(layer, index_bits: int, coder=None) -> dict:
    """One layer re-encoded in DC's own format (Tables 2-5): ``index_bits``-bit gaps, Huffman-coded
    streams with their code tables, the fixed 2**bits-entry fp32 codebook, no chunk offsets.

    ``layer`` is a ``container.LayerInput`` (as ``container.read_layers`` returns it). Returns its
    ``layer_accounting`` row, so a layer stored with searched gap widths and float16 codebooks can be
    compared with the paper's cell in the paper's format, from the same weights.
    """
    import numpy as np

    from compression.sparse_format import encode_relative

    if coder is None:
        from compression.coders.huffman import Huffman

        coder = Huffman()
    labels = np.asarray(layer.labels).ravel()
    k = 1 << int(layer.weight_bits)
    if layer.sparse:
        symbols, gaps = encode_relative(labels, int(index_bits))
    else:
        symbols, gaps = labels, np.zeros(0, np.int64)
    w = coder.encode(symbols, k, max(1, symbols.size))
    g = coder.encode(gaps, 1 << int(index_bits), max(1, gaps.size)) if layer.sparse else None
    return layer_accounting(
        name=layer.name, kind=layer.kind, weights=labels.size, nonzeros=int(np.count_nonzero(labels)) if layer.sparse
        else labels.size, entries=int(symbols.size), weight_bits=int(layer.weight_bits), index_bits=int(index_bits),
        sparse=layer.sparse, weight_stream_bits=w.n_bits, index_stream_bits=g.n_bits if g else 0,
        table_bits=8 * (len(w.table) + (len(g.table) if g else 0)), offset_bits=0, codebook_bits=32 * k)
