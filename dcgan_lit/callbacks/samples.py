"""Sample grids: G(fixed z) every N iterations, at each epoch end and at the end; the real batch once."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from dcgan_lit.api import grid, save_grid, to_pil
from dcgan_lit.batches import Block
from dcgan_lit.pixels import to_uint8

log = logging.getLogger(__name__)


def log_image(trainer: L.Trainer, key: str, images: torch.Tensor, step: int, nrow: int = 8) -> None:
    """Sends a grid to every logger that takes images (W&B, TensorBoard); CSV gets nothing."""
    tiled = grid(images, nrow)
    for logger in trainer.loggers:
        if hasattr(logger, "log_image"):  # WandbLogger
            logger.log_image(key=key, images=to_pil(tiled), step=step)
        elif hasattr(getattr(logger, "experiment", None), "add_image"):  # TensorBoardLogger
            logger.experiment.add_image(key, to_uint8(tiled), global_step=step)


class SampleGrids(L.Callback):
    """Writes ``samples/step_XXXXXXX.png`` every ``every_n_steps`` iterations, ``samples/epoch_XXXX.png`` at
    each epoch end and ``samples/final.png`` when training ends; ``real_samples.png`` once at the start.

    The grid is always G applied to the module's ``fixed_noise`` buffer, so grids are comparable over time
    and across a resume. A conditional model's grid has one row per class: the first ``nrow`` fixed z's in
    each class, the same z down each column.
    """

    def __init__(
        self,
        dirpath: str,
        real_samples_path: str | None = None,
        every_n_steps: int = 500,
        every_epoch: bool = True,
        nrow: int = 8,
    ) -> None:
        self.dirpath = Path(dirpath)
        self.real_samples_path = Path(real_samples_path) if real_samples_path else None
        self.every_n_steps = every_n_steps
        self.every_epoch = every_epoch
        self.nrow = nrow
        self.last_written: Path | None = None

    @rank_zero_only
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        if self.real_samples_path is None or datamodule is None:
            return
        first = next(iter(datamodule.train_dataloader()))
        first = (
            tuple(t.to(pl_module.device) for t in first)
            if isinstance(first, tuple)
            else first.to(pl_module.device)
        )
        # exactly the training path's preprocessing (and the lookup, when batches are indices on the device)
        real = datamodule.on_after_batch_transfer(first, 0)
        if isinstance(real, Block):  # a training block: its first batch
            real = real.batch(0)
        real = (real[0] if isinstance(real, tuple) else real)[
            : pl_module.fixed_noise.size(0)
        ]  # images, not labels
        save_grid(real, self.real_samples_path, self.nrow)
        log_image(trainer, "real_samples", real, pl_module.iteration, self.nrow)

    def iteration_periods(self) -> list[int]:
        """The iterations it draws at: blocks of iterations end there (:meth:`DCGAN.block_schedule`)."""
        return [self.every_n_steps]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_n_steps > 0 and pl_module.iteration % self.every_n_steps == 0:
            self._write(trainer, pl_module, f"step_{pl_module.iteration:07d}.png")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.every_epoch:
            self._write(trainer, pl_module, f"epoch_{trainer.current_epoch:04d}.png")

    def on_train_end(self, trainer, pl_module) -> None:
        self._write(trainer, pl_module, "final.png")

    @rank_zero_only
    def _write(self, trainer: L.Trainer, pl_module: L.LightningModule, filename: str) -> None:
        images = pl_module.sample_fixed(per_class=self.nrow)
        # a conditional grid's rows are its classes: as many columns as fixed z's per class
        nrow = min(self.nrow, pl_module.fixed_noise.size(0)) if pl_module.class_names else self.nrow
        self.last_written = save_grid(images, self.dirpath / filename, nrow)
        log_image(trainer, "samples", images, pl_module.iteration, nrow)
