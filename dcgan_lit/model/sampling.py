"""Sampling from a generator: which generator samples (EMA or G), eval mode or frozen parameters for a while,
G(z) in batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn


def sampling_generator(module: nn.Module) -> nn.Module:
    """The generator behind samples, FID and exports: ``module.generator_ema`` when it has one (its BatchNorm
    statistics brought up to date first, with ``ema.recompute_bn``), else G."""
    generator_ema = getattr(module, "generator_ema", None)
    if generator_ema is None:
        return module.generator
    refresh = getattr(module, "refresh_ema_statistics", None)
    if refresh is not None:
        refresh()
    return generator_ema


@contextmanager
def eval_mode(network: nn.Module) -> Iterator[nn.Module]:
    """``network`` in eval mode inside the block (BatchNorm uses its running statistics), then back as it was."""
    was_training = network.training
    network.eval()
    try:
        yield network
    finally:
        network.train(was_training)


@contextmanager
def frozen(network: nn.Module) -> Iterator[nn.Module]:
    """``network``'s parameters gather no gradients inside the block (G's step must not train D), then as they
    were."""
    flags = [p.requires_grad for p in network.parameters()]
    network.requires_grad_(False)
    try:
        yield network
    finally:
        for parameter, flag in zip(network.parameters(), flags, strict=True):
            parameter.requires_grad_(flag)


Progress = Callable[[Iterable, str, int], Iterable]


@torch.no_grad()
def generate_batches(
    generator: nn.Module,
    z: torch.Tensor,
    batch_size: int = 256,
    progress: Progress | None = None,
    description: str = "Generating",
    device: torch.device | str | None = None,
    labels: torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    """G(z) for (N, latent_dim[, 1, 1]) z, ``batch_size`` at a time on G's device: float batches in [-1, 1].

    ``progress(chunks, description, total)`` wraps the loop (a progress bar) when given; ``device`` is where
    the z go (default: where G's parameters are). ``labels`` (a conditional G): class indices (N,) or class
    weights (N, num_classes), split with z.
    """
    device = device or next(generator.parameters()).device
    chunks = z.split(batch_size)
    label_chunks = labels.split(batch_size) if labels is not None else [None] * len(chunks)
    pairs = list(zip(chunks, label_chunks, strict=True))
    for chunk, chunk_labels in progress(pairs, description, len(pairs)) if progress else pairs:
        if chunk_labels is None:
            yield generator(chunk.to(device)).float()
        else:
            yield generator(chunk.to(device), chunk_labels.to(device)).float()


def generate(
    generator: nn.Module,
    z: torch.Tensor,
    batch_size: int = 256,
    progress: Progress | None = None,
    description: str = "Generating",
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """G(z) in batches, all of it: images (N, C, H, W) in [-1, 1] on the CPU (``labels``: a conditional G's)."""
    batches = generate_batches(generator, z, batch_size, progress, description, labels=labels)
    images = [batch.cpu() for batch in batches]
    return torch.cat(images) if images else torch.empty(0)
