"""What a person watching a run sees: progress lines in a log file, a quiet first screen, one W&B run across a
resume (read back from the offline run files)."""

import pytest

from dcgan_lit.callbacks.progress_bar import LogProgress, progress_bar
from tests.helpers.config import TINY
from tests.helpers.runs import run_cli
from tests.helpers.wandb_records import read_history, read_run_ids

NOISE = (
    "Trainer already configured with model summary",
    "💡 Tip",
    "anonymous setting has no effect",
    "LeafSpec",
    "FLOPs",
    "`Trainer.fit` stopped",
    "Traceback",
)


def test_the_bar_on_a_terminal_and_log_lines_elsewhere():
    assert type(progress_bar(terminal=True)).__name__ == "RichProgressBar"
    bar = progress_bar(5, terminal=False)
    assert isinstance(bar, LogProgress) and bar.interval_seconds == 5
    with pytest.raises(ValueError, match="interval_seconds=0 must be > 0"):
        LogProgress(0)


@pytest.mark.slow
def test_a_logged_run_shows_progress_a_quiet_start_and_one_wandb_run_across_a_resume(image_folder, tmp_path):
    run = tmp_path / "run"
    tiny = [o for o in TINY if not o.startswith(("logger=", "callbacks.progress"))]
    common = [
        *tiny,
        "dataset=imagefolder",
        f"dataset.path={image_folder}",
        "logger=wandb",
        "callbacks.progress.interval_seconds=0.05",
        f"hydra.run.dir={run}",
    ]
    first = run_cli(*common, "trainer.max_steps=30", cwd=tmp_path, env_extra={"WANDB_MODE": "offline"})
    assert first.returncode == 0, first.stderr[-3000:]
    log = first.stdout + first.stderr  # captured, not a terminal: as under nohup or SLURM
    lines = [line for line in log.splitlines() if "dcgan_lit.callbacks.progress_bar" in line]
    assert len(lines) >= 3, log[-3000:]
    assert all(k in lines[-1] for k in ("/30 (", "epoch ", " it/s", " img/s", "ETA ", "loss_d ", "loss_g "))
    assert not [n for n in NOISE if n in log], [n for n in NOISE if n in log]
    assert "Generator: " in log and "Finished after 30 iterations" in log

    second = run_cli(
        *common, "trainer.max_steps=45", "ckpt_path=last", cwd=tmp_path, env_extra={"WANDB_MODE": "offline"}
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert "W&B: continuing run" in second.stdout + second.stderr
    ids = read_run_ids(run / "wandb")
    assert len(ids) == 2 and len(set(ids)) == 1  # two processes, one W&B run
    steps = [row["trainer/global_step"] for row in read_history(run / "wandb") if "train/loss_d" in row]
    assert len(steps) == len(set(steps)) == 45  # every iteration once, none logged twice
    assert steps == sorted(steps)  # the resumed part continues where the first stopped


def test_the_rate_counts_from_the_first_iteration_not_from_set_up(caplog, monkeypatch):
    """Minutes of set-up before the first iteration (an FID reference) do not enter the rate or the ETA."""
    import logging
    from types import SimpleNamespace

    from dcgan_lit import progress

    clock = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: clock[0])
    bar = LogProgress(interval_seconds=10)
    trainer = SimpleNamespace(
        global_rank=0, max_steps=100, max_epochs=None, num_training_batches=float("inf"), current_epoch=0,
        callback_metrics={}, world_size=1, datamodule=None, global_step=0,
    )  # fmt: skip
    module = SimpleNamespace(iteration=0, optimizer_steps_per_iteration=1)
    bar.on_train_start(trainer, module)
    clock[0] = 600.0  # ten minutes of set-up
    with caplog.at_level(logging.INFO):
        for i in range(20):  # then one iteration a second
            bar.on_train_batch_start(trainer, module, None, i)
            clock[0] += 1.0
            module.iteration = i + 1
            bar.on_train_batch_end(trainer, module, None, None, i)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("iteration")]
    assert lines == [
        "iteration 10/100 (10%), epoch 0, 1.00 it/s, ETA 0:01:30",
        "iteration 20/100 (20%), epoch 0, 1.00 it/s, ETA 0:01:20",
    ]
