"""Lightning's ModelCheckpoint, plus saves every N iterations and a refusal to save a diverged state."""

from __future__ import annotations

import logging

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


def state_is_finite(trainer: L.Trainer, pl_module: L.LightningModule) -> bool:
    """True when every parameter and every logged loss is finite on every rank (only called when saving).

    Under DDP the ranks must agree: saving waits at a barrier that a rank skipping the save never reaches.
    """
    latest = getattr(pl_module, "last_step_metrics", {})  # the last iteration's, logged or not
    losses = [v for k, v in {**trainer.callback_metrics, **latest}.items() if "loss" in k]
    flags = [torch.isfinite(p).all() for p in pl_module.parameters()]
    flags += [torch.isfinite(torch.as_tensor(v)).all().to(flags[0].device) for v in losses]  # any device
    return trainer.strategy.reduce_boolean_decision(bool(torch.stack(flags).all()), all=True)


class Checkpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that also saves every ``every_n_steps`` training iterations (batches).

    ``last.ckpt`` is written at every epoch end and when training ends (Lightning only writes it alongside a
    top-k checkpoint, so with ``save_top_k=0`` it would be written once).

    Lightning's ``every_n_train_steps`` counts optimizer steps (``d_steps + 1`` per iteration with manual
    optimization) and excludes ``every_n_epochs``; ``every_n_steps`` counts iterations and adds to the epoch
    schedule. A state with a non-finite parameter or loss is never written, so the last good checkpoint
    survives a divergence.
    """

    def __init__(self, every_n_steps: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        if every_n_steps < 0:
            raise ValueError(f"every_n_steps={every_n_steps} must be >= 0 (0: off)")
        self.every_n_steps = every_n_steps
        self.last_good: tuple[str, int] | None = None  # (path, iteration) of the last checkpoint written
        self.trained_here = False

    def iteration_periods(self) -> list[int]:
        """The iterations it saves at: blocks of iterations end there (:meth:`DCGAN.block_schedule`)."""
        return [self.every_n_steps]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self.trained_here = True  # an iteration of this process: a stop now has something to save
        if self.every_n_steps < 1 or pl_module.iteration % self.every_n_steps != 0:
            return
        if not self._should_skip_saving_checkpoint(trainer):
            candidates = self._monitor_candidates(trainer)
            self._save_topk_checkpoint(trainer, candidates)
            self._save_last_checkpoint(trainer, candidates)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self._save_last_if_new(trainer)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        """SIGTERM (a scheduler's pre-emption or time limit, ``docker stop``, ``timeout``, ``kill``): Lightning
        stops between two iterations (the FID loops between two batches of images), and ``last.ckpt`` is written
        there, so the stop loses nothing and ``ckpt_path=last`` continues exactly. Other exceptions (Ctrl+C can
        land between D's and G's step) keep the last periodic checkpoint."""
        if not isinstance(exception, SIGTERMException) or not self.trained_here:
            return
        self._save_last_if_new(trainer)
        if self.last_good is not None and self.last_good[1] == pl_module.iteration:
            where = f"{self.last_good[0]} holds it"
        else:
            where = "its state was not saved (see above): the last checkpoint holds an earlier one"
        log.warning(
            "Stopped by SIGTERM at iteration %d: %s; resume with ckpt_path=last", pl_module.iteration, where
        )

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._save_last_if_new(trainer)

    def _save_last_if_new(self, trainer: L.Trainer) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_topk_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict) -> None:
        # FID (val/fid) is computed on a schedule, not every epoch: an epoch without it has nothing to rank,
        # which is not the mistake Lightning's "could not find the monitored key" warning is about.
        if self.monitor is not None and self.monitor not in monitor_candidates:
            return
        super()._save_topk_checkpoint(trainer, monitor_candidates)

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        if not state_is_finite(trainer, trainer.lightning_module):
            log.warning(
                "Not writing %s at iteration %d: the model or its losses are not finite (diverged); "
                "the previous checkpoint is kept",
                filepath,
                trainer.lightning_module.iteration,
            )
            return
        super()._save_checkpoint(trainer, filepath)
        self.last_good = (filepath, trainer.lightning_module.iteration)
