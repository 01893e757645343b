"""What a training step receives: a block of real batches for one or more iterations, and where blocks end.

A data module hands the model one :class:`Block` per Lightning ``training_step``: the uint8 images of ``n``
consecutive batches (or their indices into a copy of the set already on the device), taken in the data order
a one-batch-per-step run would take. The model runs the ``n`` iterations in a row, each turning its batch into
floats itself (:meth:`Block.batch`, with the random flip), so ``n`` iterations per step draw the same random
numbers in the same order as ``n`` steps of one: the same training, bit for bit, at a fraction of Lightning's
per-step cost.

A :class:`BlockSchedule` says where blocks end: at every multiple of ``per_step`` iterations and of each
``period`` (logging, checkpoints, sample grids, the divergence guard's checks), at the end of a pass over
the data and at the last iteration, so everything that happens "every N iterations" happens at exactly that
iteration.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import torch

from dcgan_lit.pixels import from_uint8


def real_batch(images: torch.Tensor, hflip: bool) -> torch.Tensor:
    """uint8 (N, C, H, W) on any device -> float in [-1, 1], each image mirrored with probability 1/2 when
    ``hflip`` (one ``torch.rand`` of N on the images' device)."""
    x = from_uint8(images)
    if hflip:
        flip = torch.rand(x.size(0), 1, 1, 1, device=x.device) < 0.5
        x = torch.where(flip, x.flip(3), x)
    return x


class Block(NamedTuple):
    """The real images of ``iterations`` consecutive training iterations.

    ``images``: uint8 (N, C, H, W), either the block's own images in order (``indices`` None) or a whole set
    kept on the device that ``indices`` (int64, the block's images in order) point into. ``labels``: the class
    of each row of ``images`` (conditional data), else None. Batches are ``batch_size`` rows (the last of a
    pass may be shorter when the data keep a partial batch). Float images (a data module of one's own that
    already converted them) are taken as they are, one iteration per block.
    """

    images: torch.Tensor
    indices: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    batch_size: int | None = None
    hflip: bool = False

    @property
    def rows(self) -> int:
        return int(self.indices.numel() if self.indices is not None else self.images.size(0))

    @property
    def iterations(self) -> int:
        return max(1, math.ceil(self.rows / self.batch_size)) if self.batch_size else 1

    def picked(self, i: int) -> torch.Tensor | slice:
        """Which rows of ``images`` iteration ``i`` trains on: indices, or a slice."""
        rows = slice(i * self.batch_size, (i + 1) * self.batch_size) if self.batch_size else slice(None)
        return self.indices[rows] if self.indices is not None else rows

    def batch(self, i: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Iteration ``i``'s real images (float, [-1, 1]) and their labels (or None)."""
        return self.gather(self.picked(i))

    def gather(self, picked: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The images (and labels) at ``picked`` (row indices or a slice), as training sees them."""
        images = self.images[picked]
        labels = self.labels[picked] if self.labels is not None else None
        if images.dtype == torch.uint8:
            images = real_batch(images, self.hflip)
        return images, labels


class BlockSchedule(NamedTuple):
    """Where blocks of iterations end (see the module's docstring); ``last``: the run's last iteration or None."""

    per_step: int = 1
    periods: tuple[int, ...] = ()
    last: int | None = None

    @classmethod
    def of(cls, per_step: int, periods: Iterable[int | None], last: int | None = None) -> BlockSchedule:
        """A schedule of ``per_step`` iterations per block, cut at the positive ``periods`` (null and 0: off)."""
        cuts = sorted({int(p) for p in periods if p is not None and int(p) > 0})
        return cls(max(1, int(per_step)), tuple(cuts), last if last is not None and last > 0 else None)

    def block_end(self, position: int, pass_end: int) -> int:
        """The iteration at which a block starting at iteration ``position`` ends (exclusive): the nearest
        multiple of ``per_step`` or of a period after it, the pass's end, or the last iteration."""
        ends = [pass_end, position + self.per_step - position % self.per_step]
        ends += [position + period - position % period for period in self.periods]
        if self.last is not None and self.last > position:
            ends.append(self.last)
        return min(ends)
