"""torchvision MNIST, resized once to the model's size."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F

from dcgan_lit.data.datamodule import ImageDataModule
from dcgan_lit.errors import UserError

log = logging.getLogger(__name__)

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class MNISTDataModule(ImageDataModule):
    """The 60,000 MNIST training digits (10,000 test digits with ``split=all``), 1 channel unless channels=3."""

    name = "mnist"

    def __init__(self, root: str, download: bool = True, split: str = "train", **kwargs) -> None:
        kwargs.setdefault("hflip", False)
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()
        self.download = download
        if split not in ("train", "all"):
            raise UserError(f"dataset.split={split!r} is not allowed; use 'train' or 'all'")
        self.split = split

    def _present(self) -> bool:
        raw = self.root / "MNIST" / "raw"
        return all((raw / f).exists() or (raw / f"{f}.gz").exists() for f in RAW_FILES)

    def check_source(self) -> None:
        if self._present():
            return
        where = (self.root / "MNIST" / "raw").resolve()
        fix = (
            f"put {', '.join(RAW_FILES)} (or their .gz) in {where}, "
            "or point paths.data_dir= at a folder that has MNIST/raw/"
        )
        if not self.download:
            raise UserError(f"Dataset mnist: not found in {where} and dataset.download=false; {fix}")
        from torchvision.datasets import MNIST

        log.info("MNIST not found in %s; downloading", where)
        try:
            MNIST(str(self.root), train=True, download=True)
            MNIST(str(self.root), train=False, download=True)
        except Exception as error:
            raise UserError(
                f"Dataset mnist: not found in {where} and the download failed ({error}); {fix}"
            ) from None

    def source(self) -> str:
        return str((self.root / "MNIST").resolve())

    def cache_parts(self) -> dict:
        return {"split": self.split, "resize": "bilinear-antialias"}

    def build(self) -> torch.Tensor:
        from torchvision.datasets import MNIST

        splits = [True] if self.split == "train" else [True, False]
        digits = torch.cat([MNIST(str(self.root), train=s, download=False).data for s in splits])
        images = digits[:, None]  # (N, 1, 28, 28) uint8
        if images.shape[-1] != self.image_size:
            resized = torch.empty(len(images), 1, self.image_size, self.image_size, dtype=torch.uint8)
            for start in range(0, len(images), 4096):
                chunk = images[start : start + 4096].float()
                chunk = F.interpolate(chunk, size=self.image_size, mode="bilinear", antialias=True)
                resized[start : start + 4096] = chunk.round().clamp_(0, 255).to(torch.uint8)
            images = resized
        if self.channels == 3:
            images = images.expand(-1, 3, -1, -1).contiguous()
        return images
