"""Test-only Lightning callbacks that train.py instantiates from the config
(``+callbacks.<name>._target_=tests.helpers.callbacks.<Class>``): faults, stand-ins, crashes."""

from __future__ import annotations

import copy
import os
import signal

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

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.iteration == self.iteration:
            os.kill(os.getpid(), signal.SIGTERM)
