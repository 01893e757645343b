"""Class labels for conditional training: decoded once, cached beside the images, in the sampler's order."""

import logging

import numpy as np
import pytest
import torch

from dcgan_lit.data import CIFAR10DataModule, ImageFolderDataModule, LSUNDataModule, MNISTDataModule
from dcgan_lit.data.cache import make_key
from dcgan_lit.errors import UserError
from dcgan_lit.pixels import from_uint8
from tests.helpers.fake_data import write_cifar10, write_idx
from tests.helpers.images import write_class_folders

COUNTS = {"bird": 6, "horse": 10}  # sorted: bird is class 0 (pixels 40), horse class 1 (pixels 80)


def folder_data(tmp_path, **kwargs) -> ImageFolderDataModule:
    root = tmp_path / "classes"
    if not root.exists():  # written once: rewriting would change the files' mtimes, so the cache key
        write_class_folders(root, COUNTS)
    options = {"image_size": 32, "channels": 3, "batch_size": 4, "hflip": False, "cache_dir": None}
    return ImageFolderDataModule(path=str(root), **{**options, "conditional": True, **kwargs})


def pixel_class(images: torch.Tensor, names: list[str]) -> list[int]:
    """The class of each flat-colour image (see write_class_folders), read from its pixels."""
    order = list(COUNTS)
    values = (
        images.float().flatten(1).mean(1)
        if images.dtype == torch.uint8
        else (images.flatten(1).mean(1) + 1) * 127.5
    )
    return [names.index(order[round(v / 40) - 1]) for v in values.tolist()]


def test_folder_batches_carry_each_image_s_class(tmp_path):
    datamodule = folder_data(tmp_path)
    datamodule.setup()
    assert datamodule.class_names() == ["bird", "horse"]
    assert torch.bincount(datamodule.train_set.labels).tolist() == [6, 10]
    for images, labels in datamodule.train_dataloader():
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64 and len(images) == len(labels) == 4
        assert labels.tolist() == pixel_class(images, ["bird", "horse"])
        images_x, labels_x = datamodule.on_after_batch_transfer((images, labels), 0)
        assert torch.equal(images_x, from_uint8(images)) and torch.equal(labels_x, labels)


def test_classes_pick_and_order_the_labels(tmp_path):
    datamodule = folder_data(tmp_path, classes=["horse", "bird"])
    datamodule.setup()
    assert datamodule.class_names() == ["horse", "bird"]
    labels = datamodule.train_set.labels
    assert labels.tolist() == pixel_class(datamodule.train_set.images, ["horse", "bird"])
    assert torch.bincount(labels).tolist() == [10, 6]


def test_labels_are_cached_beside_the_images_under_their_own_key(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    cache = tmp_path / "cache"
    plain = folder_data(tmp_path, cache_dir=str(cache), conditional=False)
    labelled = folder_data(tmp_path, cache_dir=str(cache))
    assert plain.cache_key() != labelled.cache_key()
    plain.setup()
    labelled.setup()
    stored = torch.load(cache / f"{labelled.cache_key()}.pt", weights_only=True)
    assert set(stored) == {"images", "labels"} and torch.equal(stored["labels"], labelled.train_set.labels)
    assert isinstance(torch.load(cache / f"{plain.cache_key()}.pt", weights_only=True), torch.Tensor)
    caplog.clear()
    again = folder_data(tmp_path, cache_dir=str(cache))
    again.setup()
    assert "Using cached dataset" in caplog.text and "Decoding" not in caplog.text
    assert torch.equal(again.train_set.labels, labelled.train_set.labels)
    assert "conditional on 2 classes (bird 6, horse 10)" in caplog.text


def test_an_unconditional_cache_key_is_unchanged(tmp_path):
    """Caches written before labels existed stay valid: the unconditional key has no new part."""
    datamodule = folder_data(tmp_path, conditional=False)
    parts = {"source": "imagefolder", "size": 32, "channels": 3, **datamodule.cache_parts()}
    assert datamodule.cache_key() == make_key("imagefolder-32px-3ch", parts)


def test_labels_follow_the_resumable_sampler(tmp_path):
    datamodule = folder_data(tmp_path)
    datamodule.setup()
    torch.manual_seed(0)
    batches = list(datamodule.train_dataloader())
    state = datamodule.state_dict()
    state["sampler"]["batches_consumed"] = 2
    resumed = folder_data(tmp_path)
    resumed.setup()
    resumed.load_state_dict(state)
    for (images, labels), (images_r, labels_r) in zip(batches[2:], resumed.train_dataloader(), strict=True):
        assert torch.equal(images, images_r) and torch.equal(labels, labels_r)


def test_on_device_batches_are_indices_into_images_and_labels(tmp_path):
    datamodule = folder_data(tmp_path, on_device=True)
    datamodule.setup()
    indices = next(iter(datamodule.train_dataloader()))
    images, labels = datamodule.on_after_batch_transfer(indices, 0)
    assert torch.equal(labels, datamodule.train_set.labels[indices])
    assert labels.tolist() == pixel_class(images, ["bird", "horse"])


def test_subset_and_symmetries_keep_labels_aligned(tmp_path):
    datamodule = folder_data(tmp_path, subset=5, symmetries=["identity", "rot90"])
    datamodule.setup()
    assert len(datamodule.train_set) == 5
    assert datamodule.train_set.labels.tolist() == pixel_class(datamodule.train_set.images, ["bird", "horse"])
    full = folder_data(tmp_path, symmetries=["identity", "rot90"])
    full.setup()
    assert torch.bincount(full.train_set.labels).tolist() == [12, 20]


def test_a_folder_without_class_subfolders_is_one_line(tmp_path):
    (tmp_path / "flat").mkdir()
    datamodule = ImageFolderDataModule(path=str(tmp_path / "flat"), image_size=32, conditional=True)
    with pytest.raises(UserError, match="has no subfolders, so it has no classes") as error:
        datamodule.check_source()
    assert "\n" not in str(error.value)


def test_a_source_without_labels_says_so(tmp_path):
    datamodule = LSUNDataModule(root=str(tmp_path), image_size=32, conditional=True)
    with pytest.raises(UserError, match="Dataset lsun has no class labels, so model.conditional=true"):
        datamodule.class_names()


def test_cifar_labels_index_the_chosen_classes(tmp_path, monkeypatch):
    write_cifar10(tmp_path, monkeypatch)  # each image is filled with 10 * its CIFAR-10 label
    datamodule = CIFAR10DataModule(
        root=str(tmp_path), classes=["horse", "bird"], image_size=32, batch_size=4, conditional=True
    )
    datamodule.setup()
    assert datamodule.class_names() == ["horse", "bird"]
    values = datamodule.train_set.images[:, 0, 0, 0]
    expected = torch.where(values == 70, 0, 1)
    assert set(values.tolist()) == {70, 20} and torch.equal(datamodule.train_set.labels, expected)
    plain = CIFAR10DataModule(root=str(tmp_path), classes=["horse", "bird"], image_size=32, batch_size=4)
    plain.setup()
    assert torch.equal(plain.train_set.images, datamodule.train_set.images)


def test_mnist_labels_are_the_digits(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(
        tmp_path / "MNIST" / "raw",
        rng.integers(0, 256, (10, 28, 28)),
        np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3]),
    )
    datamodule = MNISTDataModule(
        root=str(tmp_path), download=False, image_size=32, batch_size=2, conditional=True
    )
    datamodule.setup()
    assert datamodule.class_names() == [str(d) for d in range(10)]
    assert datamodule.train_set.labels.tolist() == [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
