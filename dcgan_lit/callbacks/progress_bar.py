"""Progress a person can watch anywhere: Rich's bar on a terminal; in a log file (nohup, SLURM, CI), one plain
line every ``interval_seconds`` with iteration, epoch, speed, ETA and the latest losses."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar

from dcgan_lit.progress import INTERVAL_SECONDS, Pace, on_terminal

log = logging.getLogger(__name__)

LOSSES = ("train/loss_d", "train/loss_g")


def progress_bar(interval_seconds: float = INTERVAL_SECONDS, terminal: bool | None = None) -> ProgressBar:
    """Rich's bar when stdout is a terminal (``terminal=None``: ask stdout), else :class:`LogProgress`."""
    return (
        RichProgressBar()
        if (on_terminal() if terminal is None else terminal)
        else LogProgress(interval_seconds)
    )


class LogProgress(ProgressBar):
    """One INFO line through the run's logger (so into ``train.log``) at most every ``interval_seconds``:

    ``iteration 1200/5000 (24%), epoch 3, 4.1 it/s, 525 img/s, ETA 0:15:27, loss_d 0.912, loss_g 2.305``

    A ProgressBar subclass, so Lightning adds no bar of its own beside it.
    """

    def __init__(self, interval_seconds: float = INTERVAL_SECONDS) -> None:
        super().__init__()
        if not interval_seconds > 0:
            raise ValueError(f"callbacks.progress.interval_seconds={interval_seconds} must be > 0 (seconds)")
        self.interval_seconds = float(interval_seconds)
        self._enabled = True
        # started by the first iteration, not by set-up (a first FID reference takes minutes)
        self.pace: Pace | None = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.pace = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self.pace is None:  # the rate counts from the first iteration: what came before is not training
            self.pace = Pace(self.interval_seconds, iteration_of(pl_module, trainer))

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self._enabled and trainer.global_rank == 0 and self.pace is not None and self.pace.due():
            log.info("%s", self.line(trainer, pl_module))

    def line(self, trainer: L.Trainer, pl_module: L.LightningModule) -> str:
        iteration = iteration_of(pl_module, trainer)
        total = total_iterations(trainer, pl_module)
        rate = self.pace.rate(iteration)
        parts = [
            f"iteration {iteration}/{total} ({100 * iteration / total:.0f}%)"
            if total
            else f"iteration {iteration}"
        ]
        parts.append(f"epoch {trainer.current_epoch}")
        parts.append(f"{rate:.2f} it/s")
        batch_size = batch_size_of(trainer)
        if batch_size:
            parts.append(f"{rate * batch_size * max(trainer.world_size, 1):.0f} img/s")
        if total:
            parts.append(f"ETA {self.pace.eta(iteration, total)}")
        metrics = trainer.callback_metrics
        parts += [f"{key.split('/')[-1]} {float(metrics[key]):.3f}" for key in LOSSES if key in metrics]
        return ", ".join(parts)


def iteration_of(pl_module: L.LightningModule, trainer: L.Trainer) -> int:
    """Training iterations (batches) done: the DCGAN's own count, else Lightning's global step."""
    return int(getattr(pl_module, "iteration", trainer.global_step))


def total_iterations(trainer: L.Trainer, pl_module: L.LightningModule) -> int | None:
    """The run's length in iterations, from ``max_steps`` or ``max_epochs`` x batches per epoch; None if unbounded."""
    per_iteration = int(getattr(pl_module, "optimizer_steps_per_iteration", 1))
    candidates = []
    if trainer.max_steps is not None and trainer.max_steps > 0:
        candidates.append(trainer.max_steps // per_iteration)
    batches = trainer.num_training_batches
    if trainer.max_epochs is not None and trainer.max_epochs > 0 and batches not in (None, float("inf")):
        candidates.append(int(trainer.max_epochs * batches))
    return min(candidates) if candidates else None


def batch_size_of(trainer: L.Trainer) -> int | None:
    datamodule = getattr(trainer, "datamodule", None)
    size = getattr(datamodule, "batch_size", None)
    return int(size) if isinstance(size, int) else None
