"""Reference statistics of the real data, cached on disk under a key of everything that determines them."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from dcgan_lit.checkpoint.io import read_cached, write_cached
from dcgan_lit.data.cache import make_key
from dcgan_lit.metrics.frechet import FeatureStats

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
    cached = None if cache_dir is None else read_cached(stats_path(cache_dir, key), "reference statistics")
    return None if cached is None else FeatureStats.from_dict(cached)


def save_stats(
    cache_dir: str | Path | None, key: str, stats: FeatureStats, parts: dict | None = None
) -> None:
    """Writes the statistics atomically; a failed write only costs a recomputation next time."""
    if cache_dir is not None:
        write_cached(
            {**stats.to_dict(), "key": key, **(parts or {})},
            stats_path(cache_dir, key),
            "reference statistics",
        )


def partial_path(cache_dir: str | Path, key: str) -> Path:
    """Where an unfinished computation of ``key``'s statistics keeps its running sums."""
    return stats_path(cache_dir, key).with_name(f"{key}.partial.pt")


def load_partial(cache_dir: str | Path, key: str) -> dict | None:
    """The running sums of an interrupted computation of ``key``'s statistics, or None."""
    state = read_cached(partial_path(cache_dir, key), "partial reference statistics")
    return state if state is not None and state.get("key") == key else None


def save_partial(cache_dir: str | Path, key: str, state: dict) -> None:
    """Writes the running sums atomically (a crash leaves the previous ones)."""
    write_cached({**state, "key": key}, partial_path(cache_dir, key), "partial reference statistics")


def drop_partial(cache_dir: str | Path, key: str) -> None:
    partial_path(cache_dir, key).unlink(missing_ok=True)


def real_subset(count: int, num_real: int | None, seed: int = 0) -> torch.Tensor:
    """Indices of the reference images: all of them, or a fixed random ``num_real`` of them."""
    if num_real is None or num_real >= count:
        return torch.arange(count)
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:num_real].sort().values
