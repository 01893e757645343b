import logging

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lit.data import CatFacesDataModule, ImageFolderDataModule, MNISTDataModule
from dcgan_lit.data.images import decode_images, find_images, load_image
from dcgan_lit.errors import UserError

from .conftest import write_images


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


def test_damaged_cache_is_rebuilt(image_folder, tmp_path):
    cache = tmp_path / "cache"
    dm = ImageFolderDataModule(path=str(image_folder), image_size=32, batch_size=8, cache_dir=str(cache))
    dm.setup()
    entry = next(cache.glob("*.pt"))
    entry.write_bytes(b"garbage")
    again = ImageFolderDataModule(path=str(image_folder), image_size=32, batch_size=8, cache_dir=str(cache))
    again.setup()
    assert len(again.train_set) == 32


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


def test_mnist_missing_offline_names_the_path(tmp_path):
    dm = MNISTDataModule(root=str(tmp_path), download=False, image_size=32, channels=1)
    with pytest.raises(UserError) as error:
        dm.check_source()
    assert str(tmp_path / "MNIST" / "raw") in str(error.value) and "\n" not in str(error.value)


def write_idx(folder, images: np.ndarray, labels: np.ndarray) -> None:
    """Writes MNIST's real idx format (uncompressed) for a few digits."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(images)
    for split in ("train", "t10k"):
        with open(folder / f"{split}-images-idx3-ubyte", "wb") as f:
            f.write(np.array([2051, n, 28, 28], dtype=">i4").tobytes() + images.astype(np.uint8).tobytes())
        with open(folder / f"{split}-labels-idx1-ubyte", "wb") as f:
            f.write(np.array([2049, n], dtype=">i4").tobytes() + labels.astype(np.uint8).tobytes())


@pytest.mark.parametrize("channels", [1, 3])
def test_mnist_from_idx_files_resized_once(tmp_path, channels):
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 256, (10, 28, 28))
    write_idx(tmp_path / "MNIST" / "raw", digits, np.arange(10))
    dm = MNISTDataModule(root=str(tmp_path), download=False, image_size=32, channels=channels, batch_size=4)
    dm.setup()
    images = dm.train_set.images
    assert images.shape == (10, channels, 32, 32) and images.dtype == torch.uint8
    assert not dm.hflip
