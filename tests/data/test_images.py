"""Bad input files are converted, or skipped and counted, never fatal: every PIL mode, damaged bytes, bombs."""

import logging
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dcgan_lit.data import ImageFolderDataModule
from dcgan_lit.data.images import decode_images, find_images, load_image
from tests.helpers.images import write_images

# What each format can hold, as PIL writes it: every mode is converted to RGB or gray on load.
FORMAT_MODES = {
    "png": ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"],
    "jpg": ["L", "RGB", "CMYK"],
    "bmp": ["1", "L", "P", "RGB"],
    "webp": ["RGB", "RGBA"],
}
CASES = [(fmt, mode) for fmt, modes in FORMAT_MODES.items() for mode in modes]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def random_image(mode: str, width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    if mode == "P":
        return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).quantize(16)
    bands = len(Image.new(mode, (1, 1)).getbands())
    pixels = rng.integers(0, 256, (height, width, bands), dtype=np.uint8)
    rgb_or_gray = Image.fromarray(pixels[..., :3] if bands >= 3 else pixels[..., 0])
    return rgb_or_gray.convert(mode) if bands != 2 else Image.fromarray(pixels, "LA")


@SETTINGS
@given(
    case=st.sampled_from(CASES),
    width=st.integers(1, 70),
    height=st.integers(1, 70),
    channels=st.sampled_from([1, 3]),
    size=st.sampled_from([32, 64]),
    seed=st.integers(0, 2**16),
)
def test_every_mode_and_shape_loads_as_uint8_of_the_model_size(case, width, height, channels, size, seed):
    fmt, mode = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"image.{fmt}"
        random_image(mode, width, height, seed).save(path)
        with Image.open(path) as saved:
            assert saved.mode in (mode, "I", "RGB", "RGBA", "L")  # I;16 may read back as I
        array = load_image(path, size, channels)
    assert array.shape == (channels, size, size) and array.dtype == np.uint8


@SETTINGS
@given(data=st.binary(max_size=4096), ext=st.sampled_from(["png", "jpg", "jpeg", "bmp", "webp"]))
def test_arbitrary_bytes_with_an_image_extension_never_fail_the_dataset(data, ext):
    with tempfile.TemporaryDirectory() as folder:
        good = write_images(Path(folder), 2, size=(9, 7))
        junk = Path(folder) / f"junk.{ext}"
        junk.write_bytes(data)
        images, skipped = decode_images([*good, junk], 32, 3)
    assert images.shape[1:] == (3, 32, 32) and images.shape[0] + len(skipped) == 3
    assert images.shape[0] >= 2  # the good files always survive


@SETTINGS
@given(fmt=st.sampled_from(["png", "jpg", "webp", "bmp"]), cut=st.floats(0.0, 0.999))
def test_truncated_files_are_decoded_or_skipped(fmt, cut):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"whole.{fmt}"
        random_image("RGB", 24, 20, 0).save(path)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * cut)])
        images, skipped = decode_images([path], 32, 1)
    assert (images.shape[0], len(skipped)) in ((1, 0), (0, 1))
    if skipped:
        assert skipped[0][1].startswith("unreadable")


def png_header_only(width: int, height: int) -> bytes:
    """A real PNG signature and IHDR chunk claiming width x height, with no pixel data: a bomb's header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path, caplog):
    folder = tmp_path / "images"
    write_images(folder, 9, size=(12, 12))
    (folder / "bomb.png").write_bytes(png_header_only(30_000, 30_000))  # 900 megapixels in 57 bytes
    (folder / "big.png").write_bytes(png_header_only(10_000, 7_000))  # 70 MP: over ours, under PIL's
    datamodule = ImageFolderDataModule(path=str(folder), image_size=32, batch_size=4)
    with caplog.at_level(logging.WARNING):
        datamodule.setup()
    assert len(datamodule.train_set) == 9
    assert "skipped 2 of 11 files (0 unreadable" in caplog.text and "2 over the pixel limit" in caplog.text
    assert "big.png: too large (10000x7000 is over 64,000,000 pixels)" in caplog.text


def test_the_pixel_limit_is_a_setting(tmp_path, monkeypatch):
    paths = write_images(tmp_path, 2, size=(40, 48))
    monkeypatch.setattr("dcgan_lit.data.images.MAX_IMAGE_PIXELS", 40 * 48 - 1)
    images, skipped = decode_images(paths, 32, 3)
    assert images.shape[0] == 0 and all(reason.startswith("too large") for _, reason in skipped)


@pytest.mark.parametrize("mode", ["CMYK", "LA", "P", "I;16"])
def test_special_modes_keep_their_content(tmp_path, mode):
    base = Image.new("RGB", (16, 16), (200, 40, 40)) if mode != "I;16" else None
    if mode == "I;16":
        image = Image.fromarray(np.full((16, 16), 65535, dtype=np.uint16))
    elif mode == "LA":
        image = Image.new("LA", (16, 16), (90, 255))
    else:
        image = base.convert(mode)
    path = tmp_path / f"x.{'jpg' if mode == 'CMYK' else 'png'}"
    image.save(path)
    array = load_image(path, 32, 3).astype(int)
    expected = {"CMYK": (200, 40, 40), "LA": (90, 90, 90), "P": (200, 40, 40), "I;16": (255, 255, 255)}[mode]
    assert np.abs(array.mean(axis=(1, 2)) - expected).max() < 6


def test_find_images_is_recursive_and_filters_extensions(image_folder):
    (image_folder / "notes.txt").write_text("not an image")
    files = find_images(image_folder)
    assert len(files) == 32
    assert files == sorted(files)


def test_rgba_is_composited_on_white(tmp_path):
    path = tmp_path / "transparent.png"
    pixels = np.zeros((10, 10, 4), dtype=np.uint8)  # fully transparent black
    pixels[:5, :, :] = (255, 0, 0, 255)  # opaque red top half
    Image.fromarray(pixels, "RGBA").save(path)
    array = load_image(path, 32, 3)
    assert array.shape == (3, 32, 32) and array.dtype == np.uint8
    assert tuple(array[:, 2, 16]) == (255, 0, 0)
    assert tuple(array[:, 29, 16]) == (255, 255, 255)


def test_grayscale_is_expanded_and_rgb_reduced(tmp_path):
    gray = tmp_path / "gray.png"
    Image.fromarray(np.full((8, 8), 77, dtype=np.uint8), "L").save(gray)
    rgb = load_image(gray, 32, 3)
    assert rgb.shape == (3, 32, 32) and (rgb == 77).all()
    color = tmp_path / "color.png"
    Image.fromarray(np.full((8, 8, 3), (255, 0, 0), dtype=np.uint8), "RGB").save(color)
    assert load_image(color, 32, 1).shape == (1, 32, 32)


def test_resize_then_center_crop(tmp_path):
    path = tmp_path / "wide.png"
    pixels = np.zeros((20, 60, 3), dtype=np.uint8)
    pixels[:, 20:40] = 255  # a white centre third of a wide image
    Image.fromarray(pixels).save(path)
    array = load_image(path, 32, 3)
    assert array.shape == (3, 32, 32)
    assert array[:, :, 4:28].min() > 200  # the centred square is the white part
