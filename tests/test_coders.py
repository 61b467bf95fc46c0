"""Entropy coders: round trips on random and adversarial streams, sizes against the empirical entropy, and
files that name a coder the reader lacks."""

import numpy as np
import pytest

from compression.coders import coder_named
from compression.coders.huffman import Huffman
from compression.coders.rans import HUFFMAN_MODE, RANS

CODERS = [Huffman(), RANS()]


def _entropy_bits(s: np.ndarray, alphabet: int) -> float:
    p = np.bincount(s, minlength=alphabet) / s.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum() * s.size)


@pytest.mark.parametrize("coder", CODERS, ids=lambda c: c.name)
@pytest.mark.parametrize("case", ["random", "one symbol", "all equal", "huge alphabet", "empty", "two symbols"])
def test_round_trip(coder, case):
    rng = np.random.default_rng(len(case))
    alphabet = 32
    if case == "random":
        s = rng.choice(alphabet, 5000, p=rng.dirichlet(np.ones(alphabet) * 0.3))
    elif case == "one symbol":
        s = np.array([7])
    elif case == "all equal":
        s = np.full(3000, 5)
    elif case == "huge alphabet":
        alphabet = 1 << 16
        s = rng.integers(0, alphabet, 4000)
    elif case == "empty":
        s = np.zeros(0, np.int64)
    else:
        s = rng.integers(0, 2, 1000) * 31
    enc = coder.encode(s, alphabet, 4096)
    assert np.array_equal(coder.decode(enc, s.size, alphabet, 4096), s)
    present = coder.present(enc.table, alphabet)
    assert set(np.flatnonzero(present)) >= set(np.unique(s).tolist())


def test_rans_stays_within_one_percent_of_the_entropy_plus_its_table_on_long_streams():
    rng = np.random.default_rng(0)
    for alphabet, n in ((32, 200_000), (256, 200_000), (4096, 300_000)):
        p = rng.dirichlet(np.ones(alphabet) * 0.5)
        s = rng.choice(alphabet, n, p=p)
        enc = RANS().encode(s, alphabet, 4096)
        h = _entropy_bits(s, alphabet)
        assert enc.n_bits <= 1.01 * h + 64  # the coder's last state word
        assert enc.n_bits + 8 * len(enc.table) < Huffman().cost_bits(s, alphabet)


def test_rans_keeps_a_stream_as_huffman_where_that_is_smaller_and_never_codes_larger():
    """ANS pays its final state; on a short dyadic stream Huffman is exact, and the coder keeps it."""
    rng = np.random.default_rng(2)
    dyadic = rng.choice(4, 300, p=[0.5, 0.25, 0.125, 0.125])
    skewed = rng.choice(8, 50_000, p=[0.6, 0.2, 0.1, 0.04, 0.03, 0.02, 0.007, 0.003])
    for s, alphabet, mode_huffman in ((dyadic, 4, True), (skewed, 8, False)):
        enc = RANS().encode(s, alphabet, 4096)
        assert (enc.table[0] == 0) == mode_huffman
        total = enc.n_bits + 8 * (len(enc.table) + len(enc.offsets))
        h = Huffman().encode(s, alphabet, 4096)
        assert total <= h.n_bits + 8 * (len(h.table) + len(h.offsets)) + 8  # + the mode byte at most
        assert np.array_equal(RANS().decode(enc, s.size, alphabet, 4096), s)
        assert set(np.flatnonzero(RANS().present(enc.table, alphabet))) >= set(np.unique(s).tolist())


def test_a_damaged_rans_stream_is_refused():
    rng = np.random.default_rng(1)
    s = rng.integers(0, 8, 500)
    enc = RANS().encode(s, 8, 4096)
    from compression.coders import CodedStream

    # (the container's SHA-256 catches altered bytes before any stream is decoded; a coder checks its own framing)
    with pytest.raises(ValueError):
        RANS().decode(CodedStream(enc.table, enc.payload[:-4], b"", enc.n_bits), s.size, 8, 4096)
    with pytest.raises(ValueError):
        RANS().decode(CodedStream(b"\x09" + enc.table[1:], enc.payload, b"", enc.n_bits), s.size, 8, 4096)


def test_coders_are_found_by_name_and_unknown_ones_refused():
    assert isinstance(coder_named("huffman"), Huffman) and isinstance(coder_named("rans"), RANS)
    for bad in ("cabac", "../x", "Huffman", ""):
        with pytest.raises(ValueError):
            coder_named(bad)


