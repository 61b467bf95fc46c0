"""The captioning task (conf/task/captioning.yaml): a LightningModule around a captioner
(``experiments.models.neuraltalk.NeuralTalk``) that the pipeline's stages train and evaluate as they do a
classifier.

* Training: cross-entropy of the next word under teacher forcing, averaged over the tokens of every reference
  caption of the batch's images (``<eos>`` included, padding not); optionally L1 on the compressed tensors and distillation from the run's own dense
  model (per-token KL), as the classifier's. Gradients are clipped to norm ``clip`` (LSTM training).
* Test metrics (``test/*``, what ``Run.evaluate`` returns): ``bleu1`` .. ``bleu4``, corpus-level BLEU-n of the
  decoded captions against every reference caption of each test image (sacrebleu; ``bleu_score``), and
  ``perplexity``, exp of the mean per-token negative log-likelihood of the reference captions (teacher
  forcing, ``<eos>`` included). Captions are decoded greedily unless ``decode: beam`` (``beam_size``).
* Per test image it records whether the decoded caption equals one of its references word for word
  (``test_correct``): the per-example record the rows keep for paired statistics (exact match).
* ``headline = "bleu4"``: what each pruning round reports.

Hypotheses and references are compared as lower-case words joined by spaces (``tokenize="none"``: the
datasets' own tokens). ``last_captions`` holds the decoded captions of the last test epoch, as text.
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
from torch import nn

from experiments.classifier import with_schedule
from experiments.models.neuraltalk import PAD

DECODERS = ("greedy", "beam")


def _streams(references: list[list[str]]) -> list[list[str | None]]:
    """sacrebleu's reference streams: the j-th reference of every image (None where an image has fewer)."""
    r = max((len(x) for x in references), default=0)
    return [[refs[j] if j < len(refs) else None for refs in references] for j in range(r)]


def bleu(order: int = 4):
    """sacrebleu's BLEU with uniform weights over 1..order-grams, the brevity penalty against the closest
    reference length, our whitespace tokens as they are (``tokenize="none"``) and any number of references per
    image. Its default exponential smoothing only matters for an n-gram order with no match at all (tiny runs)."""
    from sacrebleu.metrics import BLEU

    return BLEU(tokenize="none", max_ngram_order=order)


def bleu_score(hypotheses: list[str], references: list[list[str]], order: int = 4) -> float:
    """Corpus BLEU-``order`` in points (0-100) of one caption per image against its references (``bleu``)."""
    return float(bleu(order).corpus_score(hypotheses, _streams(references)).score)


def bleu_signature(hypotheses: list[str], references: list[list[str]]) -> str:
    """sacrebleu's signature of the BLEU-4 computed on these captions (its settings and version)."""
    metric = bleu(4)
    metric.corpus_score(hypotheses, _streams(references))
    return str(metric.get_signature())


