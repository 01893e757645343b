"""FID under DDP: two real CPU processes (gloo) share the work and agree with one process scoring everything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from dcgan_lit.metrics import (
    FeatureStats,
    MetricSuite,
    TinyFeatureExtractor,
    fid_from_stats,
    score_generator,
)
from dcgan_lit.metrics import suite as suite_module
from dcgan_lit.pixels import to_rgb, to_uint8
from tests.helpers.metrics import CountingExtractor

LATENT_DIM = 3 * 16 * 16
NUM_FAKE, NUM_REAL = 21, 60


def generate(z: torch.Tensor) -> torch.Tensor:
    """A fixed "generator": latents reshaped into images in [-1, 1]."""
    return torch.tanh(z.view(-1, 3, 16, 16))


def real_images() -> torch.Tensor:
    return torch.randint(
        0, 256, (NUM_REAL, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )


def score_on_rank(rank: int, workdir: str) -> None:
    """One DDP rank, two evaluations: reference statistics (cached in ``workdir``), then FID of its fakes."""
    dist.init_process_group("gloo", init_method=f"file://{workdir}/store", rank=rank, world_size=2)
    computed = []
    original = suite_module.fid_from_stats
    suite_module.fid_from_stats = lambda real, fake: computed.append(fake.num) or original(real, fake)
    try:
        for run in (0, 1):  # the second evaluation finds the reference statistics the first one cached
            computed.clear()
            suite = MetricSuite(CountingExtractor())
            cached = suite.prepare_reference(real_images(), "ddp-data", f"{workdir}/cache", batch_size=16)
            real_seen = suite.extractor.images_seen
            fid = score_generator(suite, generate, LATENT_DIM, NUM_FAKE, batch_size=4, device="cpu", seed=3)
            record = {
                "cached": cached,
                "real_seen": real_seen,
                "fake_seen": suite.extractor.images_seen - real_seen,
                "fid": fid["fid"],
                "distances_computed": list(computed),
            }
            Path(workdir, f"run{run}-rank{rank}.json").write_text(json.dumps(record))
            dist.barrier()  # rank 0 has written the cache before anyone looks for it again
    finally:
        dist.destroy_process_group()


def single_process_fid() -> float:
    """The same 21 fakes (rank 0's 11 latents and rank 1's 10) and 60 reals scored in one process."""
    extractor = TinyFeatureExtractor(num_features=8)
    latents = [
        torch.randn(n, LATENT_DIM, 1, 1, generator=torch.Generator().manual_seed(3 * 1_000_003 + rank))
        for rank, n in ((0, 11), (1, 10))
    ]
    fakes = to_rgb(to_uint8(generate(torch.cat(latents))))
    real = FeatureStats.from_features(extractor(real_images()))
    return fid_from_stats(real, FeatureStats.from_features(extractor(fakes)))


@pytest.mark.slow
def test_two_ranks_gather_features_and_compute_fid_once(tmp_path):
    mp.spawn(score_on_rank, args=(str(tmp_path),), nprocs=2, join=True)
    records = {
        (run, rank): json.loads((tmp_path / f"run{run}-rank{rank}.json").read_text())
        for run in (0, 1)
        for rank in (0, 1)
    }
    first, second = [records[(0, r)] for r in (0, 1)], [records[(1, r)] for r in (0, 1)]
    assert [r["real_seen"] for r in first] == [30, 30]  # each rank featurized half of the 60 reals
    assert [r["fake_seen"] for r in first] == [11, 10]  # and its share of the 21 fakes
    assert [r["distances_computed"] for r in first] == [[21], []]  # once, on rank 0, from all 21 fakes
    assert first[0]["fid"] == first[1]["fid"]  # broadcast: every rank logs the same value
    assert first[0]["fid"] == pytest.approx(single_process_fid(), rel=1e-6)  # float32 features, other batches
    assert len(list((tmp_path / "cache" / "fid_stats").glob("*.pt"))) == 1
    assert [r["cached"] for r in second] == [True, True] and [r["real_seen"] for r in second] == [0, 0]
    assert second[0]["fid"] == pytest.approx(first[0]["fid"], rel=1e-12)
