"""LSUN from a tiny lmdb of webp images in torchvision's layout: decoding, max_images, clear errors."""

import sys

import pytest
import torch

from dcgan_lit.data import LSUNDataModule
from dcgan_lit.errors import UserError
from tests.helpers.fake_data import write_lsun

pytest.importorskip("lmdb")


def test_reads_every_image_and_skips_a_broken_one(tmp_path, caplog):
    write_lsun(tmp_path, count=10)
    dm = LSUNDataModule(root=str(tmp_path), image_size=32, batch_size=4, cache_dir=None)
    dm.check_source()
    dm.setup()
    images = dm.train_set.images
    assert images.shape == (10, 3, 32, 32) and images.dtype == torch.uint8
    # the noisy left stripe of each 64x48 image is cut off by the centre crop: every image is flat
    levels = sorted(int(v) for v in images[:, 0, 16, 16])
    assert levels == [20 * i for i in range(10)]
    assert (images.amax(dim=(1, 2, 3)) - images.amin(dim=(1, 2, 3))).max() <= 2
    assert "skipped 1 of 11" in caplog.text


def test_max_images_and_the_cache_key(tmp_path):
    write_lsun(tmp_path, category="church_outdoor_train", count=10)
    dm = LSUNDataModule(
        root=str(tmp_path),
        category="church_outdoor_train",
        max_images=4,
        image_size=32,
        batch_size=2,
        cache_dir=None,
    )
    dm.setup()
    assert len(dm.train_set) == 4
    full = LSUNDataModule(root=str(tmp_path), category="church_outdoor_train", image_size=32)
    assert full.cache_key() != dm.cache_key()


def test_missing_database_and_missing_lmdb_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(UserError) as error:
        LSUNDataModule(root=str(tmp_path), category="bedroom_train").check_source()
    message = str(error.value)
    assert str(tmp_path / "bedroom_train_lmdb") in message and "download.py -c bedroom" in message
    assert "\n" not in message
    monkeypatch.setitem(sys.modules, "lmdb", None)
    with pytest.raises(UserError, match="pip install lmdb"):
        LSUNDataModule(root=str(tmp_path)).check_source()
