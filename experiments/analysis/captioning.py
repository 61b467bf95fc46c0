"""Caption records: every test caption of a captioning run's dense model and of the model decoded from its
compressed file, checked against the metrics its row reports, and the paired statistics built on them.

    python -m experiments.analysis.captioning results/runs/neuraltalk/<run_id>.json ...

For each row it rebuilds the row's data module (its own config), loads the dense weights the run saved
(``artifacts.dense_checkpoint``: the run folder must still exist) and decodes the compressed file
(``artifacts.compressed_file``), decodes every test caption of both as the run did (``task.decode``,
``task.max_len``, the same test batches), recomputes BLEU-1..4 and checks them against the row's ``dense/`` and
``compressed/`` metrics: a file that does not reproduce its row's numbers stops the command. It then writes
``<run_id>.captions.jsonl`` beside the row: a header line (run, commit, sacrebleu signature, the recomputed
BLEU) and one line per test image with both captions. The tables' caption slide and the paired BLEU intervals
read these records; the references come from the data module (they are the dataset's).

``paired_bleu`` is the paired bootstrap over test images of a corpus-BLEU difference between two systems on
the same images (Koehn 2004; sacrebleu's own paired bootstrap resamples the same sentence statistics).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from compression.atomic import atomic_write_bytes

ROOT = Path(__file__).resolve().parents[2]
SUFFIX = ".captions.jsonl"


def _resolve(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else ROOT / p


def data_module(row: dict):
    """The row's data module (its config as run), set up; relative folders are read from the repository root."""
    from hydra.utils import instantiate

    data = dict(row["config"]["data"])
    if data.get("root") and not Path(data["root"]).is_absolute():
        data["root"] = str(ROOT / data["root"])
    dm = instantiate(data, seed=row["config"].get("seed", 0))
    dm.setup("test")
    return dm


def decoding(row: dict) -> tuple[int, int]:
    """(max_len, beam_size) of the row's task: how its captions were decoded."""
    import inspect

    from experiments.captioning import LitCaptioner

    defaults = {k: p.default for k, p in inspect.signature(LitCaptioner.__init__).parameters.items()}
    task = {**defaults, **(row["config"].get("task") or {})}
    return int(task["max_len"]), int(task["beam_size"]) if task["decode"] == "beam" else 1


@torch.no_grad()
def captions_of(model: torch.nn.Module, dm, max_len: int, beam: int) -> list[str]:
    """Every test caption, as text, in the test split's order and batches (as ``LitCaptioner`` decodes them)."""
    model.eval()
    out = []
    for images, _ in dm.test_dataloader():
        out += [" ".join(dm.vocab.decode(ids)) for ids in model.generate(images, max_len=max_len, beam_size=beam)]
    return out


def bleus(texts: list[str], references: list[list[str]]) -> dict[str, float]:
    from experiments.captioning import bleu_score

    return {f"bleu{n}": bleu_score(texts, references, n) for n in (1, 2, 3, 4)}


def dense_model(row: dict, shape: dict) -> torch.nn.Module:
    from experiments.models import build_model

    path = _resolve(row["artifacts"]["dense_checkpoint"])
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the run's dense weights are gone (its run folder was removed); rerun "
                                f"the row's command to record its captions")
    return build_model({**row["config"]["model"], "checkpoint": str(path), "pretrained": False}, shape)


