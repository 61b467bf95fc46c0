"""One training epoch of LeNet-300-100 over 60,000 in-memory images: Lightning (our data module
and LitClassifier) vs a bare PyTorch loop over the same tensors. Prints medians and the ratio.

    .venv/bin/python benchmarks/bench_epoch.py [--repeats 5] [--batch-size 64]
"""
import argparse
import logging
import os
import statistics
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
warnings.filterwarnings("ignore")
logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)

import pytorch_lightning as pl  # noqa: E402

from experiments.classifier import LitClassifier  # noqa: E402
from experiments.data import InMemoryDataModule  # noqa: E402
from experiments.models import LeNet300  # noqa: E402


class Synthetic60k(InMemoryDataModule):
    name = "synthetic60k"

    def load(self):
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (70000, 28, 28), generator=g, dtype=torch.uint8).numpy()
        y = torch.randint(0, 10, (70000,), generator=g).numpy()
        return x[:60001], y[:60001], x[60001:], y[60001:]


def bare_epoch(x, y, bs):
    torch.manual_seed(0)
    model = LeNet300()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    t = time.perf_counter()
    perm = torch.randperm(len(y))
    for i in range(0, len(y), bs):
        idx = perm[i:i + bs]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def lightning_epoch(dm, bar):
    torch.manual_seed(0)
    lit = LitClassifier(LeNet300(), 10, lr=0.01, schedule="constant")
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_model_summary=False, limit_val_batches=0, enable_progress_bar=bar,
                         num_sanity_val_steps=0)
    t = time.perf_counter()
    trainer.fit(lit, train_dataloaders=dm.train_dataloader())
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=64)
    a = ap.parse_args()
    dm = Synthetic60k(batch_size=a.batch_size, val_size=1)
    dm.setup()
    x, y = dm.train_set.x, dm.train_set.y
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {len(y)} images, batch {a.batch_size}, "
          f"load avg {os.getloadavg()[0]:.2f}")
    times = {"bare": [], "lightning": [], "lightning+bar": []}
    for _ in range(a.repeats):  # interleaved, so drifting load hits all three alike
        times["bare"].append(bare_epoch(x, y, a.batch_size))
        times["lightning"].append(lightning_epoch(dm, False))
        times["lightning+bar"].append(lightning_epoch(dm, True))
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k:14s} median {med[k]:.3f} s  (min {min(v):.3f}, max {max(v):.3f}, n={len(v)})")
    print(f"ratio lightning / bare:     {med['lightning'] / med['bare']:.3f}")
    print(f"ratio lightning+bar / bare: {med['lightning+bar'] / med['bare']:.3f}")
    print(f"load avg at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