class LitCaptioner(pl.LightningModule):
    headline = "bleu4"  # the test metric a pruning round reports (experiments/pipeline/prune.py)

    def __init__(self, model: nn.Module, num_classes: int, lr: float = 0.001, momentum: float = 0.9,
                 weight_decay: float = 0.0, schedule: str = "cosine", step_size: int = 10, gamma: float = 0.1,
                 l1: float = 0.0, l1_tensors: list[tuple[nn.Module, str]] | None = None,
                 teacher: nn.Module | None = None, distill: float = 0.0, temperature: float = 4.0,
                 optimizer: str = "adam", clip: float = 5.0, decode: str = "greedy", beam_size: int = 3,
                 max_len: int = 20):
        super().__init__()
        if decode not in DECODERS:
            raise ValueError(f"task.decode={decode!r}: choose one of {DECODERS}")
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"task.optimizer={optimizer!r}: choose adam or sgd")
        self.model = model
        self.num_classes = num_classes
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.schedule, self.step_size, self.gamma = schedule, step_size, gamma
        self.l1, self._l1_tensors = l1, l1_tensors or []
        self._teacher = [teacher.eval().requires_grad_(False)] if teacher is not None and distill > 0 else []
        self.distill, self.temperature = distill, temperature
        self.optimizer_name, self.clip = optimizer, clip
        self.beam_size = int(beam_size) if decode == "beam" else 1
        self.max_len = int(max_len)
        self.log_every = 25
        self.test_correct: list[torch.Tensor] = []
        self.last_captions: list[str] = []
        self._eval: dict[str, dict] = {}

    def forward(self, images, captions):
        return self.model(images, captions)

    def on_fit_start(self):
        for t in self._teacher:
            t.to(self.device)

    def _token_nll(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Summed negative log-likelihood of the non-padding targets, and how many there are."""
        nll = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                          ignore_index=PAD, reduction="sum")
        return nll, int((targets != PAD).sum())

    def _all_captions(self, model: nn.Module, images: torch.Tensor, refs: torch.Tensor):
        """Teacher-forced logits of every reference caption [B, R, T] of every image (the image encoder runs once
        per image), and those captions, flattened to [N, T] (missing references dropped)."""
        b, r, t = refs.shape
        have = (refs[:, :, 0] != PAD).flatten()
        emb = model.image_embedding(images).repeat_interleave(r, 0)[have]
        captions = refs.reshape(b * r, t)[have]
        return model.caption_logits(emb, captions), captions

    def training_step(self, batch, batch_idx):
        images, refs = batch
        logits, captions = self._all_captions(self.model, images, refs)
        nll, n = self._token_nll(logits, captions)
        loss = nll / max(n, 1)
        if self._teacher:
            # (1 - a) CE + a T^2 KL(teacher_T || student_T) per token (Hinton et al. 2015), padding excluded
            with torch.no_grad():
                soft = torch.softmax(self._all_captions(self._teacher[0], images, refs)[0] / self.temperature, dim=-1)
            keep = captions != PAD
            kl = nn.functional.kl_div(torch.log_softmax(logits[keep] / self.temperature, dim=-1), soft[keep],
                                      reduction="batchmean")
            loss = (1 - self.distill) * loss + self.distill * self.temperature ** 2 * kl
        if self.l1 > 0:
            loss = loss + self.l1 * sum(getattr(m, p).abs().sum() for m, p in self._l1_tensors)
        if batch_idx % self.log_every == 0:
            self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=False)
        return loss

    def on_before_optimizer_step(self, optimizer):
        if self.clip and self.clip > 0:
            torch.nn.utils.clip_grad_norm_([p for p in self.parameters() if p.requires_grad], self.clip)

    # -- evaluation -------------------------------------------------------------------------------
    def _start(self, split: str) -> None:
        self._eval[split] = {"nll": 0.0, "tokens": 0, "hyps": []}

    def _eval_step(self, batch, split: str) -> list[list[int]]:
        images, refs = batch
        nll, n = self._token_nll(*self._all_captions(self.model, images, refs))
        st = self._eval[split]
        st["nll"] += float(nll)
        st["tokens"] += n
        ids = self.model.generate(images, max_len=self.max_len, beam_size=self.beam_size)
        st["hyps"] += ids
        return ids

    def _datamodule(self):
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "vocab"):
            raise RuntimeError("LitCaptioner evaluates with a captioning data module (experiments.captioning_data)")
        return dm

    def _end(self, split: str) -> None:
        dm = self._datamodule()
        st = self._eval.pop(split)
        texts = [" ".join(dm.vocab.decode(ids)) for ids in st["hyps"]]
        refs = getattr(dm, f"{split}_set").references
        if len(texts) != len(refs):  # a DDP shard or limit_*_batches: BLEU against the examples seen
            refs = refs[:len(texts)]
        for n in (1, 2, 3, 4):
            self.log(f"{split}/bleu{n}", bleu_score(texts, refs, n), prog_bar=n == 4)
        self.log(f"{split}/perplexity", math.exp(st["nll"] / max(st["tokens"], 1)))
        if split == "test":
            self.last_captions = texts
            self.test_correct = [torch.tensor([t in set(r) for t, r in zip(texts, refs)])]

    def on_validation_epoch_start(self):
        self._start("val")

    def validation_step(self, batch, _):
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self):
        self._end("val")

    def on_test_epoch_start(self):
        self._start("test")
        self.test_correct = []

    def test_step(self, batch, _):
        self._eval_step(batch, "test")

    def on_test_epoch_end(self):
        self._end("test")

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        if self.optimizer_name == "adam":
            opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        else:
            opt = torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        return with_schedule(opt, self.schedule, max(1, self.trainer.max_epochs or 1), self.step_size, self.gamma)
