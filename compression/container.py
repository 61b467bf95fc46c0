"""The compressed model file (``.dcz``): sparse + quantized + entropy-coded layers, one file.

Layout (all integers little-endian)::

    magic      8 bytes  b"\\x89DCZ\\r\\n\\x1a\\n"
    version    uint16   FORMAT_VERSION (4; versions 1 to 3 are still read)
    header_len uint32   bytes of the (deflated) header
    file_len   uint64   total file size (detects truncation before anything else)
    header     compact UTF-8 JSON, zlib-deflated: meta, chunk size, codebook float type, the entropy
               coder that wrote every stream (its name, ``compression.coders``), per layer (key, name,
               kind, shape, weight bits, index bits, sparse, non-zeros, entries, stored codebook
               entries, per stream [bits, table bytes, offset bytes]), per raw tensor (key,
               shape, dtype)
    payload    per layer, in header order:
                 weight table    the coder's table of the weight indices (Huffman: the code lengths,
                                 huffman.pack_lengths)
                 codebook        the centroids of the symbols present in the weight stream (the
                                 table says which), in symbol order, as float32 or float16; a sparse
                                 layer's index 0 is always 0.0 and never stored; the centroids
                                 of absent symbols (empty clusters) are never read, so not stored
                 weight stream   the coded bits, padded to a byte
                 weight offsets  chunk offsets (Huffman: huffman.pack_offsets; empty for <= 1 chunk)
                 gap table, gap stream, gap offsets   (sparse layers only)
               then every raw tensor (biases, ...): floating ones in the codebook float type,
               others in their own dtype, row-major
    sha256     32 bytes over everything before it

Version 3 (still read) is version 4 without the coder's name: every stream is Huffman-coded.
Version 2 (still read) is version 3 with the JSON header stored as plain text: 978 bytes for a
LeNet-5 file, which deflate makes 389 (the fixed bytes around it are 54). Version 1 (still read)
also stored all 2**weight_bits codebook entries as float32 before the weight table, and only
fixed-width code tables.

A sparse layer stores relative-index entries (``sparse_format``): weight stream = codebook index
per entry (0 for fillers), gap stream = stored gaps. A dense-quantized layer (``sparse=False``)
stores one codebook index per weight (no gap stream; index 0 not reserved).

Reading checks magic, version, file length and checksum before parsing the header, checks the
header's section sizes against the payload before decoding, and checks every decoded stream
(chunks end where recorded, non-zero count matches, indices within the codebook); any failure
raises ``CompressedFileError`` naming the file. The state dict holds the layers first (header
order), then the raw tensors (caller's order).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import huffman
from .accounting import layer_accounting, totals
from .atomic import atomic_write
from .coders import CodedStream, EntropyCoder, coder_named
from .sparse_format import decode_relative, encode_relative, uint_dtype
from .specs import KINDS

__all__ = [
    "MAGIC",
    "FORMAT_VERSION",
    "LayerInput",
    "CompressedFileError",
    "write_compressed",
    "read_compressed",
    "inspect",
    "read_layers",
]

MAGIC = b"\x89DCZ\r\n\x1a\n"
FORMAT_VERSION = 4
READ_VERSIONS = (1, 2, 3, 4)
OLD_CODER = "huffman"  # versions 1-3 do not name their coder: every stream is Huffman-coded
MAX_HEADER_BYTES = 64 << 20  # an inflated header beyond this is a damaged file, not a model
FLOAT_DTYPES = ("float32", "float16")  # how codebooks and floating raw tensors are stored
_PREFIX = struct.Struct("<8sHIQ")  # magic, version, header_len, file_len
_DIGEST = 32
FIXED_BYTES = _PREFIX.size + _DIGEST  # plus the JSON header
MAX_BITS = 16  # weight and index bits: alphabets up to 2**16 (huffman.MAX_LEN)
_RAW_DTYPES = {"float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8", "bool"}


class CompressedFileError(ValueError):
    """A compressed model file is missing, damaged, truncated or not ours."""


@dataclass
class LayerInput:
    """One weight tensor to store. ``labels`` index ``codebook`` (flattened row-major)."""

    key: str
    name: str
    kind: str
    shape: tuple[int, ...]
    codebook: np.ndarray
    labels: np.ndarray
    weight_bits: int
    index_bits: int
    sparse: bool = True


def _np(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu()
        if a.dtype == torch.bfloat16:
            a = a.float()
        return a.numpy()
    return np.asarray(a)


# --------------------------------------------------------------------------- write


def _stored_symbols(present: np.ndarray, sparse: bool) -> np.ndarray:
    """Symbols whose centroid the file stores: present in the stream, and not a sparse layer's 0."""
    present = np.flatnonzero(np.asarray(present))
    return present[present > 0] if sparse else present


