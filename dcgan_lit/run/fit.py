"""The training run: config -> datamodule, model, callbacks, loggers, Trainer -> fit. Called by ``train.py``."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from dcgan_lit.callbacks import check_fid_objective
from dcgan_lit.callbacks.wandb_run import WandbRunId, saved_run_id, wandb_logger
from dcgan_lit.checkpoint.resume import AtomicCheckpointIO, Resume, keep_earlier_metrics, resolve_ckpt_path
from dcgan_lit.model.module import DCGAN
from dcgan_lit.run.config import plain, validate
from dcgan_lit.run.console import quiet_first_screen
from dcgan_lit.run.distributed import check_distributed
from dcgan_lit.run.instantiate import build, instantiate_callbacks, instantiate_loggers

__all__ = ["build_trainer", "resolve_ckpt_path", "train"]

log = logging.getLogger(__name__)


def iterations_to_optimizer_steps(max_steps: int, model: DCGAN) -> int:
    """``trainer.max_steps`` counts training iterations (batches); Lightning's counts optimizer steps."""
    return (
        max_steps if max_steps is None or max_steps < 0 else max_steps * model.optimizer_steps_per_iteration
    )


def in_experiment_folder(cfg: DictConfig) -> bool:
    """Whether this single run's folder is in the default layout, ``<log_dir>/<task_name>/<dataset>-<model>/``,
    whose other folders are earlier runs of the same experiment that ``ckpt_path=last`` may continue.
    A custom ``hydra.run.dir`` or a multirun job (its siblings are other jobs of the sweep) looks only at
    its own folder."""
    if not HydraConfig.initialized():
        return False
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        return False
    choices = hydra_cfg.runtime.choices
    experiment = Path(cfg.paths.log_dir) / cfg.task_name / f"{choices.get('dataset')}-{choices.get('model')}"
    return Path(cfg.paths.output_dir).resolve().parent == experiment.resolve()


def build_datamodule(cfg: DictConfig):
    """The config's data module; with ``model.conditional=true`` its batches are ``(images, labels)``."""
    conditional = bool(cfg.model.get("conditional", False))
    return build("dataset", cfg.dataset, **({"conditional": True} if conditional else {}))


def build_model(cfg: DictConfig, datamodule) -> DCGAN:
    """The config's DCGAN; a conditional one takes the data's classes (a source without labels: one line)."""
    classes = {"class_names": datamodule.class_names()} if cfg.model.get("conditional", False) else {}
    return build("model", cfg.model, **classes)


def log_hyperparameters(trainer: L.Trainer, cfg: DictConfig, model: DCGAN) -> None:
    """Sends the full resolved config and the parameter counts to every logger."""
    if not trainer.loggers:
        return
    config = {k: plain(v) for k, v in cfg.items() if k != "hydra"}
    config.update(model.parameter_counts())
    for logger in trainer.loggers:
        logger.log_hyperparams(config)


def accelerator_choice(device: torch.device) -> str:
    """The ``accelerator`` config group's option for a torch device (a benchmark's ``device=`` setting)."""
    return "gpu" if torch.device(device).type == "cuda" else "cpu"


def build_trainer(
    cfg: DictConfig,
    model: DCGAN,
    callbacks: list[L.Callback],
    loggers: list | None = None,
    resume: Resume | None = None,
    max_iterations: int | None = None,
    **overrides,
) -> L.Trainer:
    """The config's Trainer: ``max_steps`` counted in iterations (``max_iterations`` overrides it), checkpoints
    written atomically, and the checkpoint resumed from read once (``resume``); ``overrides`` go to the Trainer."""
    # Lightning warns on any mid-epoch resume unless the DataLoader itself is stateful; the data module
    # restores the data order (its sampler's position is in the checkpoint), so the warning does not apply.
    warnings.filterwarnings(
        "ignore", message=".*resuming from a checkpoint that ended before the epoch ended"
    )
    iterations = cfg.trainer.get("max_steps", -1) if max_iterations is None else max_iterations
    return build(
        "trainer",
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        plugins=[AtomicCheckpointIO(resume)],
        max_steps=iterations_to_optimizer_steps(iterations, model),
        **overrides,
    )


def train(cfg: DictConfig) -> dict[str, float]:
    """Trains a DCGAN as the config says and returns the final logged metrics."""
    validate(cfg)
    quiet_first_screen()
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    # built first (FID among them): missing FID weights are one line now, not hours later
    callbacks = instantiate_callbacks(cfg.get("callbacks"))
    check_fid_objective(cfg.get("optimized_metric"), callbacks)

    log.info("Instantiating datamodule <%s>", cfg.dataset._target_)
    datamodule = build_datamodule(cfg)
    datamodule.check_source()  # a missing dataset is one line now, not a traceback after model set-up
    if cfg.model.get("conditional", False):
        datamodule.class_names()  # a source without labels is one line now, before a checkpoint is looked for
    resume = resolve_ckpt_path(
        cfg.get("ckpt_path"),
        cfg.paths.output_dir,
        cfg.model,
        siblings=in_experiment_folder(cfg),
        config=cfg,
    )
    if resume and keep_earlier_metrics(cfg.get("logger")):
        # the CSV logger's "previous log files will be deleted": its metrics.csv has just been kept aside
        warnings.filterwarnings("ignore", message=".*Previous log files in this directory will be deleted")

    log.info("Instantiating model <%s>", cfg.model._target_)
    model = build_model(cfg, datamodule)
    log.info(
        "Generator: %s parameters, discriminator: %s",
        *(f"{n:,}" for n in model.parameter_counts().values()),
    )

    loggers = instantiate_loggers(cfg.get("logger"), saved_run_id(resume.checkpoint if resume else None))
    if wandb_logger(loggers) is not None:
        callbacks.append(WandbRunId())
    trainer = build_trainer(cfg, model, callbacks, loggers, resume)
    check_distributed(trainer)
    log_hyperparameters(trainer, cfg, model)
    trainer.fit(model, datamodule=datamodule, ckpt_path=resume.path if resume else None)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    log.info("Finished after %d iterations; outputs in %s", model.iteration, cfg.paths.output_dir)
    return metrics
