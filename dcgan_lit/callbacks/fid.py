"""FID during training: ``val/fid`` and ``val/fid_best`` every ``metrics.fid.every_n_epochs`` epochs."""

from __future__ import annotations

import logging
import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig
from torchmetrics import MinMetric

from dcgan_lit.errors import UserError
from dcgan_lit.metrics import MetricSuite, WeightsUnavailable, score_generator
from dcgan_lit.metrics.features import extractor_from_config
from dcgan_lit.model.sampling import eval_mode, sampling_generator

log = logging.getLogger(__name__)


class FIDCallback(L.Callback):
    """Scores the generator against the training data's reference statistics at epoch ends.

    Under DDP every rank generates its share of ``num_fake`` images; the feature statistics are gathered and
    rank 0 alone computes the Fréchet distance, which it broadcasts, so every rank logs the same value and
    Lightning's loggers write it once (from rank 0).
    """

    def __init__(
        self,
        suite: MetricSuite,
        cache_dir: str | None,
        every_n_epochs: int = 1,
        num_fake: int = 10_000,
        num_real: int | None = 50_000,
        batch_size: int = 100,
        seed: int = 0,
    ) -> None:
        self.suite = suite
        self.cache_dir = cache_dir
        self.every_n_epochs = every_n_epochs
        self.num_fake = num_fake
        self.num_real = num_real
        self.batch_size = batch_size
        self.seed = seed
        self.best = MinMetric()
        self.history: list[tuple[int, float]] = []  # (epoch, FID) of this process's evaluations

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.suite.to(pl_module.device)
        self.best.to(pl_module.device)
        datamodule = trainer.datamodule
        self.suite.prepare_reference(
            datamodule.train_set.images,
            datamodule.cache_key(),
            self.cache_dir,
            self.num_real,
            self.batch_size,
        )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.every_n_epochs < 1 or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        start = time.perf_counter()
        results = self.score(pl_module)
        self.best.update(torch.tensor(results["fid"], device=pl_module.device))
        best = float(self.best.compute())
        self.history.append((trainer.current_epoch, results["fid"]))
        pl_module.log("val/fid", results["fid"], on_epoch=True, prog_bar=True)
        pl_module.log("val/fid_best", best, on_epoch=True)
        for name, value in results.items():
            if name != "fid":
                pl_module.log(f"val/{name}", value, on_epoch=True)
        if trainer.is_global_zero:
            log.info(
                "Epoch %d: FID %.3f (best %.3f), %d fake images, %s, %.1fs",
                trainer.current_epoch,
                results["fid"],
                best,
                self.num_fake,
                self.suite.extractor_description,
                time.perf_counter() - start,
            )

    def score(self, pl_module: L.LightningModule) -> dict[str, float]:
        """FID (and the enabled extras) of ``num_fake`` images of the eval-mode generator."""
        with eval_mode(sampling_generator(pl_module)) as generator:
            return score_generator(
                self.suite,
                generator,
                pl_module.hparams.latent_dim,
                self.num_fake,
                self.batch_size,
                pl_module.device,
                self.seed,
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best_fid": float(self.best.compute()) if self.best.update_called else None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("best_fid") is not None:
            self.best.update(torch.tensor(state_dict["best_fid"]))


def build_fid_callback(metrics: DictConfig | None, cache_dir: str | None) -> FIDCallback | None:
    """The FID callback of ``metrics.fid``, built now so that missing Inception weights are reported at start-up.

    Missing weights: a one-line warning and no FID, or a :class:`UserError` with ``metrics.fid.required=true``.
    """
    fid = (metrics or {}).get("fid")
    if not fid or not fid.get("enabled", True):
        return None
    check_settings(fid)
    try:
        extractor = extractor_from_config(fid, cache_dir)
    except WeightsUnavailable as error:
        if fid.get("required", False):
            raise UserError(f"{error} (metrics.fid.required=true)") from None
        log.warning("%s. Training continues without FID (metrics.fid.required=true makes this fatal)", error)
        return None
    options = {name: metrics.get(name) for name in ("kid", "inception_score", "mifid")}
    callback = FIDCallback(
        MetricSuite(extractor, options),
        cache_dir=cache_dir,
        every_n_epochs=int(fid.get("every_n_epochs", 1)),
        num_fake=int(fid.num_fake),
        num_real=fid.get("num_real"),
        batch_size=int(fid.get("batch_size", 100)),
        seed=int(fid.get("seed", 0)),
    )
    log.info(
        "FID every %d epoch(s): %d generated images against at most %s real ones, features %s",
        callback.every_n_epochs,
        callback.num_fake,
        callback.num_real or "all",
        callback.suite.extractor_description,
    )
    return callback


def check_settings(fid: DictConfig) -> None:
    """Counts that would only fail at the first evaluation, an epoch into training, fail now."""
    minimums = {"num_fake": 2, "batch_size": 1, "every_n_epochs": 0}
    for key, minimum in minimums.items():
        value = fid.get(key)
        if key in fid and (not isinstance(value, int) or value < minimum):
            raise UserError(f"metrics.fid.{key}={value} must be an integer >= {minimum}")
    num_real = fid.get("num_real")
    if num_real is not None and (not isinstance(num_real, int) or num_real < 2):
        raise UserError(f"metrics.fid.num_real={num_real} must be an integer >= 2, or null for all images")


def check_fid_objective(optimized_metric: str | None, fid_callback: FIDCallback | None) -> None:
    """A run whose objective is a ``val/`` metric (a sweep's ``val/fid_best``) stops at start-up when FID is off."""
    if fid_callback is None and optimized_metric and optimized_metric.startswith("val/"):
        raise UserError(
            f"optimized_metric={optimized_metric} needs FID, which is off in this run (metrics=none, or the "
            "weights are missing: see above); make FID available or set optimized_metric=train/loss_g"
        )


def attach_fid(callbacks: list[L.Callback], fid_callback: FIDCallback | None) -> list[L.Callback]:
    """Adds the FID callback; without one, drops checkpoints that monitor ``val/fid`` (nothing would feed them)."""
    if fid_callback is not None:
        return [*callbacks, fid_callback]
    return [c for c in callbacks if not (isinstance(c, ModelCheckpoint) and c.monitor == "val/fid")]
