import gzip
import os

import numpy as np
import pytest
import torch

from experiments.data import (DEBIAN_FASHION_MNIST, FashionMNISTDataModule, MNISTDataModule,
                              MNISTSampleDataModule, read_idx)
from experiments.errors import UserError


def test_mnist_sample_split_is_reproducible_and_disjoint():
    a, b = MNISTSampleDataModule(), MNISTSampleDataModule()
    a.setup(), b.setup()
    assert (len(a.train_set), len(a.val_set), len(a.test_set)) == (3500, 500, 1000)
    assert torch.equal(a.test_set.y, b.test_set.y) and torch.equal(a.val_set.x, b.val_set.x)
    # no image of the validation split is also a training image
    tr = {bytes(x.numpy().tobytes()) for x in a.train_set.x[:3500]}
    assert not any(bytes(x.numpy().tobytes()) in tr for x in a.val_set.x)
    assert a.train_set.x.shape[1:] == (1, 28, 28)
    assert abs(float(a.train_set.x.mean())) < 1e-3  # normalized with the training split's statistics


def test_batches_come_whole_from_getitems():
    d = MNISTSampleDataModule(batch_size=32)
    d.setup()
    x, y = next(iter(d.train_dataloader()))
    assert x.shape == (32, 1, 28, 28) and y.shape == (32,) and y.dtype == torch.long
    assert len(d.test_dataloader()) == 1  # eval batch 1000


def _write_idx(path, arr, gz):
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


@pytest.mark.parametrize("gz", [False, True])
def test_local_idx_folder(tmp_path, gz):
    rng = np.random.default_rng(0)
    sfx = ".gz" if gz else ""
    _write_idx(tmp_path / f"train-images-idx3-ubyte{sfx}", rng.integers(0, 255, (100, 28, 28)), gz)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{sfx}", rng.integers(0, 10, 100), gz)
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{sfx}", rng.integers(0, 255, (20, 28, 28)), gz)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{sfx}", rng.integers(0, 10, 20), gz)
    d = MNISTDataModule(root=str(tmp_path), val_size=10, download=False)
    d.setup()
    assert (len(d.train_set), len(d.val_set), len(d.test_set)) == (90, 10, 20)


def test_truncated_idx_is_reported(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(bytes([0, 0, 8, 1]) + (100).to_bytes(4, "big") + b"\x01" * 10)
    with pytest.raises(UserError, match="truncated"):
        read_idx(p)


def test_missing_files_offline_clear_error(tmp_path):
    d = MNISTDataModule(root=str(tmp_path / "none"), download=False)
    with pytest.raises(UserError, match="Put them in"):
        d.setup()


@pytest.mark.skipif(not os.path.isdir(DEBIAN_FASHION_MNIST), reason="Debian's dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package(tmp_path):
    d = FashionMNISTDataModule(root=str(tmp_path / "empty"), download=False)
    d.setup()
    assert (len(d.train_set), len(d.val_set), len(d.test_set)) == (55000, 5000, 10000)
    assert sorted(torch.unique(d.test_set.y).tolist()) == list(range(10))


def test_imagenet_folder_errors_name_the_problem(tmp_path):
    from experiments.data import ImageNetDataModule

    with pytest.raises(UserError, match="train is missing"):
        ImageNetDataModule(root=str(tmp_path)).check()
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    with pytest.raises(UserError, match="no class sub-folders"):
        ImageNetDataModule(root=str(tmp_path)).check()
    for c in ("n01", "n02"):
        (tmp_path / "train" / c).mkdir()
    (tmp_path / "val" / "n01").mkdir()
    with pytest.raises(UserError, match="differ"):
        ImageNetDataModule(root=str(tmp_path)).check()
    (tmp_path / "val" / "n02").mkdir()
    with pytest.raises(UserError, match="ImageNet has 1000"):
        ImageNetDataModule(root=str(tmp_path)).check()


def test_fake_imagenet_shapes():
    from experiments.data import FakeImageNetDataModule

    d = FakeImageNetDataModule(train_samples=8, val_size=4, test_size=4, image_size=32)
    d.setup()
    assert d.train_set.x.shape == (8, 3, 32, 32) and len(d.test_set) == 4 and d.num_classes == 1000