def test_a_file_written_by_a_coder_the_reader_lacks_is_refused(tmp_path, monkeypatch):
    import json
    import struct
    import zlib

    from compression import container

    layer = container.LayerInput("w", "fc", "fc", (4, 4), np.array([0, 1, 2, 3], np.float32),
                                 np.array([[0, 1, 2, 3]] * 4), 2, 2)
    path = tmp_path / "m.dcz"
    container.write_compressed(path, [layer], {}, {}, coder=RANS())
    assert container.inspect(path)["coder"] == "rans"
    data = path.read_bytes()
    _, version, hlen, _ = struct.unpack_from("<8sHIQ", data)
    header = json.loads(zlib.decompress(data[22:22 + hlen]))
    header["coder"] = "cabac"
    hb = zlib.compress(json.dumps(header, separators=(",", ":")).encode(), 9)
    body = data[22 + hlen:-32]
    import hashlib

    blob = struct.pack("<8sHIQ", container.MAGIC, version, len(hb), 22 + len(hb) + len(body) + 32) + hb + body
    path.write_bytes(blob + hashlib.sha256(blob).digest())
    with pytest.raises(container.CompressedFileError, match="cabac"):
        container.read_compressed(path)


def test_rans_cost_is_what_it_codes_and_a_huffman_stream_needs_no_chunk():
    # the encode stage's index-width search asks the cost of short gap streams, where Huffman is kept
    rng = np.random.default_rng(3)
    huffman_kept = np.tile([0, 1], 50)  # one bit per symbol is the entropy: rANS's final state cannot win
    for s, alphabet in [(huffman_kept, 4), (rng.integers(0, 32, 40), 32), (rng.integers(0, 4, 5000), 4),
                        (np.zeros(7, np.int64), 8)]:
        enc = RANS().encode(s, alphabet, 4096)
        assert RANS().cost_bits(s, alphabet) == enc.n_bits + 8 * len(enc.table)
    assert RANS().encode(huffman_kept, 4, 4096).table[:1] == bytes([HUFFMAN_MODE])


def test_a_rans_run_end_to_end_into_a_file_that_decodes_to_the_evaluated_model(tmp_path):
    # with the experiment's index-width search (encode.optimize_index_bits), which asks the coder's cost
    from compression import container
    from compression.architecture import decode_model
    from conftest import compose_cfg
    from experiments.data import MNISTSampleDataModule
    from experiments.evaluate import test_errors as decoded_test_errors
    from experiments.pipeline import run

    row = run(compose_cfg(["+experiment=lenet300", "data=mnist_sample", "encode/coder=rans", "dense.epochs=1",
                           "prune.rounds=1", "prune.epochs_per_round=1", "quantize.epochs=1",
                           "trainer.limit_train_batches=8", "logger=none", "trainer.enable_progress_bar=false"],
                          tmp_path))
    path = row["artifacts"]["compressed_file"]
    assert row["config"]["encode"]["optimize_index_bits"] and container.inspect(path)["coder"] == "rans"
    dm = MNISTSampleDataModule()
    dm.setup()
    err = decoded_test_errors(decode_model(path), dm.test_dataloader(), 10)["top1_err"]
    assert err == pytest.approx(row["metrics"]["compressed/top1_err"], abs=1e-6)


def test_rans_caps_the_tail_of_short_wide_streams_where_that_beats_every_full_table():
    """Gap-like streams (a few thousand symbols over 256 gap values, geometric with a thin tail): the
    coder also tries tables whose rare symbols share one level. It never codes larger than the full
    tables or Huffman, decodes exactly, and on some of these streams only a capped table beats Huffman."""
    from compression.coders import rans

    only_capped_wins = 0
    for seed in range(12):
        s = np.minimum(np.random.default_rng(seed).geometric(0.09, 2710) - 1, 255)
        enc = RANS().encode(s, 256, 4096)
        total = enc.n_bits + 8 * len(enc.table)
        full = min(e.n_bits + 8 * len(e.table) for e in (RANS()._encode_with(s, 256, r) for r in rans.RESOLUTIONS))
        h = Huffman().encode(s, 256, 4096)
        huffman = 8 + h.n_bits + 8 * len(h.table)
        assert total <= min(full, huffman) and RANS().cost_bits(s, 256) == total
        assert np.array_equal(RANS().decode(enc, s.size, 256, 4096), s)
        only_capped_wins += total < huffman - 8 <= full
    assert only_capped_wins >= 3
