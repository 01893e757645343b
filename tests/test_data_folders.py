"""Folder datasets with their own configs: Pokémon (RGBA and palette PNGs on white) and Monet (JPEGs)."""

import numpy as np
import pytest
from PIL import Image

from dcgan_lit.data import MonetDataModule, PokemonDataModule
from dcgan_lit.errors import UserError

from .conftest import write_images


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
