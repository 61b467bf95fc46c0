"""The papers' published numbers, as plain Python data (no imports beyond the standard library).

Sources:
- DC  = Han, Mao, Dally, *Deep Compression*, ICLR 2016 (arXiv 1510.00149v5), v5 numbering.
- LWC = Han, Pool, Tran, Dally, *Learning both Weights and Connections*, NIPS 2015.

Errors are in percent, sizes in bytes with decimal units (1 KB = 1000 B, 1 MB = 10**6 B: the
paper's sizes imply them, e.g. LeNet-300-100 has 266,610 fp32 parameters = 1,066,440 B, printed
"1070 KB"). The per-layer tables keep the paper's printed cells verbatim as strings (the paper
rounds inconsistently: "4" next to "4.4", "8%" next to "7.5%"); `layer_numbers()` parses them.

Imported by experiments/tables.py and by the figure scripts and notebooks.
"""

from __future__ import annotations

# The networks in paper order (keys = our model names): display name, our default experiment
# (conf/experiment/<name>.yaml), the paper's dataset, and the size unit DC Table 1 prints.
NETWORKS = {
    "lenet300": {"name": "LeNet-300-100", "experiment": "lenet300", "dataset": "MNIST", "size_unit": "KB"},
    "lenet5": {"name": "LeNet-5", "experiment": "lenet5", "dataset": "MNIST", "size_unit": "KB"},
    "alexnet": {"name": "AlexNet", "experiment": "alexnet", "dataset": "ImageNet", "size_unit": "MB"},
    "vgg16": {"name": "VGG-16", "experiment": "vgg16", "dataset": "ImageNet", "size_unit": "MB"},
}

KB = 1000
MB = 1000 * 1000

# ---------------------------------------------------------------------------------------------
# DC Table 1: headline results (pruning + trained quantization + Huffman coding).
# top-5 is None where the paper prints "–" (the LeNets). size_*_bytes = printed size in decimal units.
# ---------------------------------------------------------------------------------------------
DC_TABLE1 = {
    "lenet300": {"top1_ref": 1.64, "top1_compressed": 1.58, "top5_ref": None, "top5_compressed": None,
                 "size_ref_bytes": 1070 * KB, "size_compressed_bytes": 27 * KB, "rate": 40.0,
                 "size_text": ("1070 KB", "27 KB"), "rate_text": "40×"},
    "lenet5": {"top1_ref": 0.80, "top1_compressed": 0.74, "top5_ref": None, "top5_compressed": None,
               "size_ref_bytes": 1720 * KB, "size_compressed_bytes": 44 * KB, "rate": 39.0,
               "size_text": ("1720 KB", "44 KB"), "rate_text": "39×"},
    "alexnet": {"top1_ref": 42.78, "top1_compressed": 42.78, "top5_ref": 19.73, "top5_compressed": 19.70,
                "size_ref_bytes": 240 * MB, "size_compressed_bytes": 6.9 * MB, "rate": 35.0,
                "size_text": ("240 MB", "6.9 MB"), "rate_text": "35×"},
    "vgg16": {"top1_ref": 31.50, "top1_compressed": 31.17, "top5_ref": 11.32, "top5_compressed": 10.91,
              "size_ref_bytes": 552 * MB, "size_compressed_bytes": 11.3 * MB, "rate": 49.0,
              "size_text": ("552 MB", "11.3 MB"), "rate_text": "49×"},
}

# ---------------------------------------------------------------------------------------------
# LWC Table 1: pruning alone (no quantization, no Huffman). rate = weights before / after.
# top5 for AlexNet is from DC Table 7 ("Pruning (LWC)" line); LWC prints no weight counts for LeNets here.
# ---------------------------------------------------------------------------------------------
LWC_PRUNING = {
    "lenet300": {"top1_ref": 1.64, "top1_pruned": 1.59, "rate": 12.0, "weights_ref": None, "weights_pruned": None},
    "lenet5": {"top1_ref": 0.80, "top1_pruned": 0.77, "rate": 12.0, "weights_ref": None, "weights_pruned": None},
    "alexnet": {"top1_ref": 42.78, "top1_pruned": 42.77, "top5_pruned": 19.67, "rate": 9.0,
                "weights_ref": 61e6, "weights_pruned": 6.7e6},
    "vgg16": {"top1_ref": 31.50, "top1_pruned": 31.34, "rate": 13.0, "weights_ref": 138e6, "weights_pruned": 10.3e6},
}

# ---------------------------------------------------------------------------------------------
# DC Tables 2-5: per-layer compression statistics, cells verbatim.
# Columns: layer, #W, density after pruning (P), weight bits P+Q, weight bits P+Q+H,
#          index bits P+Q, index bits P+Q+H, size % of dense fp32 P+Q, same P+Q+H.
# Known oddities (keep, do not "fix"): DC's text says 8-bit conv / 5-bit fc index gaps, but
# Table 4 (AlexNet) uses 4-bit gaps everywhere; LeNet-300-100's total P+Q+H weight bits (5.1)
# exceed every per-layer value.
# ---------------------------------------------------------------------------------------------
LAYER_COLUMNS = ("layer", "weights", "density", "weight_bits_pq", "weight_bits_pqh",
                 "index_bits_pq", "index_bits_pqh", "pct_pq", "pct_pqh")

