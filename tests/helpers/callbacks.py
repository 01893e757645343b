"""Test-only Lightning callbacks that train.py instantiates from the config
(``+callbacks.<name>._target_=tests.helpers.callbacks.<Class>``): faults, stand-ins, crashes."""

from __future__ import annotations

import copy
import os
import signal
from pathlib import Path

import lightning as L
import torch


class PoisonAt(L.Callback):
    """Sets one discriminator weight to NaN before iteration ``iteration``: every loss from then on is NaN."""

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if pl_module.iteration == self.iteration:
            with torch.no_grad():
                weight = next(pl_module.discriminator.parameters())
                weight[(0,) * weight.dim()] = float("nan")  # any memory layout (channels_last included)


class CollapseGenerator(L.Callback):
    """Zeroes G's last layer at the start: G(z) = tanh(0) for every z, a total mode collapse."""

    def on_train_start(self, trainer, pl_module) -> None:
        with torch.no_grad():
            pl_module.generator.main[-2].weight.zero_()


class AveragedGenerator(L.Callback):
    """A stand-in EMA: module state beyond G and D (``generator_ema``), updated with the RNG every iteration."""

    def setup(self, trainer, pl_module, stage) -> None:
        pl_module.generator_ema = copy.deepcopy(pl_module.generator).requires_grad_(False)

    @torch.no_grad()
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        for average, weight in zip(
            pl_module.generator_ema.parameters(), pl_module.generator.parameters(), strict=True
        ):
            average.lerp_(weight + 1e-3 * torch.randn_like(weight), 0.1)


class CrashAt(L.Callback):
    """Raises at the start of iteration ``iteration``: a crash after ``iteration`` completed iterations."""

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if pl_module.iteration == self.iteration:
            raise RuntimeError(f"simulated crash at iteration {self.iteration}")


class SigtermAt(L.Callback):
    """Sends this process SIGTERM at the end of iteration ``iteration`` (a scheduler's pre-emption)."""

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def iteration_periods(self) -> list[int]:  # a block of iterations ends there
        return [self.iteration]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.iteration == self.iteration:
            os.kill(os.getpid(), signal.SIGTERM)


class BlockRecorder(L.Callback):
    """Writes each training step's iterations ("start-end") to ``blocks.txt`` in the run folder, and the
    iteration of every checkpoint the run's Checkpoint callback writes to ``saved.txt``."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.start = pl_module.iteration
        self.record_saved(trainer)  # Lightning runs checkpoint callbacks after the others: look a step later

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        with open(Path(trainer.default_root_dir) / "blocks.txt", "a") as f:
            f.write(f"{self.start}-{pl_module.iteration}\n")

    def on_train_end(self, trainer, pl_module) -> None:
        self.record_saved(trainer)

    def record_saved(self, trainer) -> None:
        for callback in trainer.callbacks:
            last_good = getattr(callback, "last_good", None)
            if last_good is not None and last_good[1] != getattr(self, "saved", None):
                self.saved = last_good[1]
                with open(Path(trainer.default_root_dir) / "saved.txt", "a") as f:
                    f.write(f"{self.saved}\n")


class CountBackward(L.Callback):
    """Counts Lightning's ``on_after_backward`` calls into ``backward.txt`` in the run folder at the end."""

    calls = 0

    def on_after_backward(self, trainer, pl_module) -> None:
        self.calls += 1

    def on_train_end(self, trainer, pl_module) -> None:
        (Path(trainer.default_root_dir) / "backward.txt").write_text(str(self.calls))
