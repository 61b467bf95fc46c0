"""One LightningModule for classification: SGD with momentum and L2 weight decay, an LR
schedule, top-1 (and top-5 when there are more than 5 classes) error via torchmetrics."""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy


class LitClassifier(pl.LightningModule):
    headline = "top1_err"  # the test metric a pruning round reports (experiments/pipeline/prune.py)

    def __init__(self, model: nn.Module, num_classes: int, lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 5e-4, schedule: str = "cosine", step_size: int = 10,
                 gamma: float = 0.1, l1: float = 0.0, l1_tensors: list[tuple[nn.Module, str]] | None = None,
                 teacher: nn.Module | None = None, distill: float = 0.0, temperature: float = 4.0):
        super().__init__()
        self.model = model
        self.num_classes = num_classes
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.schedule, self.step_size, self.gamma = schedule, step_size, gamma
        self.l1 = l1
        self.log_every = 25
        self._l1_tensors = l1_tensors or []  # (module, parameter name): the compressed tensors
        self.loss_fn = nn.CrossEntropyLoss()
        # a frozen teacher for distillation, kept out of the module tree: not trained, not saved
        self._teacher = [teacher.eval().requires_grad_(False)] if teacher is not None and distill > 0 else []
        self.distill, self.temperature = distill, temperature
        self.test_correct: list[torch.Tensor] = []
        self.top1 = nn.ModuleDict({s: MulticlassAccuracy(num_classes, top_k=1, average="micro") for s in ("val", "test")})
        self.top5 = nn.ModuleDict({s: MulticlassAccuracy(num_classes, top_k=5, average="micro") for s in ("val", "test")}) \
            if num_classes > 5 else None

    def forward(self, x):
        return self.model(x)

    def on_fit_start(self):
        for t in self._teacher:
            t.to(self.device)

    def distillation_loss(self, logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(1 - a) CE(y) + a T^2 KL(softmax(teacher / T) || softmax(student / T)) (Hinton et al. 2015)."""
        with torch.no_grad():
            soft = torch.softmax(self._teacher[0](x) / self.temperature, dim=1)
        kl = nn.functional.kl_div(torch.log_softmax(logits / self.temperature, dim=1), soft, reduction="batchmean")
        return (1 - self.distill) * self.loss_fn(logits, y) + self.distill * self.temperature ** 2 * kl

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.model(x)
        loss = self.distillation_loss(logits, x, y) if self._teacher else self.loss_fn(logits, y)
        if self.l1 > 0:
            # LWC section 3.1: L1 regularization option during retraining (on the weights' effective values).
            loss = loss + self.l1 * sum(getattr(m, p).abs().sum() for m, p in self._l1_tensors)
        if batch_idx % self.log_every == 0:  # self.log costs ~0.4 ms a call: LeNet steps take ~2 ms
            self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=False)
        return loss

    def _eval_step(self, batch, split):
        x, y = batch
        logits = self.model(x)
        self.top1[split].update(logits, y)
        if self.top5 is not None:
            self.top5[split].update(logits, y)

    def validation_step(self, batch, _):
        self._eval_step(batch, "val")

    def test_step(self, batch, _):
        x, y = batch
        logits = self.model(x)
        self.top1["test"].update(logits, y)
        if self.top5 is not None:
            self.top5["test"].update(logits, y)
        # which test examples are right, in the split's order: paired statistics between stages and runs
        self.test_correct.append((logits.argmax(1) == y).cpu())

    def on_test_epoch_start(self):
        self.test_correct = []

    def _eval_end(self, split):
        self.log(f"{split}/top1_err", 100.0 * (1.0 - self.top1[split].compute()), prog_bar=True, sync_dist=True)
        self.top1[split].reset()
        if self.top5 is not None:
            self.log(f"{split}/top5_err", 100.0 * (1.0 - self.top5[split].compute()), sync_dist=True)
            self.top5[split].reset()

    def on_validation_epoch_end(self):
        self._eval_end("val")

    def on_test_epoch_end(self):
        self._eval_end("test")

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        return with_schedule(opt, self.schedule, max(1, self.trainer.max_epochs or 1), self.step_size, self.gamma)


def with_schedule(opt, schedule: str, epochs: int, step_size: int, gamma: float):
    """What a LightningModule's configure_optimizers returns for a stage's ``schedule`` (per epoch):
    ``constant``, ``cosine`` over the stage's epochs, or ``step`` (``step_size``, ``gamma``)."""
    if schedule == "constant":
        return opt
    if schedule == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.5 * (1 + math.cos(math.pi * e / epochs)))
    elif schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=step_size, gamma=gamma)
    else:
        raise ValueError(f"unknown schedule {schedule!r}")
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
