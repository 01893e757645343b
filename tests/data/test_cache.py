"""The decoded-dataset cache: built once, keyed by size, channels and files, rebuilt when damaged."""

import torch

from dcgan_lit.data import ImageFolderDataModule
from tests.helpers.images import write_images


def test_cache_is_built_once_and_reused(image_folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = ImageFolderDataModule(path=str(image_folder), image_size=32, batch_size=8, cache_dir=str(cache))
    first.setup()
    assert len(list(cache.glob("*.pt"))) == 1
    calls = []
    monkeypatch.setattr("dcgan_lit.data.folder.decode_images", lambda *a: calls.append(a))
    second = ImageFolderDataModule(path=str(image_folder), image_size=32, batch_size=8, cache_dir=str(cache))
    second.setup()
    assert calls == []
    assert torch.equal(first.train_set.images, second.train_set.images)


def test_cache_key_changes_with_size_channels_and_files(image_folder, tmp_path):
    def key(**kw):
        args = {"path": str(image_folder), "image_size": 32, "channels": 3, **kw}
        return ImageFolderDataModule(**args).cache_key()

    base = key()
    assert key(image_size=64) != base
    assert key(channels=1) != base
    write_images(image_folder / "new", 1, seed=9)
    assert key() != base


def test_damaged_cache_is_rebuilt(image_folder, tmp_path):
    cache = tmp_path / "cache"
    dm = ImageFolderDataModule(path=str(image_folder), image_size=32, batch_size=8, cache_dir=str(cache))
    dm.setup()
    entry = next(cache.glob("*.pt"))
    entry.write_bytes(b"garbage")
    again = ImageFolderDataModule(path=str(image_folder), image_size=32, batch_size=8, cache_dir=str(cache))
    again.setup()
    assert len(again.train_set) == 32
