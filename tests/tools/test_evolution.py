"""evolution: the fixed-z grids as a GIF and the loss curves, from CSV, TensorBoard or W&B logs."""

import pytest
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from dcgan_lit.errors import UserError
from dcgan_lit.tools.evolution import read_metrics
from tests.helpers.config import compose_tool
from tests.helpers.wandb_records import finished_run_files

pytestmark = pytest.mark.usefixtures("single_thread")


def test_evolution_writes_a_gif_of_the_sample_grids_and_the_loss_curves(tiny_run, tmp_path):
    cfg = compose_tool(
        "evolution", [f"run_dir={tiny_run}", f"out_dir={tmp_path}", "last_frame_ms=900"], tmp_path
    )
    from dcgan_lit.tools.evolution import run

    written = run(cfg)
    steps = len(list((tiny_run / "samples").glob("step_*.png")))
    assert steps == 4
    gif = Image.open(written["gif"])
    assert gif.n_frames == steps + 1  # every step grid, then the final grid
    gif.seek(steps)
    assert gif.info["duration"] == 900
    assert gif.size == (2 + 8 * 34, 16 + 2 + 2 * 34)  # a captioned grid of 16 images, 8 per row
    assert Image.open(written["curves"]).size == (1000, 360)  # loss and D-output panels, no FID
    cfg.gif_colors = 8
    small = Image.open(run(cfg)["gif"])
    for frame in range(small.n_frames):
        small.seek(frame)
        assert len(small.convert("RGB").getcolors(maxcolors=4096)) <= 8
    series = read_metrics(tiny_run)
    assert [step for step, _ in series["train/loss_d"]] == [0, 1, 2, 3]  # CSV "step": the iteration


def test_evolution_reads_tensorboard_logs_and_says_when_there_is_none(tmp_path):
    with SummaryWriter(tmp_path / "tensorboard" / "version_0") as writer:
        for step in range(3):
            writer.add_scalar("train/loss_g", 1.0 + step, step)
    series = read_metrics(tmp_path)
    assert [value for _, value in series["train/loss_g"]] == [1.0, 2.0, 3.0]
    with pytest.raises(UserError, match="no csv/metrics.csv, tensorboard/ or wandb/"):
        read_metrics(tmp_path / "tensorboard")


def test_evolution_plots_the_curves_of_a_default_w_and_b_run(tiny_cfg, tmp_path, monkeypatch):
    for variable in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_ARTIFACT_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    import wandb

    from dcgan_lit.run.fit import train

    wandb.finish()  # a run left open elsewhere would swallow this one
    run = tmp_path / "run"
    train(tiny_cfg("logger=wandb", "logger.wandb.log_model=false", "trainer.max_steps=3", output_dir=run))
    wandb.finish()
    finished_run_files(run)  # W&B's service may still be writing the history
    assert not (run / "csv").exists() and not (run / "tensorboard").exists()
    series = read_metrics(run)
    assert [step for step, _ in series["train/loss_d"]] == [0, 1, 2]  # trainer/global_step: the iteration
    assert all(0 <= value <= 1 for _, value in series["train/d_real"])
    cfg = compose_tool("evolution", [f"run_dir={run}", f"out_dir={tmp_path / 'evo'}"], tmp_path)
    from dcgan_lit.tools.evolution import run as evolution

    written = evolution(cfg)
    assert Image.open(written["curves"]).size == (1000, 360)  # loss and D-output panels
    assert Image.open(written["gif"]).n_frames == 2  # step 2's grid (every_n_steps=2) and the final one
