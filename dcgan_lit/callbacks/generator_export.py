"""The final generator as a standalone file when training ends, and as a W&B model artifact."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from dcgan_lit.checkpoint.load import generator_hyperparameters, save_generator
from dcgan_lit.model.sampling import sampling_generator

log = logging.getLogger(__name__)


class ExportGenerator(L.Callback):
    """Writes ``path`` (the generator, EMA weights when the module has them, as ``dcgan_lit.tools.export``'s
    state-dict format) when training ends, and logs it to every W&B logger as the model artifact
    ``generator-<run id>``: offline runs record it and ``wandb sync`` uploads it.
    """

    def __init__(self, path: str, artifact: bool = True) -> None:
        self.path = Path(path)
        self.artifact = artifact

    @rank_zero_only
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        generator = sampling_generator(pl_module)  # the EMA's BatchNorm statistics brought up to date first
        save_generator(generator, self.path)
        log.info("Final generator written to %s (load it with dcgan_lit.load_generator)", self.path)
        if not self.artifact:
            return
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                self.log_artifact(
                    logger, {**generator_hyperparameters(generator), "iteration": pl_module.iteration}
                )

    def log_artifact(self, logger: WandbLogger, metadata: dict) -> None:
        """One W&B artifact of type ``model`` holding the generator file."""
        import wandb

        run = logger.experiment
        artifact = wandb.Artifact(name=f"generator-{run.id}", type="model", metadata=metadata)
        artifact.add_file(str(self.path), name=self.path.name)
        run.log_artifact(artifact, aliases=["latest"])