def _layer_sections(layer: LayerInput, chunk: int, float_dtype: str, coder: EntropyCoder) -> tuple[dict, list[bytes]]:
    if not isinstance(layer.key, str) or not layer.key:
        raise ValueError("layer key must be a non-empty string")
    where = f"layer {layer.key!r}"
    if layer.kind not in KINDS:
        raise ValueError(f"{where}: kind must be one of {KINDS}, got {layer.kind!r}")
    wb = int(layer.weight_bits)
    if not 1 <= wb <= MAX_BITS:
        raise ValueError(f"{where}: weight_bits must be in 1..{MAX_BITS}, got {layer.weight_bits}")
    sparse = bool(layer.sparse)
    ib = int(layer.index_bits) if sparse else 0
    if sparse and not 1 <= ib <= MAX_BITS:
        raise ValueError(f"{where}: index_bits must be in 1..{MAX_BITS}, got {layer.index_bits}")
    shape = [int(s) for s in layer.shape]
    if any(s < 0 for s in shape):
        raise ValueError(f"{where}: negative dimension in shape {shape}")
    n = math.prod(shape)
    k = 1 << wb
    cb = _np(layer.codebook).astype(np.float32).reshape(-1)
    if cb.size != k:
        raise ValueError(f"{where}: codebook has {cb.size} entries, {wb} bits need {k}")
    if not np.all(np.isfinite(cb)):
        raise ValueError(f"{where}: codebook has non-finite values")
    if sparse and cb[0] != 0.0:
        raise ValueError(f"{where}: a sparse layer's codebook[0] must be 0.0 (got {cb[0]})")
    labels = _np(layer.labels).reshape(-1)
    if labels.size != n:
        raise ValueError(f"{where}: {labels.size} labels for shape {tuple(shape)} ({n} weights)")
    if labels.size and labels.dtype.kind not in "iub":
        raise TypeError(f"{where}: labels must be integers, got {labels.dtype}")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise ValueError(f"{where}: labels must lie in 0..{k - 1}")
    labels = labels.astype(uint_dtype(k - 1), copy=False)
    if sparse:
        symbols, gaps = encode_relative(labels, ib)
        nz = int(np.count_nonzero(symbols))
    else:
        symbols, gaps, nz = labels, None, n
    entries = int(symbols.size)
    wenc = coder.encode(symbols, k, chunk)
    stored = _stored_symbols(coder.present(wenc.table, k), sparse)
    with np.errstate(over="ignore"):  # an overflow is reported just below
        cb_stored = cb[stored].astype(np.dtype(float_dtype).newbyteorder("<"))
    if not np.all(np.isfinite(cb_stored)):
        raise ValueError(f"{where}: a centroid does not fit {float_dtype} (use encode.float_dtype=float32)")
    head = {
        "key": layer.key, "name": str(layer.name), "kind": layer.kind, "shape": shape,
        "wb": wb, "ib": ib, "sparse": int(sparse), "nz": nz, "e": entries, "c": int(stored.size),
        "w": [wenc.n_bits, len(wenc.table), len(wenc.offsets)],
    }
    sections = [wenc.table, cb_stored.tobytes(), wenc.payload, wenc.offsets]
    if sparse:
        genc = coder.encode(gaps, 1 << ib, chunk)
        head["g"] = [genc.n_bits, len(genc.table), len(genc.offsets)]
        sections += [genc.table, genc.payload, genc.offsets]
    return head, sections


def _raw_section(key: str, value, float_dtype: str = "float32") -> tuple[dict, bytes, int]:
    if not isinstance(key, str) or not key:
        raise ValueError("raw tensor keys must be non-empty strings")
    a = _np(value)
    if a.dtype.kind == "f":
        finite = np.isfinite(a)
        with np.errstate(over="ignore"):  # an overflow is reported just below
            a = a.astype(float_dtype)
        if not np.array_equal(np.isfinite(a), finite):
            raise ValueError(f"raw tensor {key!r}: a value does not fit {float_dtype} "
                             "(use encode.float_dtype=float32)")
    elif a.dtype.name not in _RAW_DTYPES:
        raise TypeError(f"raw tensor {key!r}: unsupported dtype {a.dtype}")
    a = np.ascontiguousarray(a)
    data = a.astype(a.dtype.newbyteorder("<")).tobytes()
    return {"key": key, "shape": [int(s) for s in a.shape], "dtype": a.dtype.name}, data, int(a.size)


