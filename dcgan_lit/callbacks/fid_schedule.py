"""When FID is scored: every N epochs, N fixed or chosen after the first epoch to keep FID a small share of the
run, and always after the last epoch (so every run ends with a FID and a ``best.ckpt``)."""

from __future__ import annotations

import logging
import math
import time

import lightning as L

from dcgan_lit.metrics.cost import evaluations_every, minutes

log = logging.getLogger(__name__)


class FIDSchedule:
    """``every_n_epochs``: N, 0 (never during training) or ``"auto"``, which times the first epoch and takes the
    smallest N that keeps the evaluations within ``budget`` of the training time (rank 0's N, on every rank)."""

    def __init__(self, every_n_epochs: int | str, budget: float) -> None:
        self.every_n_epochs = every_n_epochs
        self.budget = budget
        self._epoch_clock: tuple[float, int] | None = None  # (start time, iterations) of this epoch

    def describe(self) -> str:
        if self.every_n_epochs == "auto":
            return (
                f"every N epochs, N set after the first epoch to keep FID under {self.budget:.0%} of training"
            )
        if self.every_n_epochs:
            return f"every {self.every_n_epochs} epoch(s)"
        return "never during training"

    def epoch_started(self) -> None:
        self._epoch_clock = (time.perf_counter(), 0)

    def batch_ended(self, iterations: int = 1) -> None:
        """A training step of ``iterations`` iterations (a block) ended."""
        if self._epoch_clock is not None:
            self._epoch_clock = (self._epoch_clock[0], self._epoch_clock[1] + iterations)

    def due(self, trainer: L.Trainer, eval_seconds: float) -> bool:
        """Whether this epoch's end is scored (``auto`` settles N first, from the epoch just trained)."""
        if self.every_n_epochs == "auto":
            self.choose(trainer, eval_seconds)
        if self.every_n_epochs == 0:
            return False
        return (trainer.current_epoch + 1) % self.every_n_epochs == 0 or is_last_epoch(trainer)

    def choose(self, trainer: L.Trainer, eval_seconds: float) -> None:
        """N from an evaluation's cost and this epoch's pace (rank 0's, broadcast to every rank)."""
        # counted in iterations, as the epoch's batches (trainer.num_training_batches) are
        start, iterations = self._epoch_clock or (time.perf_counter(), 0)
        seconds_per_iteration = (time.perf_counter() - start) / max(iterations, 1)
        epoch_seconds = seconds_per_iteration * max(trainer.num_training_batches, iterations, 1)
        every = evaluations_every(eval_seconds, epoch_seconds, self.budget, planned_epochs(trainer))
        self.every_n_epochs = int(trainer.strategy.broadcast(every, src=0))
        if trainer.is_global_zero:
            log.info(
                "FID every %d epoch(s) and after the last: an evaluation takes ~%s, an epoch ~%s (budget %.0f%%; "
                "set metrics.fid.every_n_epochs= to choose)",
                self.every_n_epochs,
                minutes(eval_seconds),
                minutes(epoch_seconds),
                100 * self.budget,
            )

    def state(self) -> int | None:
        """A chosen N (kept across a resume); None while it is still ``auto``."""
        return self.every_n_epochs if isinstance(self.every_n_epochs, int) else None

    def restore(self, every: int | None) -> None:
        if every is not None and self.every_n_epochs == "auto":
            self.every_n_epochs = int(every)


def planned_epochs(trainer: L.Trainer) -> int | None:
    """How many epochs the run will train (``max_epochs``, or ``max_steps`` in whole epochs); None: unbounded."""
    epochs = []
    if trainer.max_epochs is not None and trainer.max_epochs > 0:
        epochs.append(trainer.max_epochs)
    batches = trainer.num_training_batches
    if trainer.max_steps is not None and trainer.max_steps > 0 and batches and batches != float("inf"):
        steps_per_epoch = batches * getattr(trainer.lightning_module, "optimizer_steps_per_iteration", 1)
        epochs.append(math.ceil(trainer.max_steps / steps_per_epoch))
    return min(epochs) if epochs else None


def is_last_epoch(trainer: L.Trainer) -> bool:
    max_steps, max_epochs = trainer.max_steps, trainer.max_epochs
    return bool(
        trainer.should_stop
        or (max_steps is not None and max_steps > 0 and trainer.global_step >= max_steps)
        or (max_epochs is not None and max_epochs > 0 and trainer.current_epoch + 1 >= max_epochs)
    )
