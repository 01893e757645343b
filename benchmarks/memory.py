"""The benchmark's data and memory measurements: dataset cache build and reuse times, and the peak resident
memory of a real ``train.py`` run (a child process, so the number is that run's alone)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]


def cache_times(dataset_cfg: DictConfig) -> dict[str, float]:
    """Seconds to set the dataset up with an empty cache (decode + write) and again from that cache."""
    with tempfile.TemporaryDirectory(prefix="dcgan-bench-cache-") as cache_dir:
        times = {}
        for phase in ("cache_build_s", "cache_reuse_s"):
            datamodule = instantiate(dataset_cfg, cache_dir=cache_dir)
            start = time.perf_counter()
            datamodule.setup("fit")
            times[phase] = time.perf_counter() - start
        times["images"] = len(datamodule.train_set)
    return times


def training_peak_rss(overrides: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Runs ``python train.py <overrides>`` and returns its wall time and peak RSS (MiB, from wait4)."""
    command = [sys.executable, str(ROOT / "train.py"), *overrides]
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=stderr
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"bench: {' '.join(command)} failed:\n{tail}")
    # ru_maxrss is in KiB on Linux
    return {"peak_rss_mib": usage.ru_maxrss / 1024, "wall_s": wall}
