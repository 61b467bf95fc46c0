"""``fashion_captions``: an offline captioning proxy from real images with synthetic language.

Each image is two to four real Fashion-MNIST items placed side by side, left-aligned on a 28 x (28 x
``max_items``) black canvas: items of Fashion-MNIST's training set for the train split, of a held-out part of
its training set (``val_items`` items, never in a train image) for validation, and of its test set for the
test split. Each image has ``captions_per_image`` captions that name its items in order, left to right, with
wording drawn from a small grammar (synonyms, connectives and three sentence frames), e.g. "a sandal next to
a shirt and a bag" or "from left to right a sneaker a coat and an ankle boot". The images are real; the
language is synthetic: no person wrote these captions, and their vocabulary is 40-odd words.

Everything is drawn from ``numpy.random.default_rng(data_seed)``: the same seed builds the same images and
captions (the run's own ``seed`` only shuffles the training batches).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from experiments.captioning_data import CaptionDataModule, Captions
from experiments.data import DEBIAN_FASHION_MNIST, IDX_FILES, find_idx_files, read_idx
from experiments.errors import UserError

# Fashion-MNIST's classes 0-9, each with the names a caption may use for it.
NAMES = (("t-shirt", "top"), ("pair of trousers", "pair of pants"), ("pullover", "sweater"), ("dress",),
         ("coat", "jacket"), ("sandal",), ("shirt",), ("sneaker", "trainer"), ("bag", "handbag"),
         ("ankle boot", "boot"))
LINKS = ("next to", "beside", "and", "followed by")
COUNTS = {2: "two", 3: "three", 4: "four"}


def _noun(name: str) -> str:
    return ("an " if name[0] in "aeiou" else "a ") + name


def caption(labels: list[int], rng: np.random.Generator) -> list[str]:
    """One caption naming ``labels`` left to right, its wording drawn from the grammar."""
    nouns = [_noun(NAMES[c][rng.integers(len(NAMES[c]))]) for c in labels]
    frame = rng.integers(3)
    if frame == 0:  # "a sandal next to a shirt and a bag"
        text = nouns[0]
        for i, n in enumerate(nouns[1:], 1):
            link = "and" if i == len(nouns) - 1 and len(nouns) > 2 else LINKS[rng.integers(len(LINKS))]
            text += f" {link} {n}"
    elif frame == 1:  # "from left to right a sandal a shirt and a bag"
        text = "from left to right " + " ".join(nouns[:-1]) + " and " + nouns[-1]
    else:  # "three items a sandal a shirt and a bag"
        text = f"{COUNTS[len(nouns)]} items " + " ".join(nouns[:-1]) + " and " + nouns[-1]
    return text.split()


class FashionCaptions(CaptionDataModule):
    """The proxy (module docstring). ``root``: where the Fashion-MNIST idx files are (then Debian's
    ``dataset-fashion-mnist`` folder)."""

    name = "fashion_captions"
    in_channels = 1
    image_size = 28

    def __init__(self, root: str | None = None, n_train: int = 6000, n_val: int = 500, n_test: int = 1000,
                 min_items: int = 2, max_items: int = 4, captions_per_image: int = 5, val_items: int = 5000,
                 data_seed: int = 0, **kw):
        super().__init__(**kw)
        if not 1 <= min_items <= max_items or max_items > 4 or min_items < 2:
            raise UserError(f"data.min_items={min_items}, data.max_items={max_items}: need 2 <= min <= max <= 4")
        self.root = root
        self.n = {"train": int(n_train), "val": int(n_val), "test": int(n_test)}
        self.min_items, self.max_items = int(min_items), int(max_items)
        self.captions_per_image, self.val_items, self.data_seed = int(captions_per_image), int(val_items), data_seed
        self._layout: dict[str, np.ndarray] | None = None

    def _folders(self) -> list[Path]:
        root = Path(self.root or "data/fashion_mnist")
        return [root, root / "raw", root / "FashionMNIST" / "raw", Path(DEBIAN_FASHION_MNIST)]

    def check_files(self) -> None:
        self._files = find_idx_files(self._folders())
        if self._files is None:
            raise UserError(f"fashion_captions: the four Fashion-MNIST idx files ({', '.join(IDX_FILES.values())}, "
                            f"plain or .gz) were not found in {', '.join(str(f) for f in self._folders())}. Put them "
                            f"in {self.root or 'data/fashion_mnist'} (or set data.root=FOLDER)")

    def layout(self) -> tuple[dict[str, np.ndarray], Captions]:
        """Which Fashion-MNIST items each image holds ([N, max_items], -1 = empty slot; indices into the train
        set for train and val, the test set for test) and its captions, per split."""
        if self._layout is None:
            self.check_files()
            rng = np.random.default_rng(self.data_seed)
            y_tr, y_te = read_idx(self._files["train_labels"]), read_idx(self._files["test_labels"])
            if not 0 < self.val_items < len(y_tr):
                raise UserError(f"data.val_items={self.val_items} must be between 1 and {len(y_tr) - 1}")
            perm = rng.permutation(len(y_tr))
            pools = {"train": perm[self.val_items:], "val": perm[:self.val_items], "test": np.arange(len(y_te))}
            labels = {"train": y_tr, "val": y_tr, "test": y_te}
            self._layout, self._text = {}, {}
            for split in self.SPLITS:
                n = self.n[split]
                k = rng.integers(self.min_items, self.max_items + 1, size=n)
                items = np.full((n, self.max_items), -1, dtype=np.int64)
                caps = []
                for i in range(n):
                    items[i, :k[i]] = rng.choice(pools[split], size=k[i], replace=False)
                    labs = [int(labels[split][j]) for j in items[i, :k[i]]]
                    caps.append([caption(labs, rng) for _ in range(self.captions_per_image)])
                self._layout[split], self._text[split] = items, caps
        return self._layout, self._text

    def load_captions(self) -> dict[str, Captions]:
        return self.layout()[1]

    def images(self, split: str) -> torch.Tensor:
        items = self.layout()[0][split]
        src = read_idx(self._files["test_images" if split == "test" else "train_images"])
        canvas = np.zeros((len(items), 1, 28, 28 * self.max_items), dtype=np.uint8)
        for slot in range(self.max_items):
            have = items[:, slot] >= 0
            canvas[have, 0, :, 28 * slot:28 * (slot + 1)] = src[items[have, slot]]
        return torch.from_numpy(canvas)
