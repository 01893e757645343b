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
