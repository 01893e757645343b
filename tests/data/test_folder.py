"""Image-folder datasets (imagefolder, Pokémon, Monet): uint8 batches, subsets, class filters, clear errors."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lit.data import (
    CatFacesDataModule,
    ImageFolderDataModule,
    MonetDataModule,
    PokemonDataModule,
)
from dcgan_lit.data.images import decode_images, find_images
from dcgan_lit.errors import UserError
from tests.helpers.images import write_images


def test_corrupt_files_are_skipped_and_counted(tmp_path, caplog):
    paths = write_images(tmp_path, 5)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "fake.jpg").write_text("this is not a jpeg")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(paths[0].read_bytes()[:60])
    images, skipped = decode_images(find_images(tmp_path), 32, 3)
    assert images.shape == (5, 3, 32, 32)
    assert sorted(p.name for p, _ in skipped) == ["empty.png", "fake.jpg", "truncated.png"]
    assert all(reason.startswith("unreadable") for _, reason in skipped)


def test_datamodule_yields_uint8_batches_and_preprocesses_to_unit_range(image_folder, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    dm = ImageFolderDataModule(
        path=str(image_folder), image_size=32, channels=3, batch_size=8, cache_dir=None
    )
    dm.setup()
    assert "Dataset imagefolder: 32 images, 3x32x32, from" in caplog.text
    batch = next(iter(dm.train_dataloader()))
    assert batch.dtype == torch.uint8 and batch.shape == (8, 3, 32, 32)
    x = dm.preprocess(batch, augment=False)
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    assert torch.allclose(x, batch.float() / 127.5 - 1)


def test_hflip_mirrors_some_images_and_keeps_the_rest():
    dm = ImageFolderDataModule(path=".", image_size=32, channels=3, hflip=True)
    torch.manual_seed(0)
    batch = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    plain = dm.preprocess(batch, augment=False)
    flipped = dm.preprocess(batch, augment=True)
    mirrored = [torch.equal(f, p.flip(2)) for f, p in zip(flipped, plain, strict=True)]
    kept = [torch.equal(f, p) for f, p in zip(flipped, plain, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert 10 < sum(mirrored) < 54


def test_subset_is_a_fixed_seeded_sample_sharing_the_full_cache(image_folder, tmp_path):
    def images(**kw) -> torch.Tensor:
        dm = ImageFolderDataModule(
            path=str(image_folder), image_size=32, batch_size=4, cache_dir=str(tmp_path / "cache"), **kw
        )
        dm.setup()
        return dm.train_set.images

    full = images()
    subset = images(subset=10)
    assert subset.shape == (10, 3, 32, 32)
    rows = [next(i for i, f in enumerate(full) if torch.equal(f, s)) for s in subset]
    assert rows == sorted(set(rows))  # distinct images of the full set, in their original order
    assert torch.equal(images(subset=10), subset)
    assert not torch.equal(images(subset=10, subset_seed=1), subset)
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1
    with pytest.raises(UserError, match=r"dataset.subset=33 must be between 1 and the 32 images"):
        images(subset=33)


def test_missing_folder_is_one_clear_line(tmp_path):
    dm = CatFacesDataModule(path=str(tmp_path / "nowhere"), image_size=64)
    with pytest.raises(UserError) as error:
        dm.check_source()
    message = str(error.value)
    assert "\n" not in message
    assert str(tmp_path / "nowhere") in message and "kaggle.com" in message


def test_folder_without_images_and_all_corrupt_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no image files"):
        ImageFolderDataModule(path=str(tmp_path / "empty")).check_source()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(UserError, match="no usable images"):
        ImageFolderDataModule(path=str(bad), image_size=32, batch_size=1).setup()


def test_too_few_images_for_the_batch_is_a_clear_error(image_folder):
    with pytest.raises(UserError, match="fewer than dataset.batch_size=128"):
        ImageFolderDataModule(path=str(image_folder), image_size=32, batch_size=128).setup()


def write_sprite(path, mode: str, size: int = 64) -> None:
    """A red disc on a fully transparent background, as RGBA or as a palette PNG with a transparent index."""
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2
    if mode == "RGBA":
        pixels = np.zeros((size, size, 4), dtype=np.uint8)
        pixels[disc] = (255, 0, 0, 255)
        Image.fromarray(pixels, "RGBA").save(path)
    else:
        indices = np.where(disc, 1, 0).astype(np.uint8)
        image = Image.fromarray(indices, "P")
        image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)  # index 0 black (transparent), 1 red
        image.save(path, transparency=0)


def test_pokemon_rgba_and_palette_pngs_are_composited_on_white(tmp_path):
    folder = tmp_path / "pokemon" / "sprites"
    folder.mkdir(parents=True)
    write_sprite(folder / "a.png", "RGBA", size=256)
    write_sprite(folder / "b.png", "P", size=120)
    assert Image.open(folder / "b.png").mode == "P"
    dm = PokemonDataModule(path=str(tmp_path / "pokemon"), image_size=32, batch_size=2, cache_dir=None)
    dm.setup()
    images = dm.train_set.images
    assert images.shape == (2, 3, 32, 32)
    for image in images:
        assert image[:, 0, 0].tolist() == [255, 255, 255]  # transparent corner -> white, not black
        assert image[:, 16, 16].tolist() == [255, 0, 0]  # the opaque disc keeps its colour


def test_monet_reads_jpegs_at_every_model_size(tmp_path):
    write_images(tmp_path / "monet" / "monet_jpg", 6, size=(256, 256), ext="jpg")
    for size in (64, 128, 256):
        dm = MonetDataModule(path=str(tmp_path / "monet"), image_size=size, batch_size=5, cache_dir=None)
        dm.setup()
        assert dm.train_set.images.shape == (6, 3, size, size)


@pytest.mark.parametrize(
    ("module", "url"), [(PokemonDataModule, "kvpratama"), (MonetDataModule, "gan-getting")]
)
def test_missing_folder_says_where_to_get_it(tmp_path, module, url):
    with pytest.raises(UserError) as error:
        module(path=str(tmp_path / "absent")).check_source()
    message = str(error.value)
    assert "\n" not in message and url in message and str(tmp_path / "absent") in message


def test_imagefolder_class_filter_by_name_or_index(tmp_path):
    for i, name in enumerate(["bird", "cat", "horse"]):
        write_images(tmp_path / name / "nested", 3 + i, seed=i)
    (tmp_path / "notes.png").write_bytes(b"")  # top-level files belong to no class
    assert len(ImageFolderDataModule(path=str(tmp_path)).files) == 13
    by_name = ImageFolderDataModule(path=str(tmp_path), classes=["horse", "bird"])
    assert len(by_name.files) == 5 + 3
    assert {p.relative_to(tmp_path).parts[0] for p in by_name.files} == {"horse", "bird"}
    by_index = ImageFolderDataModule(path=str(tmp_path), classes=[2, "0"])
    assert by_index.files == by_name.files and by_index.cache_key() == by_name.cache_key()
    assert ImageFolderDataModule(path=str(tmp_path), classes=["cat"]).cache_key() != by_name.cache_key()
    with pytest.raises(UserError, match=r"no class 'dog'.*\['bird', 'cat', 'horse'\]"):
        ImageFolderDataModule(path=str(tmp_path), classes=["dog"]).check_source()
    with pytest.raises(UserError, match="class index 7 is out of range"):
        ImageFolderDataModule(path=str(tmp_path), classes=[7]).check_source()
