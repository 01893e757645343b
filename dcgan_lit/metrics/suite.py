"""FID (and optionally KID, IS, MiFID) of generated images against cached reference statistics of real data."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping

import torch
import torch.distributed as dist
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from dcgan_lit.data.cache import fingerprint_pixels
from dcgan_lit.metrics.features import describe
from dcgan_lit.metrics.frechet import FeatureStats, fid_from_stats
from dcgan_lit.metrics.optional import build_inception_score, build_kid, build_mifid, enabled
from dcgan_lit.metrics.reference import (
    drop_partial,
    load_partial,
    load_stats,
    real_subset,
    reference_key,
    save_partial,
    save_stats,
    stats_path,
)
from dcgan_lit.model.networks import cycled_labels
from dcgan_lit.model.sampling import generate_batches
from dcgan_lit.pixels import to_rgb, to_uint8
from dcgan_lit.progress import Pace, watch

log = logging.getLogger(__name__)

OPTIONAL = {"kid": build_kid, "inception_score": build_inception_score, "mifid": build_mifid}
PARTIAL_EVERY_SECONDS = 300.0  # how often an unfinished reference computation saves its running sums
REAL_SUMS = ("real_features_sum", "real_features_cov_sum", "real_features_num_samples")


def world() -> tuple[int, int]:
    """(rank, world size) of the running process group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(count: int) -> tuple[int, int]:
    """This rank's share of ``count`` items: (start offset, number)."""
    rank, size = world()
    per_rank, extra = divmod(count, size)
    return rank * per_rank + min(rank, extra), per_rank + (rank < extra)


