"""Reference statistics of the real data, cached on disk under a key of everything that determines them."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from dcgan_lit.checkpoint.io import atomic_torch_save
from dcgan_lit.data.cache import make_key
from dcgan_lit.metrics.frechet import FeatureStats

log = logging.getLogger(__name__)

STATS_VERSION = 1  # bump when the feature pipeline changes in a way that alters cached statistics


def reference_key(pixels: str, num_real: int, extractor_name: str, resize: str) -> str:
    """``fid-<extractor>-<n>-<hash>``; the hash covers the real images' pixels (their digest,
    :func:`~dcgan_lit.data.cache.fingerprint_pixels` of exactly the images scored), their number, the extractor
    and its resize protocol. Keyed by content, not by file names or times: a re-copied dataset keeps its
    statistics, and a different subset of the same files never borrows another's."""
    parts = {
        "stats_version": STATS_VERSION,
        "pixels": pixels,
        "num_real": num_real,
        "extractor": extractor_name,
        "resize": resize,
    }
    return make_key(f"fid-{short_name(extractor_name)}-{num_real}", parts)


def short_name(extractor_name: str) -> str:
    """A file-name-safe label: ``my_pkg.nets.MyNet{'width': 2}`` -> ``MyNet``."""
    label = extractor_name.split("{", 1)[0].rsplit(".", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")[:64] or "features"


def stats_path(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir).expanduser() / "fid_stats" / f"{key}.pt"


def load_stats(cache_dir: str | Path | None, key: str) -> FeatureStats | None:
    """The cached statistics for ``key``, or None (missing or unreadable: they are then recomputed)."""
    if cache_dir is None:
        return None
    path = stats_path(cache_dir, key)
    if not path.is_file():
        return None
    try:
        return FeatureStats.from_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as error:
        log.warning("Reference statistics %s are unreadable (%s); recomputing them", path, error)
        return None


def save_stats(
    cache_dir: str | Path | None, key: str, stats: FeatureStats, parts: dict | None = None
) -> None:
    """Writes the statistics atomically; a failed write only costs a recomputation next time."""
    if cache_dir is None:
        return
    path = stats_path(cache_dir, key)
    try:
        atomic_torch_save({**stats.to_dict(), "key": key, **(parts or {})}, path)
        log.info("Cached reference statistics at %s", path)
    except OSError as error:
        log.warning("Could not write reference statistics %s (%s); continuing without the cache", path, error)


def real_subset(count: int, num_real: int | None, seed: int = 0) -> torch.Tensor:
    """Indices of the reference images: all of them, or a fixed random ``num_real`` of them."""
    if num_real is None or num_real >= count:
        return torch.arange(count)
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:num_real].sort().values
