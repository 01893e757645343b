"""The class interpolation sheet of a conditional run: from one class to another at fixed z's, at the end."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from dcgan_lit.api import save_grid
from dcgan_lit.errors import UserError
from dcgan_lit.model.conditional import class_interpolation
from dcgan_lit.model.sampling import eval_mode, sampling_generator

log = logging.getLogger(__name__)


class ClassInterpolationSheet(L.Callback):
    """When training ends, writes ``path``: one row per seed's z, ``steps`` columns whose class weights go from
    ``classes[0]`` to ``classes[1]`` (and on through further classes): (1 - t) * horse + t * bird.

    The z of seed s is the tools' (``generator.sample_latent(1, seed=s)``), so
    ``python -m dcgan_lit.tools.interpolate classes=[...] seeds=[...] steps=...`` redraws the same sheet from
    any checkpoint of the run.
    """

    def __init__(
        self, path: str, classes: Sequence[str], seeds: Sequence[int] = tuple(range(8)), steps: int = 10
    ) -> None:
        self.path = Path(path)
        self.classes = [str(name) for name in classes]
        self.seeds = [int(seed) for seed in seeds]
        self.steps = int(steps)
        self.last_written: Path | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.class_indices(pl_module)  # a wrong class name fails now, not after training

    def class_indices(self, pl_module: L.LightningModule) -> list[int]:
        """The sheet's classes as indices of the model's classes; one line when they don't fit the run."""
        names = list(getattr(pl_module, "class_names", []))
        key = "callbacks.class_interpolation"
        if not names:
            raise UserError(f"{key}: the model is unconditional; set model.conditional=true or {key}=null")
        unknown = [name for name in self.classes if name not in names]
        if unknown or len(self.classes) < 2 or self.steps < 2 or not self.seeds:
            raise UserError(
                f"{key}.classes={self.classes} must be >= 2 of the run's classes {names} (unknown: {unknown}), "
                f"with steps >= 2 (got {self.steps}) and at least one seed"
            )
        return [names.index(name) for name in self.classes]

    @rank_zero_only
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        classes = self.class_indices(pl_module)
        with eval_mode(sampling_generator(pl_module)) as generator, torch.no_grad():
            z = torch.cat([generator.sample_latent(1, seed=seed) for seed in self.seeds])
            images = class_interpolation(generator, z, classes, self.steps)
        self.last_written = save_grid(images.flatten(0, 1), self.path, nrow=self.steps)
        log.info(
            "Class interpolation %s at %d fixed z's: %s",
            " -> ".join(self.classes),
            len(self.seeds),
            self.path,
        )