DC_TABLE_NUMBER = {"lenet300": 2, "lenet5": 3, "alexnet": 4, "vgg16": 5}

DC_LAYERS = {
    # DC Table 2: LeNet-300-100
    "lenet300": [
        ("ip1", "235K", "8%", "6", "4.4", "5", "3.7", "3.1%", "2.32%"),
        ("ip2", "30K", "9%", "6", "4.4", "5", "4.3", "3.8%", "3.04%"),
        ("ip3", "1K", "26%", "6", "4.3", "5", "3.2", "15.7%", "12.70%"),
        ("total", "266K", "8% (12×)", "6", "5.1", "5", "3.7", "3.1% (32×)", "2.49% (40×)"),
    ],
    # DC Table 3: LeNet-5
    "lenet5": [
        ("conv1", "0.5K", "66%", "8", "7.2", "5", "1.5", "78.5%", "67.45%"),
        ("conv2", "25K", "12%", "8", "7.2", "5", "3.9", "6.0%", "5.28%"),
        ("ip1", "400K", "8%", "5", "4.5", "5", "4.5", "2.7%", "2.45%"),
        ("ip2", "5K", "19%", "5", "5.2", "5", "3.7", "6.9%", "6.13%"),
        ("total", "431K", "8% (12×)", "5.3", "4.1", "5", "4.4", "3.05% (33×)", "2.55% (39×)"),
    ],
    # DC Table 4: AlexNet (Caffe model; 4-bit index gaps in every layer)
    "alexnet": [
        ("conv1", "35K", "84%", "8", "6.3", "4", "1.2", "32.6%", "20.53%"),
        ("conv2", "307K", "38%", "8", "5.5", "4", "2.3", "14.5%", "9.43%"),
        ("conv3", "885K", "35%", "8", "5.1", "4", "2.6", "13.1%", "8.44%"),
        ("conv4", "663K", "37%", "8", "5.2", "4", "2.5", "14.1%", "9.11%"),
        ("conv5", "442K", "37%", "8", "5.6", "4", "2.5", "14.0%", "9.43%"),
        ("fc6", "38M", "9%", "5", "3.9", "4", "3.2", "3.0%", "2.39%"),
        ("fc7", "17M", "9%", "5", "3.6", "4", "3.7", "3.0%", "2.46%"),
        ("fc8", "4M", "25%", "5", "4", "4", "3.2", "7.3%", "5.85%"),
        ("total", "61M", "11% (9×)", "5.4", "4", "4", "3.2", "3.7% (27×)", "2.88% (35×)"),
    ],
    # DC Table 5: VGG-16
    "vgg16": [
        ("conv1_1", "2K", "58%", "8", "6.8", "5", "1.7", "40.0%", "29.97%"),
        ("conv1_2", "37K", "22%", "8", "6.5", "5", "2.6", "9.8%", "6.99%"),
        ("conv2_1", "74K", "34%", "8", "5.6", "5", "2.4", "14.3%", "8.91%"),
        ("conv2_2", "148K", "36%", "8", "5.9", "5", "2.3", "14.7%", "9.31%"),
        ("conv3_1", "295K", "53%", "8", "4.8", "5", "1.8", "21.7%", "11.15%"),
        ("conv3_2", "590K", "24%", "8", "4.6", "5", "2.9", "9.7%", "5.67%"),
        ("conv3_3", "590K", "42%", "8", "4.6", "5", "2.2", "17.0%", "8.96%"),
        ("conv4_1", "1M", "32%", "8", "4.6", "5", "2.6", "13.1%", "7.29%"),
        ("conv4_2", "2M", "27%", "8", "4.2", "5", "2.9", "10.9%", "5.93%"),
        ("conv4_3", "2M", "34%", "8", "4.4", "5", "2.5", "14.0%", "7.47%"),
        ("conv5_1", "2M", "35%", "8", "4.7", "5", "2.5", "14.3%", "8.00%"),
        ("conv5_2", "2M", "29%", "8", "4.6", "5", "2.7", "11.7%", "6.52%"),
        ("conv5_3", "2M", "36%", "8", "4.6", "5", "2.3", "14.8%", "7.79%"),
        ("fc6", "103M", "4%", "5", "3.6", "5", "3.5", "1.6%", "1.10%"),
        ("fc7", "17M", "4%", "5", "4", "5", "4.3", "1.5%", "1.25%"),
        ("fc8", "4M", "23%", "5", "4", "5", "3.4", "7.1%", "5.24%"),
        ("total", "138M", "7.5% (13×)", "6.4", "4.1", "5", "3.1", "3.2% (31×)", "2.05% (49×)"),
    ],
}