class MetricSuite(nn.Module):
    """Feature statistics of generated images compared with the reference (real) statistics.

    torchmetrics' ``FrechetInceptionDistance`` accumulates the fake features' sums in float64; its states are
    summed over DDP ranks when read, so each rank scores its share of the images; rank 0 computes the FID from
    the gathered statistics and broadcasts it. The real side comes from the on-disk cache (see
    :mod:`dcgan_lit.metrics.reference`).
    """

    def __init__(self, extractor: nn.Module, options: Mapping | None = None) -> None:
        super().__init__()
        options = options or {}
        self.extractor = extractor
        self.fid = FrechetInceptionDistance(feature=extractor, reset_real_features=False, antialias=False)
        self.optional = nn.ModuleDict(
            {
                name: build(extractor, options[name])
                for name, build in OPTIONAL.items()
                if enabled(options.get(name))
            }
        )
        self.reference: FeatureStats | None = None
        self.reference_key: str | None = None
        # (the images, how many scored, their pixel digest): the set is hashed once, not per question asked
        self._digest: tuple[torch.Tensor, int, str] | None = None

    @property
    def extractor_description(self) -> str:
        return describe(self.extractor)

    def reference_is_cached(
        self, real_images: torch.Tensor, cache_dir: str | None, num_real: int | None
    ) -> bool:
        """Whether :meth:`prepare_reference` would find its statistics on disk (nothing is loaded)."""
        key = self._reference_key(real_images, real_subset(real_images.size(0), num_real))
        return cache_dir is not None and stats_path(cache_dir, key).is_file()

    def _reference_key(self, real_images: torch.Tensor, indices: torch.Tensor) -> str:
        # the FID callback asks reference_is_cached, then prepare_reference, of the same tensor at start-up.
        # Held by identity (a reference keeps it alive, so no other tensor can take its place in memory).
        if self._digest is None or self._digest[0] is not real_images or self._digest[1] != len(indices):
            whole = len(indices) == real_images.size(0)  # all of them: hash in place, no copy of a large set
            pixels = fingerprint_pixels(real_images if whole else real_images[indices])
            self._digest = real_images, len(indices), pixels
        return reference_key(self._digest[2], len(indices), self.extractor.name, self.extractor.resize)

    def prepare_reference(
        self,
        real_images: torch.Tensor,
        dataset_key: str,
        cache_dir: str | None,
        num_real: int | None = None,
        batch_size: int = 100,
        check: Callable[[], None] | None = None,
    ) -> bool:
        """Loads the cached reference statistics or computes (and caches) them; True when they were cached.

        ``real_images``: the dataset's (N, C, H, W) uint8 tensor, exactly the decoded training pixels; the cache
        key is their digest, ``dataset_key`` a readable label stored with the statistics. ``check`` runs
        between batches and may raise to stop (see :func:`dcgan_lit.progress.watch`).
        """
        indices = real_subset(real_images.size(0), num_real)
        key = self._reference_key(real_images, indices)  # the pixels; dataset_key only labels the file
        self.reference_key = key
        cached = load_stats(cache_dir, key)
        if not self._on_every_rank(
            cached is not None
        ):  # e.g. node-local caches: all ranks recompute together
            cached = None
        needs_real_features = bool(self.optional) and any(n != "inception_score" for n in self.optional)
        if cached is not None:
            log.info("FID: using cached reference statistics (%s)", key)
            self.reference = cached
        if cached is None or needs_real_features:
            start = time.perf_counter()
            offset, count = shard(len(indices))
            # hours of work for a large set on a CPU: the running sums are saved as it goes (and when it is
            # stopped), and the same call resumes from them. One process, FID's sums only.
            resumable = (
                cached is None and not needs_real_features and world()[1] == 1 and cache_dir is not None
            )
            done = self._resume_partial(cache_dir, key, count) if resumable else 0
            chunks = batches(real_images[indices[offset + done : offset + count]], batch_size)
            saving = Pace(PARTIAL_EVERY_SECONDS)
            try:
                for batch in watch(
                    chunks,
                    "FID reference",
                    -(-(count - done) // batch_size),
                    batch_size,
                    "images",
                    terminal=False,
                    check=check,
                ):
                    self._update(batch, real=True, fid=cached is None)
                    done += batch.size(0)
                    if resumable and saving.due():
                        self._save_partial(cache_dir, key, done)
            except BaseException:
                if resumable and done:
                    self._save_partial(cache_dir, key, done)
                raise
            if cached is None:
                self.reference = self._synced_stats(real=True)
                log.info(
                    "FID: reference statistics of %d real images with %s in %.1fs (%s)",
                    self.reference.num,
                    self.extractor_description,
                    time.perf_counter() - start,
                    key,
                )
                if world()[0] == 0:
                    save_stats(cache_dir, key, self.reference, {"dataset": dataset_key})
                if resumable:
                    drop_partial(cache_dir, key)
        return cached is not None

    def _resume_partial(self, cache_dir: str, key: str, count: int) -> int:
        """Loads an interrupted computation's running sums into the FID metric; how many images they hold."""
        state = load_partial(cache_dir, key)
        if state is None or not 0 < int(state["real_features_num_samples"]) < count:
            return 0
        for name in REAL_SUMS:
            getattr(self.fid, name).copy_(state[name])
        done = int(state["real_features_num_samples"])
        log.info("FID reference: resuming after %d of %d images (their sums were saved)", done, count)
        return done

    def _save_partial(self, cache_dir: str, key: str, done: int) -> None:
        """Saves the running sums of the first ``done`` images (not when a stop landed inside an update)."""
        if int(self.fid.real_features_num_samples) == done:
            save_partial(cache_dir, key, {name: getattr(self.fid, name).cpu() for name in REAL_SUMS})

    @torch.no_grad()
    def _update(self, images: torch.Tensor, real: bool, fid: bool = True) -> None:
        images = to_rgb(to_uint8(images.to(self.fid.device)))
        if fid:
            self.fid.update(images, real=real)
        for name, metric in self.optional.items():
            if name == "inception_score":
                if not real:
                    metric.update(images)
            else:
                metric.update(images, real=real)

    def update(self, fake_images: torch.Tensor) -> None:
        """Adds generated images: floats in [-1, 1] or uint8, 1 or 3 channels."""
        self._update(fake_images, real=False)

    def _synced_stats(self, real: bool) -> FeatureStats:
        side = "real" if real else "fake"
        with self.fid.sync_context():
            return FeatureStats.from_sums(
                getattr(self.fid, f"{side}_features_sum"),
                getattr(self.fid, f"{side}_features_cov_sum"),
                int(getattr(self.fid, f"{side}_features_num_samples")),
            )

    def _on_every_rank(self, flag: bool) -> bool:
        """True when ``flag`` is true on every DDP rank (just ``flag`` without a process group)."""
        if world()[1] == 1:
            return flag
        value = torch.tensor(int(flag), device=self.fid.device)
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return bool(value.item())

    def _fid_once(self, fake: FeatureStats) -> float:
        """The Fréchet distance, computed on rank 0 only and broadcast to the other ranks."""
        rank, size = world()
        value = fid_from_stats(self.reference, fake) if rank == 0 else 0.0
        if size == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.fid.device)
        dist.broadcast(tensor, src=0)
        return float(tensor.item())

    def compute(self) -> dict[str, float]:
        """``fid`` plus ``kid_mean``/``kid_std``, ``is_mean``/``is_std``, ``mifid`` when enabled."""
        assert self.reference is not None, "prepare_reference() first"
        results = {"fid": self._fid_once(self._synced_stats(real=False))}
        for name, metric in self.optional.items():
            value = metric.compute()
            if name == "kid":
                results["kid_mean"], results["kid_std"] = float(value[0]), float(value[1])
            elif name == "inception_score":
                results["is_mean"], results["is_std"] = float(value[0]), float(value[1])
            else:
                results[name] = float(value)
        return results

    def fid_against(self, reference: FeatureStats) -> float:
        """The FID of the generated images scored so far against another reference (e.g. a training subset's
        statistics): the same fakes, their features not computed twice."""
        return fid_from_stats(reference, self._synced_stats(real=False))

    def reset(self) -> None:
        """Forgets the generated images (the reference side stays)."""
        self.fid.reset()
        for metric in self.optional.values():
            metric.reset()


def batches(images: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    for start in range(0, images.size(0), batch_size):
        yield images[start : start + batch_size]


@torch.no_grad()
def score_generator(
    suite: MetricSuite,
    generator: Callable[[torch.Tensor], torch.Tensor],
    latent_dim: int,
    num_fake: int,
    batch_size: int,
    device: torch.device | str,
    seed: int = 0,
    num_classes: int = 0,
    class_index: int | None = None,
    check: Callable[[], None] | None = None,
) -> dict[str, float]:
    """Scores ``num_fake`` images of ``generator(z)`` (split over DDP ranks) with fixed latents per ``seed``.

    A conditional generator (``num_classes``) draws every image of ``class_index``, or, when it is None, the
    classes uniformly: image i of the ``num_fake`` has class i mod num_classes.
    """
    suite.reset()
    rank = world()[0]
    offset, count = shard(num_fake)
    z = torch.randn(count, latent_dim, 1, 1, generator=torch.Generator().manual_seed(seed * 1_000_003 + rank))
    labels = None
    if num_classes and class_index is not None:
        labels = torch.full((count,), class_index)
    elif num_classes:
        labels = cycled_labels(count, num_classes, torch.device("cpu"), offset)
    chunks = generate_batches(generator, z, batch_size, device=device, labels=labels)
    # log lines, never a bar: this runs inside training too, under Lightning's own progress bar
    fakes = -(-count // batch_size)
    for images in watch(chunks, "FID fakes", fakes, batch_size, "images", terminal=False, check=check):
        suite.update(images)
    return suite.compute()
