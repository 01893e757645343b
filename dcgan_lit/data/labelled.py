"""Labelled image sets for the representation-learning probe: MNIST, CIFAR-10, or class subfolders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dcgan_lit.data.images import decode_images, find_images, resize_tensor, to_channels
from dcgan_lit.errors import UserError

Split = tuple[torch.Tensor, torch.Tensor]  # uint8 images (N, C, H, W), int64 labels (N,)


def fit(images: torch.Tensor, image_size: int, channels: int) -> torch.Tensor:
    """uint8 (N, C, h, w) -> uint8 (N, channels, image_size, image_size): resized, gray <-> RGB."""
    if channels == 1:
        images = to_channels(images, 1)  # luma before resizing: a third of the work
    return to_channels(resize_tensor(images, image_size), channels).contiguous()


def torchvision_splits(name: str, root: str) -> tuple[Split, Split]:
    """(train, test) of torchvision's MNIST or CIFAR-10 from ``root`` at their own size (never downloads).

    Resizing is left to :func:`fit` on the images actually used: a probe needs a few thousand of 70,000.
    """
    from torchvision.datasets import CIFAR10, MNIST

    dataset_class = {"mnist": MNIST, "cifar10": CIFAR10}[name]
    try:
        splits = [dataset_class(str(root), train=train, download=False) for train in (True, False)]
    except RuntimeError:
        where = Path(root, "MNIST/raw" if name == "mnist" else "cifar-10-batches-py").expanduser().resolve()
        raise UserError(
            f"probe dataset {name}: not found in {where}; set root= to the folder that has it"
        ) from None
    result = []
    for split in splits:
        data = torch.as_tensor(np.asarray(split.data))
        images = data[:, None] if data.dim() == 3 else data.permute(0, 3, 1, 2)
        result.append((images, torch.as_tensor(split.targets, dtype=torch.long)))
    return result[0], result[1]


def class_folders(root: Path, image_size: int, channels: int) -> tuple[Split, list[str]]:
    """Images and labels from ``root/<class>/**``; classes in sorted order."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    images, labels = [], []
    for label, name in enumerate(classes):
        decoded, _ = decode_images(find_images(root / name), image_size, channels)
        images.append(decoded)
        labels.append(torch.full((len(decoded),), label, dtype=torch.long))
    if len(classes) < 2 or any(len(x) == 0 for x in images):
        raise UserError(
            f"probe imagefolder {root}: needs >= 2 class subfolders, each with images; found {classes}"
        )
    return (torch.cat(images), torch.cat(labels)), classes


def imagefolder_splits(
    path: str, image_size: int, channels: int, test_fraction: float, seed: int
) -> tuple[Split, Split]:
    """(train, test) from ``path/train/<class>`` and ``path/test/<class>``, or a seeded split of ``path/<class>``."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserError(
            f"probe imagefolder: no folder at {root}; set path=<folder with one subfolder per class>"
        )
    if (root / "train").is_dir() and (root / "test").is_dir():
        (train, train_classes), (test, test_classes) = (
            class_folders(root / s, image_size, channels) for s in ("train", "test")
        )
        if train_classes != test_classes:
            raise UserError(f"probe imagefolder {root}: train/ and test/ have different classes")
        return train, test
    (images, labels), _ = class_folders(root, image_size, channels)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    cut = int(len(order) * (1 - test_fraction))
    return (images[order[:cut]], labels[order[:cut]]), (images[order[cut:]], labels[order[cut:]])
