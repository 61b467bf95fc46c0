import math
import os

import numpy as np
import pytest

from compression.accounting import layer_accounting, totals
from compression.container import LayerInput, inspect, write_compressed

# Tiny hand-counted layer: shape (2, 8) = 16 weights, 2-bit weights (K = 4), 2-bit gaps (span 4).
# Non-zeros (flat row-major) at 0 (label 1), 5 (label 2), 6 (label 3), 15 (label 1).
# Distances from the previous entry: 1, 5, 1, 9 -> fillers (d-1)//4 = 0, 1, 0, 2 = 3 fillers
#   entries: pos 0 (sym 1, gap 0), filler pos 4 (sym 0, gap 3), pos 5 (2, 0), pos 6 (3, 0),
#            fillers pos 10, 14 (0, 3), (0, 3), pos 15 (1, 0)          -> 7 entries
# weight symbols [1,0,2,3,0,0,1]: counts 0:3, 1:2, 2:1, 3:1 -> Huffman lengths 1,2,3,3
#   weight stream bits = 3*1 + 2*2 + 1*3 + 1*3 = 13
# gap symbols [0,3,0,0,3,3,0]: two symbols -> 1 bit each -> 7 bits
# code tables (1 width byte + packed lengths): weights: lengths <= 3 -> 2 bits x 4 = 1 byte -> 2 bytes;
#   gaps: lengths <= 1 -> 1 bit x 4 -> 1 byte -> 2 bytes; together 32 bits. One chunk: no offsets.
# codebook: the paper's formula counts 4 x 32 = 128 bits; file format 2 stores only the centroids
#   of the symbols present, without the sparse layer's implied 0: symbols 1, 2, 3 -> 96 bits
#   (format 1 and layer_accounting without codebook_bits: 128)
# pq_bits  = 7 * (2 + 2) + 128 = 156        pct_pq  = 100 * 156 / (32 * 16) = 30.46875
# pqh_bits = 13 + 7 + 32 + 0 + 128 = 180    pct_pqh = 100 * 180 / 512       = 35.15625  (all 4 centroids)
# pqh_bits = 13 + 7 + 32 + 0 + 96 = 148     pct_pqh = 100 * 148 / 512       = 28.90625  (format 2 file)
LABELS = np.zeros(16, np.int64)
LABELS[[0, 5, 6, 15]] = [1, 2, 3, 1]
CODEBOOK = np.array([0.0, -1.0, 0.5, 2.0], np.float32)


def _check_row(r, pqh_bits=180, pct_pqh=35.15625):
    assert r["weights"] == 16 and r["nonzeros"] == 4 and r["density"] == 0.25
    assert r["entries"] == 7 and r["fillers"] == 3
    assert r["weight_bits_pq"] == 2 and r["index_bits_pq"] == 2
    assert r["weight_bits_pqh"] == pytest.approx(13 / 7) and r["index_bits_pqh"] == 1.0
    assert r["pq_bits"] == 156 and r["pqh_bits"] == pqh_bits
    assert r["pct_pq"] == pytest.approx(30.46875) and r["pct_pqh"] == pytest.approx(pct_pqh)


def test_layer_accounting_direct():
    r = layer_accounting(name="fc1", kind="fc", weights=16, nonzeros=4, entries=7, weight_bits=2, index_bits=2,
                         sparse=True, weight_stream_bits=13, index_stream_bits=7, table_bits=32, offset_bits=0)
    _check_row(r)


def test_hand_count_through_file(tmp_path):
    p = tmp_path / "tiny.dcz"
    bias = np.array([0.25, -0.5], np.float32)
    rep = write_compressed(p, [LayerInput("fc1.weight", "fc1", "fc", (2, 8), CODEBOOK, LABELS.reshape(2, 8), 2, 2)],
                           {"fc1.bias": bias}, {"model": "tiny"})
    _check_row(rep["layers"][0], pqh_bits=148, pct_pqh=28.90625)
    s = rep["size"]
    # dense: 4 * (16 weights + 2 biases) = 72 bytes; P+Q: ceil(156 / 8) = 20 + 8 raw bytes = 28
    assert s["dense_bytes"] == 72 and s["pq_bytes"] == 28
    # payload sections: weight table 2 + codebook 12 + weight stream ceil(13/8) = 2 + gap table 2
    #   + gap stream ceil(7/8) = 1 + offsets 0 + bias 8 = 27 bytes
    assert s["pqh_bytes"] == 27
    assert s["file_bytes"] == os.path.getsize(p) == rep["file_bytes"]
    assert rep["ratio"] == pytest.approx({"p": 4.0, "pq": 72 / 28, "pqh": 72 / 27})
    assert inspect(p)["layers"][0]["pqh_bits"] == 148
    # float16 codebook and bias: 3 x 16 = 48 codebook bits, 4 bias bytes -> 27 - 6 - 4 = 17 bytes
    rep16 = write_compressed(tmp_path / "tiny16.dcz",
                             [LayerInput("fc1.weight", "fc1", "fc", (2, 8), CODEBOOK, LABELS.reshape(2, 8), 2, 2)],
                             {"fc1.bias": bias}, {"model": "tiny"}, float_dtype="float16")
    assert rep16["layers"][0]["pqh_bits"] == 148 - 48 and rep16["size"]["pqh_bytes"] == 17


def test_dense_quantized_layer_counts(tmp_path):
    # 2 x 3 weights, 1-bit dense codebook: pq = 6 * 1 + 2 * 32 = 70 bits, no index bits, no fillers
    rep = write_compressed(tmp_path / "d.dcz",
                           [LayerInput("w", "fc1", "fc", (2, 3), np.array([-1.0, 1.0], np.float32),
                                       np.array([[0, 1, 1], [0, 0, 1]]), 1, 4, sparse=False)], {}, {})
    r = rep["layers"][0]
    assert r["density"] == 1.0 and r["fillers"] == 0 and r["index_bits_pq"] == 0 and r["index_bits_pqh"] == 0
    assert r["pq_bits"] == 70 and r["weight_bits_pqh"] == 1.0  # two symbols: 1 bit each
    assert rep["ratio"]["p"] == 1.0


def test_totals_weighted():
    a = layer_accounting(name="a", kind="conv", weights=100, nonzeros=50, entries=60, weight_bits=8, index_bits=4,
                         sparse=True, weight_stream_bits=300, index_stream_bits=120, table_bits=0, offset_bits=0)
    b = layer_accounting(name="b", kind="fc", weights=1000, nonzeros=100, entries=140, weight_bits=5, index_bits=4,
                         sparse=True, weight_stream_bits=560, index_stream_bits=420, table_bits=0, offset_bits=0)
    t = totals([a, b], raw_elements=10, raw_bytes=40, pqh_bytes=1000, file_bytes=1100)
    # weight bits P+Q averaged over entries: (60*8 + 140*5) / 200 = 5.9; P+Q+H: (300+560)/200 = 4.3
    assert t["total"]["weight_bits_pq"] == pytest.approx(5.9)
    assert t["total"]["weight_bits_pqh"] == pytest.approx(4.3)
    assert t["total"]["index_bits_pqh"] == pytest.approx(2.7)  # (120 + 420) / 200
    assert t["ratio"]["p"] == pytest.approx(1100 / 150)
    # pq_bits: a = 60*12 + 256*32 = 8912, b = 140*9 + 32*32 = 2284 -> ceil(11196/8) = 1400 (+40 raw)
    assert t["size"]["pq_bytes"] == math.ceil((8912 + 2284) / 8) + 40
    assert t["size"]["dense_bytes"] == 4 * 1110
