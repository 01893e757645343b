"""Random images written as real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_images(folder: Path, count: int, size=(40, 48), mode="RGB", seed=0, ext="png") -> list[Path]:
    """Writes ``count`` random images of a PIL ``mode`` as real files; returns their paths."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    bands = {"RGB": 3, "RGBA": 4, "L": 1, "LA": 2, "CMYK": 4}[mode]
    paths = []
    for i in range(count):
        shape = (size[1], size[0]) if bands == 1 else (size[1], size[0], bands)
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
        path = folder / f"img_{i:04d}.{ext}"
        Image.fromarray(pixels, mode if mode != "CMYK" else None).convert(mode).save(path)
        paths.append(path)
    return paths


def write_class_folders(root: Path, counts: dict[str, int], size: int = 32) -> Path:
    """One subfolder per class under ``root``, each image a flat colour: class i's pixels are all 40 * (i + 1)
    (classes in ``counts``' order), so a label can be checked against its image."""
    for index, (name, count) in enumerate(counts.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.new("RGB", (size, size), (40 * (index + 1),) * 3).save(folder / f"{name}_{i:03d}.png")
    return root
