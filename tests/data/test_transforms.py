"""Rotations/reflections and per-image normalisation baked into the cache; the class-subfolder filter."""

import pytest
import torch

from dcgan_lit.data import ImageFolderDataModule
from dcgan_lit.data.transforms import apply_symmetries, normalize_per_image, resolve_symmetries
from dcgan_lit.errors import UserError


def test_the_eight_symmetries_are_distinct_and_named_right():
    image = torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4)
    out = apply_symmetries(image, resolve_symmetries("all"))
    assert out.shape == (8, 1, 4, 4)
    assert len({tuple(x.flatten().tolist()) for x in out}) == 8
    named = dict(zip(resolve_symmetries("all"), out, strict=True))
    plain = image[0, 0]
    assert torch.equal(named["identity"][0], plain)
    assert torch.equal(
        named["rot90"][0],
        torch.tensor([[3, 7, 11, 15], [2, 6, 10, 14], [1, 5, 9, 13], [0, 4, 8, 12]]).to(torch.uint8),
    )
    assert torch.equal(named["hflip"][0], plain.flip(1))
    assert torch.equal(named["hflip_rot90"][0], plain.T)  # the transpose
    assert torch.equal(named["hflip_rot180"][0], plain.flip(0))  # the vertical flip


def test_symmetry_names_groups_and_mistakes():
    assert resolve_symmetries(None) == ["identity"] and resolve_symmetries([]) == ["identity"]
    assert resolve_symmetries("rotations") == ["identity", "rot90", "rot180", "rot270"]
    assert resolve_symmetries(["identity", "hflip_rot180"]) == ["identity", "hflip_rot180"]
    with pytest.raises(UserError, match="dataset.symmetries"):
        resolve_symmetries(["rot45"])
    with pytest.raises(UserError, match="distinct"):
        resolve_symmetries(["rot90", "rot90"])


def test_per_image_normalisation_centres_and_scales_each_image():
    torch.manual_seed(0)
    dark = (torch.rand(1, 3, 16, 16) * 40).to(torch.uint8)  # low mean, low contrast
    bright = (200 + torch.rand(1, 3, 16, 16) * 55).to(torch.uint8)
    flat = torch.full((1, 3, 16, 16), 90, dtype=torch.uint8)
    out = normalize_per_image(torch.cat([dark, bright, flat])).float()
    for image in out[:2]:
        assert abs(image.mean().item() - 127.5) < 2
        assert abs(image.std().item() - 127.5 / 2) < 3  # one std is a quarter of the range
    assert (out[2] == 128).all()  # a flat frame stays flat instead of amplifying nothing into noise


def test_symmetries_and_normalisation_are_baked_into_the_cache(image_folder, tmp_path):
    cache = tmp_path / "cache"
    args = {"path": str(image_folder), "image_size": 32, "batch_size": 8, "cache_dir": str(cache)}
    plain = ImageFolderDataModule(**args)
    plain.setup()
    augmented = ImageFolderDataModule(**args, symmetries="all", per_image_normalize=True)
    augmented.setup()
    assert len(augmented.train_set) == 8 * len(plain.train_set) == 256
    assert len(list(cache.glob("*.pt"))) == 2  # two cache entries: the options are part of the key
    normalized = normalize_per_image(plain.train_set.images)
    assert torch.equal(augmented.train_set.images[:32], normalized)
    assert torch.equal(augmented.train_set.images[32:64], torch.rot90(normalized, 1, dims=(2, 3)))
    again = ImageFolderDataModule(**args, symmetries="all", per_image_normalize=True)
    assert again.cache_key() == augmented.cache_key()
