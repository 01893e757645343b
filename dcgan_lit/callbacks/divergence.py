"""Divergence guards: a non-finite loss stops the run; "D wins" and mode collapse are logged, then warn or stop.

Per iteration the guard only adds a few device-side tensor operations; it reads values back to the host every
``check_every_n_steps`` iterations, so it costs no synchronisation per step.
"""

from __future__ import annotations

import logging
from collections import deque

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from dcgan_lit.batches import Block
from dcgan_lit.callbacks.model_checkpoint import Checkpoint
from dcgan_lit.errors import TrainingDiverged
from dcgan_lit.model.sampling import eval_mode

log = logging.getLogger(__name__)

ACTIONS = ("warn", "stop")


def last_real_batch(pl_module: L.LightningModule, batch) -> torch.Tensor:
    """The real images of the step's last iteration, unflipped (no random number drawn)."""
    if isinstance(batch, Block):
        return batch._replace(hflip=False).batch(batch.iterations - 1)[0]
    return pl_module.split_batch(batch)[0]


@torch.no_grad()
def feature_diversity(discriminator: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Mean pairwise L2 distance between the discriminator's last feature maps of ``images`` (eval mode)."""
    with eval_mode(discriminator):
        features = discriminator.features(images).flatten(1).float()
    return torch.pdist(features).mean()


class DivergenceGuard(L.Callback):
    """Watches training for the three ways a GAN run goes bad.

    * a non-finite loss: always stops the run (:class:`TrainingDiverged`, naming the first bad iteration);
      :class:`Checkpoint` never writes a non-finite state, so the last good checkpoint survives;
    * "D wins": over the last ``d_wins_window`` iterations the mean D loss stayed below ``d_wins_loss_d_below``
      and the mean D(G(z)) below ``d_wins_d_fake_below`` (G gets no useful gradient any more);
    * "D stays ahead": over the last ``d_ahead_window`` iterations D's mean verdict on real images stayed more
      than ``d_ahead_gap_above`` above its verdict on G's (mean D(x) - D(G(z))): on a small set the sign of D
      memorising it, with the small-data recipe to try;
    * mode collapse: every ``collapse_every_n_steps`` iterations, the diversity of G(fixed z) in D's feature
      space (:func:`feature_diversity`) divided by that of a real batch fell below ``collapse_ratio_below``
      for ``collapse_patience`` checks in a row.

    The last two are logged as ``health/d_wins`` and ``health/diversity_*`` and then warn or stop (``action``).
    """

    def __init__(
        self,
        action: str = "warn",
        check_every_n_steps: int = 10,
        d_wins_window: int = 200,
        d_wins_loss_d_below: float = 0.05,
        d_wins_d_fake_below: float = 0.05,
        d_ahead_window: int = 2000,
        d_ahead_gap_above: float = 0.85,
        collapse_every_n_steps: int = 500,
        collapse_ratio_below: float = 0.2,
        collapse_patience: int = 2,
    ) -> None:
        if action not in ACTIONS:
            raise ValueError(f"action={action!r}: use one of {ACTIONS}")
        self.action = action
        self.check_every_n_steps = max(1, check_every_n_steps)
        self.d_wins_window = d_wins_window
        self.d_wins_loss_d_below = d_wins_loss_d_below
        self.d_wins_d_fake_below = d_wins_d_fake_below
        self.d_ahead_window = d_ahead_window
        self.d_ahead_gap_above = d_ahead_gap_above
        self.collapse_every_n_steps = collapse_every_n_steps
        self.collapse_ratio_below = collapse_ratio_below
        self.collapse_patience = collapse_patience
        # (mean loss_d, mean D(G(z)), mean D(x)) of each check's iterations, as many as the longer window needs
        self.chunks = {
            name: -(-max(window, 1) // self.check_every_n_steps)
            for name, window in (("d_wins", d_wins_window), ("d_ahead", d_ahead_window))
        }
        self.window: deque[tuple[float, ...]] = deque(maxlen=max(self.chunks.values()))
        self.collapsed_checks = 0
        self.reported: set[str] = set()
        # On the device: [sum of loss_d, sum of D(G(z))] since the last check, and the first non-finite iteration
        # (inf: none); on the host, the iteration the sums start at
        self._sums: torch.Tensor | None = None
        self._first_bad: torch.Tensor | None = None
        self._since = 0

    def iteration_periods(self) -> list[int]:
        """The iterations it acts at: blocks of iterations end there (:meth:`DCGAN.block_schedule`)."""
        return [self.check_every_n_steps, self.collapse_every_n_steps]

    # -- per iteration: device-side bookkeeping only, inside the model's iteration -------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # float32: MPS has no float64; made before the first iteration (a CUDA graph captures them in place)
        self._sums = torch.zeros(3, device=pl_module.device)
        self._first_bad = torch.full((), float("inf"), device=pl_module.device)
        self._since = pl_module.iteration
        observers = getattr(pl_module, "iteration_observers", None)
        if observers is not None and self.observe not in observers:
            observers.append(self.observe)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        observers = getattr(pl_module, "iteration_observers", [])
        if self.observe in observers:
            observers.remove(self.observe)

    def observe(self, metrics: dict[str, torch.Tensor], iterations_done: torch.Tensor) -> None:
        """One iteration's losses into the running sums, and the first non-finite one's number: a few device
        operations, no host read."""
        loss_d, loss_g, d_fake, d_real = (
            metrics[k] for k in ("train/loss_d", "train/loss_g", "train/d_fake", "train/d_real")
        )
        self._sums.add_(torch.stack([loss_d, d_fake, d_real]))
        # the iteration that just ran (as logged) where the losses are not finite, else inf; the smallest kept
        bad_at = torch.where(torch.isfinite(loss_d + loss_g), float("inf"), iterations_done - 1)
        torch.minimum(self._first_bad, bad_at, out=self._first_bad)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.observe not in getattr(pl_module, "iteration_observers", []):
            # a module without observers: its step's values, once per step
            if not isinstance(outputs, dict) or "train/loss_d" not in outputs:
                return
            self.observe(outputs, torch.tensor(float(pl_module.iteration), device=self._sums.device))
        if pl_module.iteration % self.check_every_n_steps == 0:
            self.check(trainer, pl_module)
        if self.collapse_every_n_steps > 0 and pl_module.iteration % self.collapse_every_n_steps == 0:
            self.check_collapse(trainer, pl_module, last_real_batch(pl_module, batch))

    # -- every check_every_n_steps iterations: one host sync -------------------------------------------
    def check(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        first_bad = self._first_bad.reshape(1).clone()
        # Under DDP all ranks stop together: one left training would wait forever in the next all-reduce.
        if trainer.world_size > 1:
            first_bad = trainer.strategy.reduce(first_bad, reduce_op="min")
        sum_loss_d, sum_d_fake, sum_d_real, first_bad = torch.cat(
            [self._sums, first_bad.to(self._sums)]
        ).tolist()
        count, self._since = pl_module.iteration - self._since, pl_module.iteration
        self._sums.zero_()
        self._first_bad.fill_(float("inf"))
        if first_bad < float("inf"):
            raise TrainingDiverged(
                f"training diverged: non-finite loss at iteration {int(first_bad)}; stopped. "
                f"{self.last_good_checkpoint(trainer)} Lower the learning rates (model.optimizer_d.lr, "
                "model.optimizer_g.lr) or try precision=32-true"
            )
        if count == 0:
            return
        self.window.append((sum_loss_d / count, sum_d_fake / count, sum_d_real / count))
        recent = list(self.window)[-self.chunks["d_wins"] :]
        d_wins = len(recent) == self.chunks["d_wins"] and all(
            loss_d < self.d_wins_loss_d_below and d_fake < self.d_wins_d_fake_below
            for loss_d, d_fake, *_ in recent
        )
        d_wins = trainer.strategy.reduce_boolean_decision(d_wins, all=False)  # the same on every rank
        # D's verdicts on real and generated images kept far apart for a long window
        ahead = list(self.window)[-self.chunks["d_ahead"] :]
        gap = sum(d_real - d_fake for _, d_fake, d_real in ahead) / len(ahead)
        log_metrics(trainer, pl_module, {"health/d_wins": float(d_wins), "health/d_gap": gap})
        if d_wins:
            self.act(
                trainer,
                "d_wins",
                f"the discriminator wins: over the last {self.d_wins_window} iterations (to {pl_module.iteration}) "
                f"loss_d < {self.d_wins_loss_d_below} and D(G(z)) < {self.d_wins_d_fake_below}, so G learns "
                "nothing; try a lower model.optimizer_d.lr or model.d_steps=1",
            )
        ahead = len(ahead) == self.chunks["d_ahead"] and gap > self.d_ahead_gap_above
        if trainer.strategy.reduce_boolean_decision(ahead, all=False):
            self.act(
                trainer,
                "d_ahead",
                f"the discriminator stays ahead: over the last {self.d_ahead_window} iterations (to "
                f"{pl_module.iteration}) D(x) - D(G(z)) averaged {gap:.2f} (> {self.d_ahead_gap_above}); on a small "
                "set this is D memorising it: try recipe=small_ada (DiffAugment at an adaptive probability) "
                "and keep the best-FID generator (docs/small_data.md)",
            )

    def check_collapse(self, trainer: L.Trainer, pl_module: L.LightningModule, real: torch.Tensor) -> None:
        n = min(len(real), pl_module.fixed_noise.size(0))
        if n < 2:
            return
        fake = pl_module.sample_fixed()[:n]
        diversity_fake = feature_diversity(pl_module.discriminator, fake)
        diversity_real = feature_diversity(pl_module.discriminator, real[:n])
        fake_value, real_value = torch.stack([diversity_fake, diversity_real]).tolist()
        ratio = fake_value / real_value if real_value > 0 else float("inf")
        log_metrics(
            trainer,
            pl_module,
            {
                "health/diversity_fake": fake_value,
                "health/diversity_real": real_value,
                "health/diversity_ratio": ratio,
            },
        )
        low = trainer.strategy.reduce_boolean_decision(ratio < self.collapse_ratio_below, all=False)
        self.collapsed_checks = self.collapsed_checks + 1 if low else 0
        if self.collapsed_checks >= self.collapse_patience:
            self.act(
                trainer,
                "mode_collapse",
                f"mode collapse: at iteration {pl_module.iteration} the fixed samples' diversity in D's feature "
                f"space is {ratio:.3f} of real data's (< {self.collapse_ratio_below} for {self.collapsed_checks} "
                "checks); consider restarting from an earlier checkpoint with a lower learning rate",
            )

    def state_dict(self) -> dict:
        """The D-wins window and the collapse streak, so a resumed run judges the same history."""
        return {"window": list(self.window), "collapsed_checks": self.collapsed_checks}

    def load_state_dict(self, state_dict: dict) -> None:
        # checkpoints from before D(x) was kept: (loss_d, D(G(z))) chunks, taken as no gap
        self.window.extend(
            tuple(chunk) if len(chunk) == 3 else (*chunk, chunk[1]) for chunk in state_dict.get("window", [])
        )
        self.collapsed_checks = state_dict.get("collapsed_checks", 0)

    # -- actions -----------------------------------------------------------------------------------------
    def act(self, trainer: L.Trainer, kind: str, message: str) -> None:
        if self.action == "stop":
            log.error("%s. Stopping (callbacks.divergence.action=stop)", message)
            trainer.should_stop = True
        elif kind not in self.reported:  # warn once per kind, the metrics keep the record
            log.warning("%s (callbacks.divergence.action=warn; set it to stop to end the run)", message)
        self.reported.add(kind)

    @staticmethod
    def last_good_checkpoint(trainer: L.Trainer) -> str:
        for callback in trainer.callbacks:
            if isinstance(callback, Checkpoint) and callback.last_good is not None:
                path, iteration = callback.last_good
                return f"The last good checkpoint, {path} (iteration {iteration}), is kept: resume from it."
        return "No checkpoint had been written yet."


@rank_zero_only
def log_metrics(trainer: L.Trainer, pl_module: L.LightningModule, metrics: dict[str, float]) -> None:
    """Straight to every logger at this iteration (the guard checks on its own schedule, not the log's)."""
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=pl_module.iteration - 1)