def record(row: dict, tolerance: float = 5e-4) -> dict:
    """The caption record of one row (module docstring); ValueError if a model does not reproduce its row."""
    from compression.architecture import decode_model
    from experiments.captioning import bleu_signature

    dm = data_module(row)
    max_len, beam = decoding(row)
    shape = {"num_classes": dm.num_classes, "in_channels": dm.in_channels, "image_size": dm.image_size}
    refs = dm.test_set.references
    models = {"dense": dense_model(row, shape), "compressed": decode_model(_resolve(row["artifacts"]["compressed_file"]))}
    texts, scores = {}, {}
    for stage, model in models.items():
        texts[stage] = captions_of(model, dm, max_len, beam)
        scores[stage] = bleus(texts[stage], refs)
        for k, v in scores[stage].items():
            want = row["metrics"].get(f"{stage}/{k}")
            if want is None or abs(v - want) > tolerance:
                raise ValueError(f"run {row['run_id']}: the {stage} model gives {k} {v:.4f}, the row says {want}")
    header = {"run_id": row["run_id"], "git_commit": row.get("git_commit"), "experiment": row.get("experiment"),
              "seed": row.get("seed"), "dataset": row.get("dataset"), "decode": {"max_len": max_len, "beam": beam},
              "sacrebleu": bleu_signature(texts["dense"], refs), "bleu": scores, "n": len(refs)}
    return {"header": header, "captions": texts}


def write_record(row_path: str | Path) -> Path:
    row_path = Path(row_path)
    rec = record(json.loads(row_path.read_text()))
    lines = [json.dumps(rec["header"], sort_keys=True)]
    lines += [json.dumps({"i": i, **{s: rec["captions"][s][i] for s in rec["captions"]}})
              for i in range(rec["header"]["n"])]
    out = row_path.with_name(row_path.name.removesuffix(".json") + SUFFIX)
    atomic_write_bytes(out, ("\n".join(lines) + "\n").encode("utf-8"))
    return out


def read_record(path: str | Path) -> dict:
    lines = Path(path).read_text().splitlines()
    header = json.loads(lines[0])
    items = [json.loads(x) for x in lines[1:]]
    stages = [k for k in items[0] if k != "i"] if items else []
    return {"header": header, "captions": {s: [it[s] for it in items] for s in stages}}


def records_in(runs_dir: str | Path, experiment: str) -> dict[str, dict]:
    """Caption records of one experiment's rows, by run id."""
    folder = Path(runs_dir) / experiment
    out = {}
    for p in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
        rec = read_record(p)
        out[rec["header"]["run_id"]] = rec
    return out


@dataclass(frozen=True)
class PairedBleu:
    """BLEU(b) - BLEU(a) in points over the same images, with its paired bootstrap 95% interval."""

    delta: float
    ci_low: float
    ci_high: float
    n: int

    def text(self, digits: int = 2) -> str:
        return f"{self.delta:+.{digits}f} [{self.ci_low:+.{digits}f}, {self.ci_high:+.{digits}f}]"


def paired_bleu(a: list[str], b: list[str], references: list[list[str]], order: int = 4,
                n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> PairedBleu:
    """Paired bootstrap of corpus BLEU-``order`` over images: resample the images (the same draw for both
    systems), recompute both corpus scores from their sentence statistics, and take the percentile interval of
    the difference."""
    from experiments.captioning import _streams, bleu

    if not (len(a) == len(b) == len(references)) or not a:
        raise ValueError(f"paired BLEU needs the same images: {len(a)}, {len(b)}, {len(references)}")
    metric = bleu(order)
    streams = _streams(references)
    sa = np.asarray(metric._extract_corpus_statistics(a, streams), dtype=np.int64)
    sb = np.asarray(metric._extract_corpus_statistics(b, streams), dtype=np.int64)
    score = lambda s: metric._compute_score_from_stats(s).score  # noqa: E731
    delta = score(sb.sum(0)) - score(sa.sum(0))
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_resamples)
    for i in range(n_resamples):
        idx = rng.integers(0, len(a), len(a))
        diffs[i] = score(sb[idx].sum(0)) - score(sa[idx].sum(0))
    lo, hi = np.percentile(diffs, [100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2])
    return PairedBleu(float(delta), float(lo), float(hi), len(a))


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    for p in argv:
        try:
            print(write_record(p))
        except (OSError, ValueError, KeyError) as e:
            print(f"error: {p}: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
