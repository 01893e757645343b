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
