"""benchmarks/memory.py: cache build and reuse, and a train.py run's peak RSS."""

import pytest

from tests.helpers.config import TINY


def test_cache_times_build_then_reuse(tiny_cfg):
    from benchmarks.memory import cache_times

    times = cache_times(tiny_cfg().dataset)
    assert times["images"] == 32  # the image_folder fixture
    assert times["cache_build_s"] > 0 and times["cache_reuse_s"] > 0


@pytest.mark.slow
def test_training_peak_rss_of_a_real_run(image_folder, tmp_path):
    from benchmarks.memory import training_peak_rss

    overrides = ["dataset=imagefolder", f"dataset.path={image_folder}", *TINY, "logger=none"]
    result = training_peak_rss([*overrides, "trainer.max_steps=1", f"hydra.run.dir={tmp_path / 'run'}"])
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()  # it really trained
    assert 100 < result["peak_rss_mib"] < 4096  # torch alone is well over 100 MiB
    with pytest.raises(RuntimeError, match="failed"):
        training_peak_rss([*overrides, "model=dcgan33"])
