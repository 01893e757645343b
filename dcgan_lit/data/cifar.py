"""torchvision CIFAR-10, optionally only some classes (e.g. horse + bird), resized once to the model's size."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dcgan_lit.data.datamodule import TorchvisionDataModule, fetch_or_fail, select_classes
from dcgan_lit.data.images import resize_tensor, to_channels
from dcgan_lit.errors import UserError

log = logging.getLogger(__name__)

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


class CIFAR10DataModule(TorchvisionDataModule):
    """The 50,000 CIFAR-10 training images (60,000 with ``split=all``); ``classes`` keeps only those classes."""

    name = "cifar10"

    def __init__(
        self,
        root: str,
        download: bool = True,
        split: str = "train",
        classes: Sequence[str | int] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(root, download, split, **kwargs)
        self.classes = (
            select_classes(classes, CIFAR10_CLASSES, self.name) if classes else list(CIFAR10_CLASSES)
        )

    @property
    def folder(self) -> Path:
        return self.root / "cifar-10-batches-py"

    def check_source(self) -> None:
        from torchvision.datasets import CIFAR10

        names = [name for name, _ in CIFAR10.train_list + CIFAR10.test_list] + [CIFAR10.meta["filename"]]
        if all((self.folder / name).is_file() for name in names):
            return
        where = self.folder.resolve()
        fix = (
            f"download and unpack {URL} into {self.root.resolve()} (it holds cifar-10-batches-py/), "
            "or point paths.data_dir= at a folder that has it"
        )
        fetch_or_fail(self.name, where, fix, self.download, lambda: CIFAR10(str(self.root), download=True))

    def source(self) -> str:
        return str(self.folder.resolve())

    def cache_parts(self) -> dict:
        return {"split": self.split, "classes": self.classes, "resize": "bicubic-antialias"}

    def class_names(self) -> list[str]:
        """The classes read, in the order ``classes`` gives them (label i is ``classes[i]``)."""
        return list(self.classes)

    def build(self) -> torch.Tensor:
        return self.build_labelled()[0]

    def build_labelled(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The selected classes' images in file order, labelled by their index in :meth:`class_names`."""
        from torchvision.datasets import CIFAR10

        try:
            sets = [CIFAR10(str(self.root), train=train, download=False) for train in self.train_flags]
        except RuntimeError as error:  # torchvision's md5 check: a truncated or altered batch file
            raise UserError(
                f"Dataset {self.name}: the files in {self.folder.resolve()} are incomplete or corrupted ({error}); "
                f"delete that folder and run again with dataset.download=true, or unpack {URL} there"
            ) from None
        wanted = [sets[0].class_to_idx[name] for name in self.classes]
        targets = np.concatenate([np.asarray(s.targets) for s in sets])
        keep = np.isin(targets, wanted)
        pixels = np.concatenate([s.data for s in sets])[keep]  # (N, 32, 32, 3)
        to_label = np.zeros(len(CIFAR10_CLASSES), dtype=np.int64)
        to_label[wanted] = np.arange(len(wanted))
        log.info("CIFAR-10 classes %s: %d images", ", ".join(self.classes), len(pixels))
        images = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
        images = to_channels(resize_tensor(images, self.image_size, mode="bicubic"), self.channels)
        return images, torch.from_numpy(to_label[targets[keep]])
