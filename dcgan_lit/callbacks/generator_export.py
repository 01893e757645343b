"""The final generator as a standalone file when training ends, and as a W&B model artifact."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from dcgan_lit.callbacks.fid import fid_is_on
from dcgan_lit.checkpoint.io import load_weights
from dcgan_lit.checkpoint.load import generator_from_state, generator_hyperparameters, save_generator
from dcgan_lit.model.sampling import sampling_generator

log = logging.getLogger(__name__)


class ExportGenerator(L.Callback):
    """Writes ``path`` (the generator, EMA weights when the module has them, as ``dcgan_lit.tools.export``'s
    state-dict format) when training ends, and logs it to every W&B logger as the model artifact
    ``generator-<run id>``: offline runs record it and ``wandb sync`` uploads it.

    With FID on, the generator is the best-FID checkpoint's (``best.ckpt``: plain DCGAN often gets worse late in
    training), and the log says which iteration that was; with FID off it is the last one, and a warning says so.
    """

    def __init__(self, path: str, artifact: bool = True) -> None:
        self.path = Path(path)
        self.artifact = artifact

    @rank_zero_only
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        best = best_fid_checkpoint(trainer)
        if best is not None:
            checkpoint = load_weights(best.best_model_path)
            generator = generator_from_state(checkpoint["state_dict"], checkpoint.get("hyper_parameters", {}))
            iteration = checkpoint["global_step"] // pl_module.optimizer_steps_per_iteration
            which = f"the best-FID generator, of iteration {iteration} (val/fid {float(best.best_model_score):.2f})"
        else:
            # the EMA's BatchNorm statistics are brought up to date first
            generator = sampling_generator(pl_module)
            iteration = pl_module.iteration
            which = f"the last generator, of iteration {iteration}"
            if not fid_is_on(trainer.callbacks):
                log.warning(
                    "FID is off, so %s is the last generator (iteration %d), not the best one: plain DCGAN often "
                    "gets worse late in training; with FID on (metrics=default) it is the best-FID one",
                    self.path.name,
                    iteration,
                )
        save_generator(generator, self.path)
        log.info("%s: %s (load it with dcgan_lit.load_generator)", self.path, which)
        if not self.artifact:
            return
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                self.log_artifact(logger, {**generator_hyperparameters(generator), "iteration": iteration})

    def log_artifact(self, logger: WandbLogger, metadata: dict) -> None:
        """One W&B artifact of type ``model`` holding the generator file."""
        import wandb

        run = logger.experiment
        artifact = wandb.Artifact(name=f"generator-{run.id}", type="model", metadata=metadata)
        artifact.add_file(str(self.path), name=self.path.name)
        run.log_artifact(artifact, aliases=["latest"])


def best_fid_checkpoint(trainer: L.Trainer) -> ModelCheckpoint | None:
    """The checkpoint callback that kept the lowest ``val/fid`` so far, when it has written one."""
    for callback in trainer.checkpoint_callbacks:
        if (
            callback.monitor == "val/fid"
            and callback.best_model_path
            and Path(callback.best_model_path).is_file()
        ):
            return callback
    return None
