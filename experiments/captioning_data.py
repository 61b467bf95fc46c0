"""Captioning data: a vocabulary, the caption data module every captioning dataset shares, and Flickr8k /
Flickr30k / COCO in Karpathy's split format.

A captioning data module serves

* batches ``(images, captions)``: one line per image, each of its reference captions as token ids capped at
  ``max_caption_len`` words, then ``<eos>``, then ``<pad>`` ([B, R, T]; a missing reference is all ``<pad>``).
  Training shuffles the images (an epoch sees each image once, with all its captions: the image encoder runs
  once per image); validation and test keep the split's order, and ``<split>_set.references`` holds the same
  captions as text, uncapped, for BLEU.

The vocabulary is built from the training split only: every word seen at least ``min_word_count`` times
(others read as ``<unk>``). ``num_classes`` is its size (the captioner's softmax), ``in_channels`` and
``image_size`` the images' shape (``image_size == 1``: cached feature vectors of length ``in_channels``).
The test split is only ever evaluated; validation is a split of its own (Karpathy's ``val``).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Iterable

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from compression.atomic import atomic_write_bytes
from experiments.data import EpochSampler, _batch_collate
from experiments.errors import UserError
from experiments.models.neuraltalk import BOS, EOS, PAD, SPECIAL, UNK

Captions = list[list[list[str]]]  # per image, its reference captions, each a list of words


class Vocabulary:
    """Words by id: ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``, then the training words, most frequent first."""

    def __init__(self, words: Iterable[str]):
        self.words = list(SPECIAL) + [w for w in words if w not in SPECIAL]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, captions: Captions, min_count: int) -> "Vocabulary":
        counts = Counter(w for refs in captions for cap in refs for w in cap)
        return cls(w for w, n in sorted(counts.items(), key=lambda t: (-t[1], t[0])) if n >= min_count)

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, words: list[str], max_len: int) -> list[int]:
        return [self.index.get(w, UNK) for w in words[:max_len]] + [EOS]

    def decode(self, ids: Iterable[int]) -> list[str]:
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.words[i])
        return out


def pad_to(seqs: list[list[int]], length: int) -> torch.Tensor:
    out = torch.full((len(seqs), length), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.tensor(s, dtype=torch.long)
    return out


class ImageSet(Dataset):
    """One line per image with its references ([R, T] ids) and, as text, ``references``."""

    def __init__(self, images: torch.Tensor, refs: torch.Tensor, references: list[list[str]]):
        self.images, self.refs, self.references = images, refs, references

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], self.refs[i]

    def __getitems__(self, indices):
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.images[idx], self.refs[idx]


class CaptionDataModule(pl.LightningDataModule):
    """Base of the captioning data modules. Subclasses give ``captions(split)`` (cheap: text only, read by
    ``check()`` before any training) and ``images(split)`` (uint8 [N, C, H, W] pixels, or float [N, D]
    features), and check their files in ``check_files()``."""

    name = "captions"
    SPLITS = ("train", "val", "test")

    def __init__(self, batch_size: int = 64, eval_batch_size: int = 250, min_word_count: int = 5,
                 max_caption_len: int = 16, num_workers: int = 0, seed: int = 0, name: str | None = None):
        super().__init__()
        if name:
            self.name = name
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.min_word_count, self.max_caption_len = int(min_word_count), int(max_caption_len)
        self.num_workers, self.seed = num_workers, seed
        self._vocab: Vocabulary | None = None
        self._captions: dict[str, Captions] | None = None
        self._ready = False

    # -- what a subclass gives ------------------------------------------------------------------
    def check_files(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def load_captions(self) -> dict[str, Captions]:  # pragma: no cover - abstract
        raise NotImplementedError

    def images(self, split: str) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------
    def captions(self, split: str) -> Captions:
        if self._captions is None:
            self.check_files()
            self._captions = self.load_captions()
            for s in self.SPLITS:
                if not self._captions.get(s):
                    raise UserError(f"{self.name}: the {s} split has no images; a captioning dataset needs train, "
                                    f"val and test images")
        return self._captions[split]

    @property
    def vocab(self) -> Vocabulary:
        if self._vocab is None:
            self._vocab = Vocabulary.build(self.captions("train"), self.min_word_count)
        return self._vocab

    @property
    def num_classes(self) -> int:
        return len(self.vocab)

    def check(self) -> None:
        """Before any training (the gate): the files, the captions and the vocabulary; not the images."""
        self.vocab  # noqa: B018 - builds it, or fails naming the files

    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        self.check()
        x_train = self.images("train")
        self._norm = self._normalizer(x_train)
        self.train_set = self._image_set("train", x_train)
        self.val_set = self._image_set("val")
        self.test_set = self._image_set("test")
        self._ready = True

    def _normalizer(self, x_train: torch.Tensor):
        """Pixels: scaled to [0, 1], then standardized with the training split's mean and std; features as is."""
        if x_train.is_floating_point():
            return lambda x: x.float()
        mean, std = float(x_train.float().div(255).mean()), float(x_train.float().div(255).std())
        return lambda x: ((x.float() / 255.0 - mean) / std).contiguous()

    def _image_set(self, split: str, x: torch.Tensor | None = None) -> ImageSet:
        caps = self.captions(split)
        r = max(len(refs) for refs in caps)
        t = self.max_caption_len + 1
        refs = torch.full((len(caps), r, t), PAD, dtype=torch.long)
        for i, rs in enumerate(caps):
            if rs:
                refs[i, :len(rs)] = pad_to([self.vocab.encode(c, self.max_caption_len) for c in rs], t)
        return ImageSet(self._norm(self.images(split) if x is None else x), refs, [[" ".join(c) for c in rs] for rs in caps])

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, sampler=EpochSampler(len(self.train_set),
                          self.seed), collate_fn=_batch_collate, num_workers=self.num_workers)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.eval_batch_size, collate_fn=_batch_collate,
                          num_workers=self.num_workers)

    def test_dataloader(self):
        return DataLoader(self.test_set, batch_size=self.eval_batch_size, collate_fn=_batch_collate,
                          num_workers=self.num_workers)


