"""Decoding image files into uint8 arrays, once: the shared pipeline of every folder-based dataset."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# Refuse decompression bombs: far above any real training image, far below what exhausts memory.
MAX_IMAGE_PIXELS = 64_000_000


def find_images(root: str | os.PathLike) -> list[Path]:
    """All image files under ``root`` (recursive), sorted for a deterministic order."""
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def to_mode(image: Image.Image, channels: int) -> Image.Image:
    """Converts any PIL mode to 'RGB' (channels=3) or 'L' (channels=1); transparency is composited on white."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / peak * 255.0, 0, 255).round().astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "RGB" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB" if channels == 3 else "L")


def resize_center_crop(image: Image.Image, size: int) -> Image.Image:
    """Resizes the shorter side to ``size`` (antialiased bicubic), then crops the centred square."""
    return ImageOps.fit(image, (size, size), method=Image.Resampling.BICUBIC, centering=(0.5, 0.5))


class TooLarge(ValueError):
    """An image over :data:`MAX_IMAGE_PIXELS`: refused from its header, before any pixel is decoded."""


def center_crop(image: Image.Image, crop_size: int) -> Image.Image:
    """The centred ``crop_size`` square (or the largest centred square when the image is smaller)."""
    side = min(crop_size, image.width, image.height)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side))


def load_image(
    path: str | os.PathLike | BinaryIO, size: int, channels: int, crop_size: int | None = None
) -> np.ndarray:
    """One file -> uint8 array (channels, size, size), optionally centre-cropped to ``crop_size`` before resizing.

    Raises on unreadable, corrupt or oversized files."""
    with Image.open(path) as image:
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise TooLarge(f"{image.width}x{image.height} is over {MAX_IMAGE_PIXELS:,} pixels")
        image.load()
        with contextlib.suppress(Exception):  # a damaged EXIF block costs the orientation, not the image
            image = ImageOps.exif_transpose(image)
        image = to_mode(image, channels)
        if crop_size:
            image = center_crop(image, crop_size)
        image = resize_center_crop(image, size)
    array = np.array(image, dtype=np.uint8)  # a writable copy
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def decode_images(
    paths: Sequence[Path | BinaryIO], size: int, channels: int, crop_size: int | None = None
) -> tuple[torch.Tensor, list[tuple[Path | BinaryIO, str]]]:
    """Decodes files in parallel into one (N, C, size, size) uint8 tensor; returns it and the skipped files
    with the reason (corrupt, truncated, empty, not an image, too large): never fatal."""
    images = torch.empty(len(paths), channels, size, size, dtype=torch.uint8)
    reasons: list[str | None] = [None] * len(paths)

    def work(i: int) -> None:
        try:
            images[i] = torch.from_numpy(load_image(paths[i], size, channels, crop_size))
        except (TooLarge, Image.DecompressionBombError) as error:  # PIL's own check fires above 2 x 89 MP
            reasons[i] = f"too large ({error})"
        except Exception as error:  # PIL raises many types for damaged files; all mean "skip this one"
            reasons[i] = f"unreadable ({type(error).__name__}: {str(error)[:80]})"

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(work, range(len(paths))))
    skipped = [(paths[i], reason) for i, reason in enumerate(reasons) if reason is not None]
    if skipped:
        images = images[torch.tensor([reason is None for reason in reasons])]
    return images, skipped


def resize_tensor(images: torch.Tensor, size: int, mode: str = "bilinear", chunk: int = 4096) -> torch.Tensor:
    """Resizes a square uint8 (N, C, H, W) tensor to ``size`` (antialiased), in chunks to bound memory."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = torch.empty(len(images), images.size(1), size, size, dtype=torch.uint8)
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].float()
        x = F.interpolate(x, size=(size, size), mode=mode, antialias=True, align_corners=False)
        out[start : start + chunk] = x.round_().clamp_(0, 255).to(torch.uint8)
    return out


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 (N, 1|3, H, W) -> ``channels`` channels: gray replicated to RGB, RGB to PIL's 'L' luma."""
    if images.size(1) == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images.float() * weights).sum(1, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)
