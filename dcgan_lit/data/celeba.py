"""torchvision CelebA (aligned and cropped faces): each face centre-cropped, then resized once."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from dcgan_lit.data.cache import fingerprint_files
from dcgan_lit.data.datamodule import ImageDataModule
from dcgan_lit.data.images import decode_images
from dcgan_lit.errors import UserError

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test", "all")
HOW_TO_GET = (
    "download img_align_celeba.zip and the five list_*/identity_* text files from "
    "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive 'Align&Cropped Images' and 'Anno', "
    "'Eval'), unzip the images there, or point paths.data_dir= at a folder that has celeba/"
)


class CelebADataModule(ImageDataModule):
    """The 202,599 aligned CelebA faces (``split=all``) or one of train/valid/test, via torchvision's CelebA.

    Each 178x218 face is centre-cropped to ``crop_size`` (108: the crop common to DCGAN replications, face
    and hair without the background), then resized to the model size.
    """

    name = "celeba"

    def __init__(self, root: str, split: str = "all", crop_size: int | None = 108, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()
        if split not in SPLITS:
            raise UserError(f"dataset.split={split!r} is not allowed; use one of {list(SPLITS)}")
        self.split = split
        self.crop_size = crop_size

    @property
    def folder(self) -> Path:
        return self.root / "celeba"

    def check_source(self) -> None:
        from torchvision.datasets import CelebA

        images = self.folder / "img_align_celeba"
        missing = [name for _, _, name in CelebA.file_list if name.endswith(".txt")]
        missing = [name for name in missing if not (self.folder / name).is_file()]
        if not images.is_dir() or missing:
            what = ", ".join(([] if images.is_dir() else ["img_align_celeba/"]) + missing)
            raise UserError(f"Dataset {self.name}: {what} missing in {self.folder.resolve()}; {HOW_TO_GET}")

    def filenames(self) -> list[str]:
        """The split's image files, as torchvision's CelebA lists them (after its md5 checks)."""
        from torchvision.datasets import CelebA

        try:
            dataset = CelebA(str(self.root), split=self.split, target_type=[], download=False)
        except RuntimeError as error:
            raise UserError(
                f"Dataset {self.name}: the files in {self.folder.resolve()} are incomplete or corrupted "
                f"(torchvision: {error}); {HOW_TO_GET}"
            ) from None
        return list(dataset.filename)

    def source(self) -> str:
        return str(self.folder.resolve())

    def cache_parts(self) -> dict:
        partition = self.folder / "list_eval_partition.txt"
        return {
            "split": self.split,
            "crop_size": self.crop_size,
            "partition": fingerprint_files([partition], self.folder),
            "resize": "center-crop-then-bicubic",
        }

    def build(self) -> torch.Tensor:
        folder = self.folder / "img_align_celeba"
        paths = [folder / name for name in self.filenames()]
        log.info("Decoding %d CelebA faces from %s (once; later runs use the cache)", len(paths), folder)
        images, skipped = decode_images(paths, self.image_size, self.channels, crop_size=self.crop_size)
        if skipped:
            log.warning(
                "Dataset %s: skipped %d of %d files that could not be read",
                self.name,
                len(skipped),
                len(paths),
            )
        return images