# -- Flickr8k / Flickr30k / COCO in Karpathy's split format ---------------------------------------
# torchvision backbones whose pooled features can stand in for the CNN (NeuralTalk used VGG-16's fc7)
BACKBONES = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048, "vgg16": 4096}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class KarpathyCaptions(CaptionDataModule):
    """``dataset_<name>.json`` (Karpathy & Fei-Fei's splits: train, restval -> train, val, test) and the image
    folder, both under ``root``. ``features=null``: images resized to ``image_size`` (a CNN trains with the
    captioner); ``features=resnet50`` (or another of ``BACKBONES``): the backbone's pooled features of every
    image, computed once and cached under ``cache_dir`` (``backbone_weights``: torchvision's weights name,
    e.g. ``DEFAULT``; null = randomly initialized, for tests only)."""

    def __init__(self, name: str = "flickr8k", root: str | None = None, json_file: str | None = None,
                 images_dir: str = "images", image_size: int = 64, features: str | None = None,
                 backbone_weights: str | None = "DEFAULT", cache_dir: str | None = None, **kw):
        super().__init__(name=name, **kw)
        self.root = Path(root) if root else Path("data") / name
        self.json_file = json_file or f"dataset_{name}.json"
        self.images_dir = images_dir
        self.features, self.backbone_weights = features, backbone_weights
        self.cache_dir = Path(cache_dir) if cache_dir else self.root / "cache"
        if features is not None and features not in BACKBONES:
            raise UserError(f"data.features={features}: choose one of {', '.join(BACKBONES)} (or null for pixels)")
        self.in_channels = BACKBONES[features] if features else 3
        self.image_size = 1 if features else int(image_size)
        self._pixel_size = int(image_size)
        self._entries: list[dict] | None = None

    def _where(self) -> str:
        return (f"put {self.json_file} (Karpathy's splits: https://cs.stanford.edu/people/karpathy/deepimagesent/) "
                f"and the images folder {self.images_dir}/ in {self.root} (or set data.root=FOLDER)")

    def check_files(self) -> None:
        js = self.root / self.json_file
        if not js.is_file():
            raise UserError(f"{self.name}: {js} not found: {self._where()}")
        if not (self.root / self.images_dir).is_dir():
            raise UserError(f"{self.name}: image folder {self.root / self.images_dir} not found: {self._where()}")
        missing = [p for p in (self._path(e) for e in self._read_entries()[:50]) if not p.is_file()]
        if missing:
            raise UserError(f"{self.name}: {len(missing)} of the first 50 images are missing (e.g. {missing[0]}): "
                            f"{self._where()}")

    def _read_entries(self) -> list[dict]:
        if self._entries is None:
            try:
                data = json.loads((self.root / self.json_file).read_text())
                entries = data["images"]
                for e in entries:
                    e["filename"], e["split"], e["sentences"]  # noqa: B018 - the format's required keys
            except (ValueError, KeyError, TypeError) as e:
                raise UserError(f"{self.name}: {self.root / self.json_file} is not in Karpathy's format "
                                f"({{'images': [{{'filename', 'split', 'sentences': [{{'tokens'}}]}}]}}): {e}") from None
            self._entries = entries
        return self._entries

    def _path(self, e: dict) -> Path:
        return self.root / self.images_dir / e.get("filepath", "") / e["filename"]

    def _split_entries(self, split: str) -> list[dict]:
        want = {"train": ("train", "restval")}.get(split, (split,))
        return [e for e in self._read_entries() if e["split"] in want]

    def load_captions(self) -> dict[str, Captions]:
        def words(s):
            toks = s.get("tokens") or str(s.get("raw", "")).split()
            return [t.lower() for t in toks if t.strip()]

        return {s: [[words(x) for x in e["sentences"]] for e in self._split_entries(s)] for s in self.SPLITS}

    def images(self, split: str) -> torch.Tensor:
        entries = self._split_entries(split)
        if self.features:
            feats = self._cached_features()
            pos = {f: i for i, f in enumerate(feats["files"])}
            return feats["features"][[pos[str(self._path(e).relative_to(self.root))] for e in entries]]
        return torch.stack([self._pixels(e) for e in entries])

    def _pixels(self, e: dict) -> torch.Tensor:
        from PIL import Image

        with Image.open(self._path(e)) as im:
            im = im.convert("RGB").resize((self._pixel_size, self._pixel_size), Image.BILINEAR)
            return torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1)

    def _cache_path(self) -> Path:
        return self.cache_dir / f"{self.name}_{self.features}_{self.backbone_weights or 'random'}_{self._pixel_size}.pt"

    def _cached_features(self) -> dict:
        """Every image's backbone features, computed once (all splits) and cached; recomputed if the images differ."""
        path = self._cache_path()
        files = [str(self._path(e).relative_to(self.root)) for e in self._read_entries()]
        if path.is_file():
            cached = torch.load(path, map_location="cpu", weights_only=True)
            if cached.get("files") == files:
                return cached
        feats = self._compute_features()
        out = {"files": files, "features": feats}
        buf = io.BytesIO()
        torch.save(out, buf)
        atomic_write_bytes(path, buf.getvalue())
        return out

    @torch.no_grad()
    def _compute_features(self) -> torch.Tensor:
        import torchvision
        from PIL import Image

        try:
            net = getattr(torchvision.models, self.features)(weights=self.backbone_weights)
        except Exception as e:  # weights not cached and no network
            raise UserError(f"data.features={self.features}: cannot load torchvision's {self.backbone_weights} "
                            f"weights ({str(e).splitlines()[0]}); download them once with network access") from None
        if self.features.startswith("resnet"):
            net.fc = torch.nn.Identity()
        else:  # VGG: fc7 (NeuralTalk's image features)
            net.classifier = net.classifier[:-1]
        net.eval()
        tf = torchvision.transforms
        prep = tf.Compose([tf.Resize(self._pixel_size), tf.CenterCrop(self._pixel_size), tf.ToTensor(),
                           tf.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
        entries, out = self._read_entries(), []
        for i in range(0, len(entries), 32):
            batch = []
            for e in entries[i:i + 32]:
                with Image.open(self._path(e)) as im:
                    batch.append(prep(im.convert("RGB")))
            out.append(net(torch.stack(batch)).flatten(1))
        return torch.cat(out).float()
