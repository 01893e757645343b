"""The benchmark's machinery on a tiny synthetic problem (functional, not a timed test)."""

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from benchmarks.speed import matmul_peak_flops, run, time_bare
from tests.helpers.config import CONF_DIR


@pytest.fixture
def bench_cfg(tmp_path):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name="benchmarks/speed",
            overrides=["sizes=[32]", "data=synthetic", "batch_size=4", "warmup=1", "iterations=2"],
        )
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path)
        yield cfg
    GlobalHydra.instance().clear()


def test_bench_reports_consistent_rows(bench_cfg):
    rows = run(bench_cfg)
    assert len(rows) == 1
    row = rows[0]
    assert row["size"] == 32 and row["batch"] == 4
    for key in ("ours_img_s", "reference_img_s", "bare_step_img_s", "ours_step_img_s", "peak_gflops"):
        assert row[key] > 0, key
    assert row["ratio"] == pytest.approx(row["ours_img_s"] / row["reference_img_s"])
    assert 0 < row["fraction_of_peak"] < 1.5


def test_flop_count_of_one_iteration(bench_cfg):
    import torch

    durations, flops_per_image = time_bare(bench_cfg, 32, torch.device("cpu"))
    assert len(durations) == 2
    # dcgan32 at 3 channels: D forward ~0.04 GFLOP, G forward ~0.1 GFLOP per image; one iteration is
    # 3 D forwards + 1 G forward and their backwards (about twice the forward), so a few tenths of a GFLOP.
    assert 0.2e9 < flops_per_image < 0.6e9
    assert matmul_peak_flops(torch.device("cpu"), n=256, repeats=2) > 1e8
