"""Datasets that are folders of image files: any folder (``imagefolder``), cat faces, Pokémon, Monet."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import torch

from dcgan_lit.data.cache import fingerprint_files
from dcgan_lit.data.datamodule import ImageDataModule, require_dir, select_classes
from dcgan_lit.data.images import IMAGE_EXTENSIONS, decode_images, find_images
from dcgan_lit.errors import UserError

log = logging.getLogger(__name__)


class ImageFolderDataModule(ImageDataModule):
    """Every image under ``path`` (recursive: jpg, jpeg, png, webp, bmp), resized and centre-cropped.

    With ``classes`` (names or indices of the sorted subfolders of ``path``), only those subfolders are read.
    ``conditional``: each subfolder is a class (its name the class name; ``classes`` picks some, in that order).
    """

    name = "imagefolder"
    missing_hint = "Set dataset.path=<folder of images>"

    def __init__(self, path: str, classes: Sequence[str | int] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.path = Path(path).expanduser()
        self.classes = list(classes) if classes else None

    def check_source(self) -> None:
        root = require_dir(self.path, f"Dataset {self.name}", self.missing_hint)
        if not self.files:
            raise UserError(
                f"Dataset {self.name}: no image files ({', '.join(IMAGE_EXTENSIONS)}) under {root.resolve()}. "
                f"{self.missing_hint}"
            )

    @cached_property
    def class_dirs(self) -> list[Path]:
        """The subfolders ``classes`` selects (every one when conditional); ``[path]`` otherwise."""
        if self.classes is None and not self.conditional:
            return [self.path]
        return [self.path / name for name in self.class_names()]

    def class_names(self) -> list[str]:
        """The class subfolders: those ``classes`` names, in that order, else all of them, sorted."""
        available = sorted(p.name for p in self.path.iterdir() if p.is_dir())
        if not available:
            raise UserError(
                f"Dataset {self.name}: {self.path.resolve()} has no subfolders, so it has no classes; "
                "model.conditional=true and dataset.classes need one subfolder of images per class"
            )
        return select_classes(self.classes, available, self.name) if self.classes else available

    @cached_property
    def files(self) -> list[Path]:
        return sorted(file for folder in self.class_dirs for file in find_images(folder))

    def source(self) -> str:
        return str(self.path.resolve())

    def cache_parts(self) -> dict:
        parts = {
            "path": str(self.path.resolve()),
            "count": len(self.files),
            "files": fingerprint_files(self.files, self.path),
            "resize": "shorter-side-bicubic-center-crop",
        }
        if self.classes:
            parts["classes"] = [p.name for p in self.class_dirs]
        return parts

    def build(self) -> torch.Tensor:
        log.info("Decoding %d images from %s (once; later runs use the cache)", len(self.files), self.path)
        return self.decode(self.files)

    def build_labelled(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every class folder's images, class by class, labelled with the folder's index in :meth:`class_names`."""
        log.info("Decoding %d images from %s (once; later runs use the cache)", len(self.files), self.path)
        images, labels = [], []
        for label, folder in enumerate(self.class_dirs):
            decoded = self.decode(find_images(folder))
            if decoded.size(0) == 0:
                raise UserError(
                    f"Dataset {self.name}: the class folder {folder.resolve()} holds no readable images; "
                    "fill it or leave it out with dataset.classes=[...]"
                )
            images.append(decoded)
            labels.append(torch.full((decoded.size(0),), label, dtype=torch.long))
        return torch.cat(images), torch.cat(labels)

    def decode(self, files: list[Path]) -> torch.Tensor:
        """``files`` decoded at the data module's size, the unreadable ones skipped with one warning."""
        images, skipped = decode_images(files, self.image_size, self.channels)
        if skipped:
            too_large = sum(reason.startswith("too large") for _, reason in skipped)
            log.warning(
                "Dataset %s: skipped %d of %d files (%d unreadable: corrupt, truncated, empty or not images; "
                "%d over the pixel limit), e.g. %s: %s",
                self.name,
                len(skipped),
                len(files),
                len(skipped) - too_large,
                too_large,
                *skipped[0],
            )
        return images


class CatFacesDataModule(ImageFolderDataModule):
    """The Kaggle "Cats faces 64x64 (for generative models)" set: ~15.7k JPEGs found recursively."""

    name = "catfaces"
    missing_hint = (
        "Download https://www.kaggle.com/datasets/spandan2/cats-faces-64x64-for-generative-models "
        "(`kaggle datasets download spandan2/cats-faces-64x64-for-generative-models`), unzip it there "
        "(any layout: images are found recursively), or set paths.data_dir= / dataset.path="
    )


class PokemonDataModule(ImageFolderDataModule):
    """The Kaggle "Pokemon Image Dataset": ~819 PNGs, 256x256 RGBA on transparent backgrounds -> on white."""

    name = "pokemon"
    missing_hint = (
        "Download https://www.kaggle.com/datasets/kvpratama/pokemon-images-dataset "
        "(`kaggle datasets download kvpratama/pokemon-images-dataset`), unzip it there "
        "(any layout: PNG/JPG found recursively; transparency is composited onto white), "
        "or set paths.data_dir= / dataset.path="
    )


class MonetDataModule(ImageFolderDataModule):
    """Monet's paintings from Kaggle "I'm Something of a Painter Myself": the ~300 JPEGs of ``monet_jpg``."""

    name = "monet"
    missing_hint = (
        "Download the monet_jpg folder of https://www.kaggle.com/competitions/gan-getting-started/data "
        "(`kaggle competitions download -c gan-getting-started`, then unzip and move monet_jpg/ there), "
        "or set paths.data_dir= / dataset.path="
    )
