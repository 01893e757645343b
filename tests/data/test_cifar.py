"""CIFAR-10 from its real pickle batch format: class filter by name or index, split, resize, clear errors."""

import pytest
import torch

from dcgan_lit.data import CIFAR10DataModule
from dcgan_lit.errors import UserError
from tests.helpers.fake_data import write_cifar10


def test_all_classes_train_split(tmp_path, monkeypatch):
    write_cifar10(tmp_path, monkeypatch)
    dm = CIFAR10DataModule(root=str(tmp_path), download=False, image_size=32, batch_size=8, cache_dir=None)
    dm.check_source()
    dm.setup()
    images = dm.train_set.images
    assert images.shape == (100, 3, 32, 32) and images.dtype == torch.uint8
    assert sorted(images[:, 0, 0, 0].unique().tolist()) == list(range(0, 100, 10))


def test_class_filter_by_name_or_index_and_split_all(tmp_path, monkeypatch):
    write_cifar10(tmp_path, monkeypatch)
    by_name = CIFAR10DataModule(
        root=str(tmp_path), classes=["horse", "bird"], image_size=32, batch_size=4, cache_dir=None
    )
    by_name.setup()
    assert len(by_name.train_set) == 20  # 2 of each class per batch, 5 train batches
    assert set(by_name.train_set.images[:, :, :, :].flatten().unique().tolist()) == {70, 20}
    by_index = CIFAR10DataModule(
        root=str(tmp_path), classes=[7, 2], image_size=32, batch_size=4, cache_dir=None
    )
    assert by_index.cache_key() == by_name.cache_key()
    everything = CIFAR10DataModule(
        root=str(tmp_path), classes=["horse"], split="all", image_size=32, batch_size=4, cache_dir=None
    )
    everything.setup()
    assert len(everything.train_set) == 12  # the test batch adds its 2 horses


def test_resized_to_64_and_gray(tmp_path, monkeypatch):
    write_cifar10(tmp_path, monkeypatch)
    dm = CIFAR10DataModule(
        root=str(tmp_path), image_size=64, channels=1, classes=["truck"], batch_size=4, cache_dir=None
    )
    dm.setup()
    assert dm.train_set.images.shape == (10, 1, 64, 64)
    assert (dm.train_set.images == 90).all()  # a flat image stays flat through resize and luma


def test_unknown_class_is_one_line():
    with pytest.raises(UserError, match=r"no class 'pegasus'.*'horse'"):
        CIFAR10DataModule(root=".", classes=["pegasus"])


def test_missing_offline_and_failed_download_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(UserError) as error:
        CIFAR10DataModule(root=str(tmp_path), download=False).check_source()
    assert str(tmp_path / "cifar-10-batches-py") in str(error.value) and "\n" not in str(error.value)
    from torchvision.datasets import CIFAR10

    monkeypatch.setattr(CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")  # refused at once
    with pytest.raises(UserError, match="the download failed") as error:
        CIFAR10DataModule(root=str(tmp_path), download=True).check_source()
    assert "cs.toronto.edu" in str(error.value) and "\n" not in str(error.value)


def test_corrupted_batch_is_one_line(tmp_path, monkeypatch):
    folder = write_cifar10(tmp_path, monkeypatch)
    (folder / "data_batch_3").write_bytes(b"truncated")
    with pytest.raises(UserError, match="incomplete or corrupted"):
        CIFAR10DataModule(root=str(tmp_path), image_size=32, batch_size=4, cache_dir=None).setup()