def write_compressed(path, layers: list[LayerInput], raw: dict, meta: dict, *,
                     chunk_size: int = huffman.DEFAULT_CHUNK, float_dtype: str = "float32",
                     coder: EntropyCoder | None = None) -> dict:
    """Encode ``layers`` + ``raw`` tensors into ``path`` atomically; return the report.

    ``float_dtype`` ("float32", the paper's 32-bit codebook entries, or "float16") is how the
    codebooks and floating raw tensors (biases) are stored; with float16 the decoded model holds
    the rounded values, and that is the model the pipeline evaluates. ``coder`` (an
    ``EntropyCoder``, default Huffman) codes every stream; the header records its name.

    The report is ``{"layers": [accounting row per layer], "size": ..., "ratio": ..., "total":
    ..., "meta": meta, "raw": [...], "chunk_size": int}`` plus the four ``size`` keys
    (``dense_bytes``, ``pq_bytes``, ``pqh_bytes``, ``file_bytes``) repeated at the top level
    (see ``accounting``). Nothing is written if encoding fails;
    the file appears only complete (temp file in the same folder, fsync, ``os.replace``).
    """
    keys = [l.key for l in layers] + list(raw)
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate state_dict keys among layers and raw tensors")
    chunk_size = int(chunk_size)
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    if float_dtype not in FLOAT_DTYPES:
        raise ValueError(f"float_dtype must be one of {FLOAT_DTYPES}, got {float_dtype!r}")
    if coder is None:
        from .coders.huffman import Huffman

        coder = Huffman()
    coder_named(coder.name)  # a reader must find it by its name, or the file could never be read
    heads, sections = [], []
    for layer in layers:
        h, s = _layer_sections(layer, chunk_size, float_dtype, coder)
        heads.append(h)
        sections += s
    raw_heads = []
    for key, value in raw.items():
        h, data, _ = _raw_section(key, value, float_dtype)
        raw_heads.append(h)
        sections.append(data)
    header = {"v": FORMAT_VERSION, "meta": meta, "chunk": chunk_size, "fd": float_dtype, "coder": coder.name,
              "layers": heads, "raw": raw_heads}
    try:
        hbytes = zlib.compress(json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8"), 9)
    except (TypeError, ValueError) as e:
        raise ValueError(f"meta is not JSON-serializable: {e}") from None
    payload_len = sum(len(s) for s in sections)
    file_len = _PREFIX.size + len(hbytes) + payload_len + _DIGEST
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(hbytes), file_len)

    def write(f):
        h = hashlib.sha256()
        for piece in (prefix, hbytes, *sections):
            h.update(piece)
            f.write(piece)
        f.write(h.digest())

    atomic_write(path, write)
    return _report(header, payload_len, file_len)


# --------------------------------------------------------------------------- read


def _report(header: dict, payload_len: int, file_len: int) -> dict:
    rows = []
    for h in header["layers"]:
        g = h.get("g") or [0, 0, 0]
        rows.append(layer_accounting(
            key=h["key"], shape=tuple(h["shape"]),
            name=h["name"], kind=h["kind"], weights=math.prod(h["shape"]), nonzeros=h["nz"],
            entries=h["e"], weight_bits=h["wb"], index_bits=h["ib"], sparse=bool(h["sparse"]),
            weight_stream_bits=h["w"][0], index_stream_bits=g[0],
            table_bits=8 * (h["w"][1] + g[1]), offset_bits=8 * (h["w"][2] + g[2]),
            codebook_bits=8 * _codebook_nbytes(header, h),
        ))
    raw_el = sum(math.prod(r["shape"]) for r in header["raw"])
    raw_bytes = sum(_raw_nbytes(r) for r in header["raw"])
    out = totals(rows, raw_elements=raw_el, raw_bytes=raw_bytes, pqh_bytes=payload_len, file_bytes=file_len)
    out.update(out["size"])  # also flat: report["file_bytes"] == report["size"]["file_bytes"], ...
    out["layers"] = rows
    out["raw"] = [{"key": r["key"], "shape": tuple(r["shape"]), "dtype": r["dtype"]} for r in header["raw"]]
    out["meta"] = header["meta"]
    out["chunk_size"] = header["chunk"]
    return out


