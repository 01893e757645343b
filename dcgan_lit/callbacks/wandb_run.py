"""One W&B run per training run: the run id travels in every checkpoint, so ``ckpt_path=`` continues it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import lightning as L
from lightning.pytorch.loggers import Logger, WandbLogger

KEY = "wandb_run_id"


def wandb_logger(loggers: Iterable[Logger]) -> WandbLogger | None:
    return next((logger for logger in loggers if isinstance(logger, WandbLogger)), None)


class WandbRunId(L.Callback):
    """Saves the W&B run's id in each checkpoint (``checkpoint["wandb_run_id"]``); a run resumed from that
    checkpoint passes it to W&B (``id=``, ``resume="allow"``) so its curves continue in the same run."""

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ):
        logger = wandb_logger(trainer.loggers)
        if logger is not None and logger.version:
            checkpoint[KEY] = str(logger.version)


def saved_run_id(checkpoint: dict[str, Any] | None) -> str | None:
    return (checkpoint or {}).get(KEY)
