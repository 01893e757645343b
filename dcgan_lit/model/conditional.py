"""Sampling a class-conditional generator: paths between classes at a fixed z (the pegasus sheet)."""

from __future__ import annotations

import torch
from torch import nn

from dcgan_lit.model.sampling import generate


def class_path(start: int, end: int, steps: int, num_classes: int) -> torch.Tensor:
    """(steps, num_classes) class weights (1 - t) * start + t * end for t from 0 to 1: class ``start`` to ``end``."""
    t = torch.linspace(0, 1, steps)[:, None]
    one_hot = torch.eye(num_classes)
    return (1 - t) * one_hot[start] + t * one_hot[end]


def class_interpolation(
    generator: nn.Module, z: torch.Tensor, classes: list[int], steps: int, batch_size: int = 256
) -> torch.Tensor:
    """Images (len(z) * (len(classes) - 1), steps, C, H, W) in [-1, 1]: per z (rows in that order), one row per
    consecutive pair of ``classes``, the class weights going from the first class to the second at that fixed z."""
    paths = [
        class_path(a, b, steps, generator.num_classes) for a, b in zip(classes[:-1], classes[1:], strict=True)
    ]
    weights = torch.cat([torch.cat(paths)] * len(z))  # (rows * steps, num_classes)
    latents = z.reshape(len(z), -1).repeat_interleave(steps * len(paths), dim=0)
    images = generate(generator, latents, batch_size, labels=weights)
    return images.unflatten(0, (len(z) * len(paths), steps))