def _codebook_nbytes(header: dict, h: dict) -> int:
    if header["v"] == 1:
        return 4 << h["wb"]
    return h["c"] * np.dtype(header["fd"]).itemsize


def _raw_nbytes(r: dict) -> int:
    return math.prod(r["shape"]) * np.dtype(r["dtype"]).itemsize


def _is_int(x, lo=0) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= lo


def _validate_header(header) -> list[tuple[str, int]]:
    """Check the header's structure; return the payload sections as (what, size) in order."""
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    for k in ("v", "meta", "chunk", "layers", "raw"):
        if k not in header:
            raise ValueError(f"header lacks {k!r}")
    if header["v"] not in READ_VERSIONS:
        raise ValueError(f"header version {header['v']!r} not in {READ_VERSIONS}")
    v1 = header["v"] == 1
    if not v1 and header.get("fd") not in FLOAT_DTYPES:
        raise ValueError(f"codebook float type {header.get('fd')!r} not in {FLOAT_DTYPES}")
    if header["v"] >= 4 and not isinstance(header.get("coder"), str):
        raise ValueError("header names no coder")
    if not _is_int(header["chunk"], 1):
        raise ValueError("bad chunk size")
    if not isinstance(header["layers"], list) or not isinstance(header["raw"], list):
        raise ValueError("layers/raw are not lists")
    sections = []
    keys = []
    for h in header["layers"]:
        if not isinstance(h, dict):
            raise ValueError("layer entry is not an object")
        for k in ("key", "name", "kind", "shape", "wb", "ib", "sparse", "nz", "e", "w") + (() if v1 else ("c",)):
            if k not in h:
                raise ValueError(f"layer entry lacks {k!r}")
        key = h["key"]
        if not isinstance(key, str) or not isinstance(h["name"], str) or h["kind"] not in KINDS:
            raise ValueError("bad layer key/name/kind")
        if not isinstance(h["shape"], list) or not all(_is_int(s) for s in h["shape"]):
            raise ValueError(f"layer {key!r}: bad shape")
        n = math.prod(h["shape"])
        if not (_is_int(h["wb"], 1) and h["wb"] <= MAX_BITS) or h["sparse"] not in (0, 1):
            raise ValueError(f"layer {key!r}: bad weight bits / sparse flag")
        sparse = h["sparse"] == 1
        if sparse and not (_is_int(h["ib"], 1) and h["ib"] <= MAX_BITS):
            raise ValueError(f"layer {key!r}: bad index bits")
        if not sparse and h["ib"] != 0:
            raise ValueError(f"layer {key!r}: dense layer with index bits")
        if not (_is_int(h["nz"]) and _is_int(h["e"])) or h["nz"] > n or h["nz"] > h["e"]:
            raise ValueError(f"layer {key!r}: bad non-zero / entry counts")
        if not sparse and (h["e"] != n or h["nz"] != n):
            raise ValueError(f"layer {key!r}: a dense layer must store every weight")
        if sparse and h["e"] > n:
            raise ValueError(f"layer {key!r}: more entries than weights")
        streams = [("w", 1 << h["wb"])] + ([("g", 1 << h["ib"])] if sparse else [])
        if not sparse and "g" in h:
            raise ValueError(f"layer {key!r}: dense layer with a gap stream")
        if not v1 and not (_is_int(h["c"]) and h["c"] <= (1 << h["wb"])):
            raise ValueError(f"layer {key!r}: bad codebook entry count")
        codebook = (f"layer {key!r} codebook", _codebook_nbytes(header, h))
        if v1:
            sections.append(codebook)
        for s, _alphabet in streams:
            v = h.get(s)
            if not (isinstance(v, list) and len(v) == 3 and all(_is_int(x) for x in v)):
                raise ValueError(f"layer {key!r}: bad stream entry {s!r}")
            sections.append((f"layer {key!r} {s} table", v[1]))
            if s == "w" and not v1:
                sections.append(codebook)  # v2: after the weight table, which says which are stored
            sections += [(f"layer {key!r} {s} stream", (v[0] + 7) >> 3), (f"layer {key!r} {s} offsets", v[2])]
        keys.append(key)
    for r in header["raw"]:
        if not (isinstance(r, dict) and isinstance(r.get("key"), str) and isinstance(r.get("shape"), list)
                and all(_is_int(s) for s in r["shape"]) and isinstance(r.get("dtype"), str)
                and r["dtype"] in _RAW_DTYPES):
            raise ValueError("bad raw tensor entry")
        sections.append((f"raw {r['key']!r}", _raw_nbytes(r)))
        keys.append(r["key"])
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate keys")
    return sections


