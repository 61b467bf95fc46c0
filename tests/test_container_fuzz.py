"""Fuzzing the compressed-file reader (hypothesis): random bytes, byte flips, truncations and appended
bytes of real files, and headers edited behind a recomputed checksum (what a buggy writer would make).

Whatever the bytes, reading either returns a model or raises the format's own ``CompressedFileError``
(which names the file), never another exception, and never hangs (a per-read alarm). A deeper search:
``FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/test_container_fuzz.py``."""

import contextlib
import functools
import hashlib
import json
import os
import signal
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compression import container
from compression.container import CompressedFileError, LayerInput, inspect, read_compressed, read_layers, \
    write_compressed

ROOT = Path(__file__).resolve().parents[1]
PREFIX = struct.Struct("<8sHIQ")  # magic, version, header length, file length (compression/container.py)
# The suite runs a fixed set of examples; FUZZ_EXAMPLES=5000 runs that many fresh random ones per test.
DEEP = int(os.environ.get("FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=DEEP or 120, deadline=None, derandomize=not DEEP,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SECONDS_PER_READ = 20


@contextlib.contextmanager
def _alarm(seconds: int):
    def boom(*_):
        raise TimeoutError(f"reading took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _small_file(path: Path) -> Path:
    """A real file: a sparse conv layer (8-bit), a sparse fc layer (5-bit) and a dense one (3-bit), biases."""
    rng = np.random.default_rng(0)
    layers = []
    for key, name, kind, shape, bits, sparse in [("c.weight", "conv1", "conv", (4, 2, 3, 3), 8, True),
                                                  ("f.weight", "ip1", "fc", (10, 64), 5, True),
                                                  ("g.weight", "ip2", "fc", (3, 10), 3, False)]:
        k = 1 << bits
        cb = np.sort(rng.standard_normal(k)).astype(np.float32)
        if sparse:
            cb[0] = 0.0
            labels = np.where(rng.random(shape) < 0.3, rng.integers(1, k, shape), 0)
        else:
            labels = rng.integers(0, k, shape)
        layers.append(LayerInput(key, name, kind, shape, cb, torch.from_numpy(labels), bits, 4, sparse=sparse))
    raw = {"c.bias": np.ones(4, np.float32), "f.bias": np.zeros(10, np.float32)}
    write_compressed(path, layers, raw, {"model": "fuzz"}, chunk_size=64)
    return path


@functools.lru_cache(maxsize=None)
def _file(name: str) -> bytes:
    """``small``: written here; ``lenet5``: the newest committed LeNet-5 file (the small one if there is none)."""
    if name == "lenet5":
        committed = sorted((ROOT / "results" / "runs" / "lenet5").glob("*.dcz"))
        if committed:
            return committed[-1].read_bytes()
    with tempfile.TemporaryDirectory() as d:
        return _small_file(Path(d) / "small.dcz").read_bytes()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzzcase") / "case.dcz"


def _reads_cleanly(blob: bytes, path: Path) -> None:
    """Every reader returns or raises CompressedFileError naming the file; anything else fails the test."""
    path.write_bytes(blob)
    for read in (read_compressed, read_layers, lambda p: inspect(p, decode=False), inspect):
        try:
            with _alarm(SECONDS_PER_READ):
                read(path)
        except CompressedFileError as e:
            assert str(path) in str(e)


def _reseal(blob: bytes) -> bytes:
    """Give damaged bytes a correct file length and SHA-256, so the reader must look further than the checksum."""
    body = bytearray(blob[:-32] if len(blob) >= PREFIX.size + 32 else blob)
    if len(body) >= PREFIX.size:
        magic, version, hlen, _ = PREFIX.unpack_from(body)
        PREFIX.pack_into(body, 0, magic, version, hlen, len(body) + 32)
    return bytes(body) + hashlib.sha256(bytes(body)).digest()


def _split(blob: bytes):
    _, version, hlen, _ = PREFIX.unpack_from(blob)
    raw = blob[PREFIX.size:PREFIX.size + hlen]
    header = json.loads(zlib.decompress(raw) if version >= 3 else raw)
    return version, header, blob[PREFIX.size + hlen:-32]


def _join(version: int, header, body: bytes) -> bytes:
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb = zlib.compress(hb) if version >= 3 else hb
    blob = PREFIX.pack(container.MAGIC, version, len(hb), PREFIX.size + len(hb) + len(body) + 32) + hb + body
    return blob + hashlib.sha256(blob).digest()


def _leaves(obj, path=()):
    """Paths of every number, string and list in a header (JSON)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(obj, list):
        yield path
        for i, v in enumerate(obj):
            yield from _leaves(v, path + (i,))
    else:
        yield path


def _set(obj, path, value):
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


def test_the_fixture_files_read(scratch):
    for blob in (_file("small"), _file("lenet5")):
        scratch.write_bytes(blob)
        read_compressed(scratch)  # the unmodified files decode


@FUZZ
@given(st.one_of(st.binary(max_size=4096), st.binary(max_size=4096).map(lambda b: container.MAGIC + b),
                 st.tuples(st.integers(1, 6), st.integers(0, 1 << 20), st.binary(max_size=2048)).map(
                     lambda t: _reseal(PREFIX.pack(container.MAGIC, t[0], t[1], 0) + t[2] + bytes(32)))))
def test_random_bytes_are_rejected(scratch, blob):
    _reads_cleanly(blob, scratch)
    if not blob.startswith(container.MAGIC):
        with pytest.raises(CompressedFileError, match="magic"):
            read_compressed(scratch)


@FUZZ
@given(name=st.sampled_from(["small", "lenet5"]), data=st.data(), reseal=st.booleans())
def test_byte_flips(scratch, name, data, reseal):
    blob = bytearray(_file(name))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(blob) - 1), st.integers(1, 255)), min_size=1, max_size=8,
                                      unique_by=lambda f: f[0]))
    for i, x in flips:
        blob[i] ^= x
    blob = _reseal(bytes(blob)) if reseal else bytes(blob)
    _reads_cleanly(blob, scratch)
    if not reseal:  # without a matching checksum nothing is ever decoded
        with pytest.raises(CompressedFileError):
            read_compressed(scratch)


@FUZZ
@given(name=st.sampled_from(["small", "lenet5"]), data=st.data(), reseal=st.booleans())
def test_truncations_and_appended_bytes(scratch, name, data, reseal):
    blob = _file(name)
    cut = data.draw(st.integers(0, len(blob) - 1))
    extra = data.draw(st.binary(min_size=1, max_size=64))
    for bad in (blob[:cut], blob + extra):
        bad = _reseal(bad) if reseal else bad
        _reads_cleanly(bad, scratch)
        if not reseal:
            with pytest.raises(CompressedFileError):
                read_compressed(scratch)


VALUES = st.one_of(st.integers(-(1 << 40), 1 << 40), st.integers(-2, 70), st.none(), st.booleans(),
                   st.floats(allow_nan=True), st.text(max_size=5), st.lists(st.integers(-2, 1 << 33), max_size=4),
                   st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@FUZZ
@given(name=st.sampled_from(["small", "lenet5"]), data=st.data())
def test_header_edits_behind_a_valid_checksum(scratch, name, data):
    version, header, body = _split(_file(name))
    paths = sorted(_leaves(header), key=str)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        if path:
            try:
                _set(header, path, data.draw(VALUES))
            except (KeyError, IndexError, TypeError):
                pass  # the path went away with an earlier edit
    _reads_cleanly(_join(version, header, body), scratch)
