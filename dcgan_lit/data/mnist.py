"""torchvision MNIST, resized once to the model's size."""

from __future__ import annotations

import logging

import torch

from dcgan_lit.data.datamodule import TorchvisionDataModule, fetch_or_fail
from dcgan_lit.data.images import resize_tensor, to_channels

log = logging.getLogger(__name__)

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class MNISTDataModule(TorchvisionDataModule):
    """The 60,000 MNIST training digits (10,000 test digits with ``split=all``), 1 channel unless channels=3."""

    name = "mnist"

    def __init__(self, root: str, download: bool = True, split: str = "train", **kwargs) -> None:
        kwargs.setdefault("hflip", False)
        super().__init__(root, download, split, **kwargs)

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
        from torchvision.datasets import MNIST

        def fetch() -> None:
            MNIST(str(self.root), train=True, download=True)
            MNIST(str(self.root), train=False, download=True)

        fetch_or_fail("mnist", where, fix, self.download, fetch)

    def source(self) -> str:
        return str((self.root / "MNIST").resolve())

    def cache_parts(self) -> dict:
        return {"split": self.split, "resize": "bilinear-antialias"}

    def class_names(self) -> list[str]:
        """The ten digits, "0" to "9"."""
        return [str(digit) for digit in range(10)]

    def build(self) -> torch.Tensor:
        return self.build_labelled()[0]

    def build_labelled(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The digits and their values (0-9) as labels."""
        from torchvision.datasets import MNIST

        sets = [MNIST(str(self.root), train=t, download=False) for t in self.train_flags]
        digits = torch.cat([s.data for s in sets])
        images = resize_tensor(digits[:, None], self.image_size, mode="bilinear")  # (N, 1, S, S) uint8
        return to_channels(images, self.channels), torch.cat([s.targets for s in sets]).long()