def _header_text(raw: bytes, version: int) -> str:
    """The header's JSON text: deflated from version 3 on, plain before."""
    if version < 3:
        return raw.decode("utf-8")
    d = zlib.decompressobj()
    text = d.decompress(raw, MAX_HEADER_BYTES)
    if d.unconsumed_tail:
        raise ValueError(f"header inflates past {MAX_HEADER_BYTES} bytes")
    if not d.eof or d.unused_data:
        raise ValueError("deflated header is incomplete or followed by other bytes")
    return text.decode("utf-8")


def _load(path) -> tuple[dict, memoryview, str, int]:
    """Read and verify the container; return (header, payload, sha256 hex, file_len)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise CompressedFileError(f"{p}: no such file") from None
    except OSError as e:
        raise CompressedFileError(f"{p}: cannot read: {e.strerror or e}") from None
    if len(data) < 8 or data[:8] != MAGIC:
        raise CompressedFileError(f"{p}: not a Deep Compression file (wrong magic bytes)")
    if len(data) < _PREFIX.size:
        raise CompressedFileError(f"{p}: truncated ({len(data)} bytes, shorter than the fixed header)")
    _, version, hlen, flen = _PREFIX.unpack_from(data)
    if version not in READ_VERSIONS:
        raise CompressedFileError(f"{p}: unsupported format version {version} (this reader knows {READ_VERSIONS})")
    if len(data) != flen:
        what = "truncated" if len(data) < flen else "has trailing bytes"
        raise CompressedFileError(f"{p}: {what} (header says {flen} bytes, file has {len(data)})")
    if _PREFIX.size + hlen + _DIGEST > flen:
        raise CompressedFileError(f"{p}: damaged (header length {hlen} exceeds the file)")
    digest = data[-_DIGEST:]
    if hashlib.sha256(memoryview(data)[:-_DIGEST]).digest() != digest:
        raise CompressedFileError(f"{p}: damaged (SHA-256 checksum mismatch)")
    try:
        header = json.loads(_header_text(data[_PREFIX.size:_PREFIX.size + hlen], version))
        sections = _validate_header(header)
        if header["v"] != version:
            raise ValueError(f"header says version {header['v']}, the file prefix {version}")
    except (UnicodeDecodeError, ValueError, zlib.error) as e:
        raise CompressedFileError(f"{p}: invalid header ({e})") from None
    payload = memoryview(data)[_PREFIX.size + hlen:-_DIGEST]
    need = sum(s for _, s in sections)
    if need != len(payload):
        raise CompressedFileError(f"{p}: header describes {need} payload bytes, file holds {len(payload)}")
    return header, payload, digest.hex(), flen


def _decode_layers(p, header: dict, payload: memoryview):
    """Yield ("layer", header entry, codebook [2**wb] float32, labels) per layer, then ("raw", key,
    array) per raw tensor, every stream fully verified."""
    chunk = header["chunk"]
    off = 0
    try:
        coder = coder_named(header.get("coder", OLD_CODER))
    except ValueError as ex:
        raise CompressedFileError(f"{p}: {ex}") from None

    def take(n):
        nonlocal off
        b = bytes(payload[off:off + n])
        off += n
        return b

    def stream(spec, table, entries, alphabet):
        """The coded bits and chunk offsets that follow a stream's table, decoded."""
        nbits, _, olen = spec
        payload_bytes = take((nbits + 7) >> 3)
        return coder.decode(CodedStream(table, payload_bytes, take(olen), nbits), entries, alphabet, chunk)

    v1 = header["v"] == 1
    for h in header["layers"]:
        key, wb, ib, e, sparse = h["key"], h["wb"], h["ib"], h["e"], h["sparse"] == 1
        n = math.prod(h["shape"])
        k = 1 << wb
        try:
            if v1:  # all 2**wb float32 centroids, then the weight table
                cb = np.frombuffer(take(4 * k), "<f4").astype(np.float32)
                if sparse and cb[0] != 0.0:
                    raise ValueError("codebook[0] of a sparse layer is not 0")
                wtable = take(h["w"][1])
                coder.present(wtable, k)  # checks the table
            else:  # the weight table, then the centroids of the symbols it says are present
                wtable = take(h["w"][1])
                stored = _stored_symbols(coder.present(wtable, k), sparse)
                if stored.size != h["c"]:
                    raise ValueError(f"the code table has {stored.size} stored centroids, header says {h['c']}")
                fd = np.dtype(header["fd"])
                cb = np.zeros(k, np.float32)
                cb[stored] = np.frombuffer(take(stored.size * fd.itemsize), fd.newbyteorder("<"))
            if not np.all(np.isfinite(cb)):
                raise ValueError("non-finite codebook value")
            symbols = stream(h["w"], wtable, e, k)
            if sparse:
                gaps = stream(h["g"], take(h["g"][1]), e, 1 << ib)
                labels = decode_relative(symbols, gaps, n, ib)
                if int(np.count_nonzero(labels)) != h["nz"]:
                    raise ValueError(f"{np.count_nonzero(labels)} non-zeros decoded, header says {h['nz']}")
            else:
                labels = symbols
        except ValueError as ex:
            raise CompressedFileError(f"{p}: layer {key!r} does not decode ({ex})") from None
        yield "layer", h, cb, labels.reshape(h["shape"])
    for r in header["raw"]:
        dt = np.dtype(r["dtype"]).newbyteorder("<")
        a = np.frombuffer(take(_raw_nbytes(r)), dt).astype(np.dtype(r["dtype"])).reshape(r["shape"])
        if a.dtype == np.float16:  # stored rounded to float16 (float_dtype); the model computes in float32
            a = a.astype(np.float32)
        yield "raw", r["key"], a


