"""CelebA from a tiny folder in torchvision's layout: splits, centre crop then resize, clear errors."""

import pytest
import torch

from dcgan_lit.data import CelebADataModule
from dcgan_lit.errors import UserError
from tests.helpers.fake_data import write_celeba


def test_centre_crop_then_resize(tmp_path, monkeypatch):
    write_celeba(tmp_path, monkeypatch)
    dm = CelebADataModule(root=str(tmp_path), image_size=32, batch_size=2, cache_dir=None)
    dm.check_source()
    dm.setup()
    images = dm.train_set.images
    assert images.shape == (8, 3, 32, 32) and images.dtype == torch.uint8
    assert images.float().mean() > 250  # the 108 crop is exactly the white square: no black border left
    uncropped = CelebADataModule(
        root=str(tmp_path), image_size=32, batch_size=2, crop_size=None, cache_dir=None
    )
    uncropped.setup()
    assert uncropped.train_set.images[:, :, 0, 0].float().mean() < 10  # the 178 square keeps the black edge
    assert uncropped.cache_key() != dm.cache_key()


@pytest.mark.parametrize(("split", "count"), [("train", 4), ("valid", 2), ("test", 2), ("all", 8)])
def test_splits_follow_the_partition_file(tmp_path, monkeypatch, split, count):
    write_celeba(tmp_path, monkeypatch)
    dm = CelebADataModule(root=str(tmp_path), split=split, image_size=32, batch_size=1, cache_dir=None)
    dm.setup()
    assert len(dm.train_set) == count


def test_missing_and_corrupted_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(UserError) as error:
        CelebADataModule(root=str(tmp_path)).check_source()
    message = str(error.value)
    assert "img_align_celeba/" in message and "list_eval_partition.txt" in message
    assert "mmlab.ie.cuhk.edu.hk" in message and "\n" not in message
    folder = write_celeba(tmp_path, monkeypatch)
    (folder / "list_attr_celeba.txt").write_text("edited\n")  # its md5 no longer matches
    with pytest.raises(UserError, match="incomplete or corrupted"):
        CelebADataModule(root=str(tmp_path), image_size=32, batch_size=1, cache_dir=None).setup()
    with pytest.raises(UserError, match="dataset.split='val'"):
        CelebADataModule(root=str(tmp_path), split="val")