# ---------------------------------------------------------------------------------------------
# DC Table 7: AlexNet compared with other compression methods.
# (method, top-1 err %, top-5 err % or None for "–", size bytes, rate)
# ---------------------------------------------------------------------------------------------
DC_TABLE7 = [
    ("Baseline (BVLC)", 42.78, 19.73, 240 * MB, 1.0),
    ("Fastfood-32-AD", 41.93, None, 131 * MB, 2.0),
    ("Fastfood-16-AD", 42.90, None, 64 * MB, 3.7),
    ("Collins & Kohli", 44.40, None, 61 * MB, 4.0),
    ("SVD (Denton et al.)", 44.02, 20.56, 47.6 * MB, 5.0),
    ("Pruning (LWC)", 42.77, 19.67, 27 * MB, 9.0),
    ("Pruning + Quantization", 42.78, 19.70, 8.9 * MB, 27.0),
    ("Pruning + Quantization + Huffman", 42.78, 19.70, 6.9 * MB, 35.0),
]


def _cell_number(text: str, percent_as_fraction: bool = True) -> tuple[float, float | None]:
    """'235K' -> (235000, None); '8% (12×)' -> (0.08, 12.0); '4.4' -> (4.4, None)."""
    rate = None
    if "(" in text:
        text, r = text.split("(", 1)
        rate = float(r.strip().rstrip(")").rstrip("×"))
    text = text.strip()
    scale = 1.0
    if text.endswith("%"):
        text, scale = text[:-1], (0.01 if percent_as_fraction else 1.0)
    elif text.endswith("K"):
        text, scale = text[:-1], 1e3
    elif text.endswith("M"):
        text, scale = text[:-1], 1e6
    return float(text) * scale, rate


def layer_numbers(network: str) -> list[dict]:
    """DC Tables 2-5 for one network as numbers: density and pct as fractions of 1 / percent.

    Each dict has the LAYER_COLUMNS keys (density a fraction, pct_* in percent, weights a count
    as printed, i.e. rounded to the paper's K/M) and, on the total line, `ratio_p`, `ratio_pq`,
    `ratio_pqh` from the parenthesised rates.
    """
    out = []
    for cells in DC_LAYERS[network]:
        d: dict = {"layer": cells[0]}
        for key, text in zip(LAYER_COLUMNS[1:], cells[1:]):
            value, rate = _cell_number(text, percent_as_fraction=not key.startswith("pct"))
            d[key] = value
            if rate is not None:
                d[{"density": "ratio_p", "pct_pq": "ratio_pq", "pct_pqh": "ratio_pqh"}[key]] = rate
        out.append(d)
    return out


# ---------------------------------------------------------------------------------------------
# Later work on the same networks: published compression ratios on MNIST, from the papers cited below.
# Each paper counts bytes its own way (some leave out indices or codebooks; ours counts
# the whole file), and all are on MNIST, not our Fashion-MNIST: reference marks at x = our dense fp32 bytes /
# ratio, never points with an error delta. `methods`: our quantizer labels (experiments.analysis.frontier.
# method_of) that reproduce the method, for the frontier table's "published" column.
# ---------------------------------------------------------------------------------------------
SUCCESSORS = {
    "lenet300": [
        # DC Table 1 (Han, Mao, Dally, ICLR 2016): 1070 KB -> 27 KB, 1.64% -> 1.58% error
        {"label": "Deep Compression", "ratio": 40.0, "methods": ("k-means (DC)",),
         "source": "Han, Mao, Dally, ICLR 2016, Table 1"},
        # Ullrich, Meeds, Welling, "Soft weight-sharing for neural network compression", ICLR 2017, Table 1:
        # 4.3% of the weights non-zero, 1.89% -> 1.94% error
        {"label": "soft weight-sharing", "ratio": 64.0, "methods": ("soft weight-sharing",),
         "source": "Ullrich, Meeds, Welling, ICLR 2017, Table 1"},
    ],
    "lenet5": [
        # DC Table 1: 1720 KB -> 44 KB, 0.80% -> 0.74% error
        {"label": "Deep Compression", "ratio": 39.0, "methods": ("k-means (DC)",),
         "source": "Han, Mao, Dally, ICLR 2016, Table 1"},
        # Choi, El-Khamy, Lee, "Towards the limit of network quantization", ICLR 2017: Hessian-weighted /
        # entropy-constrained quantization of DC's pruned LeNet-5 (about lossless)
        {"label": "Choi et al.", "ratio": 51.25, "methods": ("Hessian k-means", "ECSQ"),
         "source": "Choi, El-Khamy, Lee, ICLR 2017"},
        # Wiedemann et al., "DeepCABAC: a universal compression algorithm for deep neural networks",
        # IEEE JSTSP 2020 (reported)
        {"label": "DeepCABAC", "ratio": 115.0, "methods": (),
         "source": "Wiedemann et al., IEEE JSTSP 2020"},
        # Ullrich, Meeds, Welling, ICLR 2017, Table 1 (LeNet-5-Caffe): 0.5% non-zero, 0.88% -> 0.97% error
        {"label": "soft weight-sharing", "ratio": 162.0, "methods": ("soft weight-sharing",),
         "source": "Ullrich, Meeds, Welling, ICLR 2017, Table 1"},
    ],
}