def _decode_all(p, header: dict, payload: memoryview):
    """Yield (key, numpy array) for every layer and raw tensor, fully verified."""
    for what, *item in _decode_layers(p, header, payload):
        if what == "layer":
            h, cb, labels = item
            yield h["key"], cb[labels]
        else:
            yield item[0], item[1]


def read_layers(path) -> tuple[list[LayerInput], dict[str, np.ndarray], dict, dict]:
    """A file's layers as stored -- codebook and per-weight labels, not expanded weights -- with its
    raw tensors, meta and report: ``(layers, raw, meta, report)``. ``LayerInput.codebook`` has all
    2**weight_bits entries (those the file does not store, never referenced, are 0)."""
    header, payload, _digest, flen = _load(path)
    layers, raw = [], {}
    for what, *item in _decode_layers(Path(path), header, payload):
        if what == "layer":
            h, cb, labels = item
            layers.append(LayerInput(key=h["key"], name=h["name"], kind=h["kind"], shape=tuple(h["shape"]),
                                     codebook=cb, labels=labels, weight_bits=h["wb"], index_bits=h["ib"],
                                     sparse=h["sparse"] == 1))
        else:
            raw[item[0]] = item[1]
    return layers, raw, header["meta"], _report(header, len(payload), flen)


def read_compressed(path) -> tuple[dict[str, torch.Tensor], dict, dict]:
    """Decode a file written by :func:`write_compressed`: (state_dict, meta, report).

    Raises ``CompressedFileError`` (naming the file and the fault) for a missing, truncated,
    damaged or foreign file; the checksum is verified before anything is decoded.
    """
    header, payload, _digest, flen = _load(path)
    sd = {key: torch.from_numpy(np.array(a, copy=True)) for key, a in _decode_all(Path(path), header, payload)}
    return sd, header["meta"], _report(header, len(payload), flen)


def inspect(path, decode: bool = True) -> dict:
    """Per-layer accounting + verification, with numpy only (no torch tensors).

    Always verifies magic, version, length, checksum and header; with ``decode=True`` (default)
    also decodes every stream and checks it. Returns the report (as ``write_compressed``) plus
    ``path``, ``format_version``, ``sha256`` and ``verified`` ("checksum" or "checksum+decode").
    """
    header, payload, digest, flen = _load(path)
    if decode:
        for _ in _decode_all(Path(path), header, payload):
            pass
    rep = _report(header, len(payload), flen)
    rep.update(path=str(path), format_version=header["v"], sha256=digest, coder=header.get("coder", OLD_CODER),
               verified="checksum+decode" if decode else "checksum")
    return rep
