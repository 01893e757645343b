"""An on-disk cache of decoded datasets: uint8 tensors keyed by everything that determines them."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import torch

from dcgan_lit.checkpoint.io import load_or_build

Cached = TypeVar("Cached", torch.Tensor, dict[str, torch.Tensor])  # images, or images and labels

CACHE_VERSION = 1  # bump when decoding changes in a way that alters cached pixels


def make_key(name: str, parts: dict) -> str:
    """A readable, stable key: ``<name>-<16 hex of sha1(parts)>``."""
    blob = json.dumps({"version": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha1(blob.encode()).hexdigest()[:16]}"


def fingerprint_files(paths: Iterable[Path], root: Path) -> str:
    """Hash of each file's relative path, size and mtime: changes when any file is added, removed or edited."""
    digest = hashlib.sha1()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def fingerprint_pixels(images: torch.Tensor) -> str:
    """Hash of a tensor's shape, dtype and bytes: the same pixels give the same digest wherever they came from
    (a re-copied or re-downloaded dataset with new file times keeps its digest; other pixels never share it)."""
    digest = hashlib.sha1(f"{tuple(images.shape)}\0{images.dtype}\n".encode())
    digest.update(images.detach().cpu().contiguous().numpy().data)
    return digest.hexdigest()


def cached_dataset(cache_dir: str | os.PathLike | None, key: str, build: Callable[[], Cached]) -> Cached:
    """The cached tensor (or dict of tensors) for ``key``, memory-mapped, or ``build()``'s, cached for next time."""
    path = None if cache_dir is None else Path(cache_dir) / f"{key}.pt"
    return load_or_build(path, build, "dataset", mmap=True)
