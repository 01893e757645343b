"""An exponential moving average of the generator: its weights and its BatchNorm running statistics."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn, update_bn

# Recomputing a generator's BatchNorm statistics: this many fresh samples, drawn from a fixed seed so that the
# statistics depend only on the weights (a resumed run recomputes exactly what an uninterrupted one does).
BATCH_NORM_SAMPLES = 2048
BATCH_NORM_BATCH = 256


def make_ema(module: nn.Module) -> nn.Module:
    """A frozen eval-mode copy of ``module`` to hold its average (same state_dict keys as the module)."""
    ema = copy.deepcopy(module).eval()
    ema.requires_grad_(False)
    return ema


def ema_tensors(module: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(floating-point parameters and buffers, the other buffers such as BatchNorm's num_batches_tracked)."""
    tensors = [*module.parameters(), *module.buffers()]
    floating = [t for t in tensors if t.is_floating_point()]
    return floating, [t for t in tensors if not t.is_floating_point()]


@torch.no_grad()
def update_ema(ema: nn.Module, module: nn.Module, decay: float | torch.Tensor) -> None:
    """ema <- decay * ema + (1 - decay) * module for weights and float buffers; integer buffers are copied.

    ``decay`` may be a 0-dim tensor on the networks' device (:func:`decay_at`): then nothing is read back to the
    host, and every call runs the same operations whatever its value."""
    ema_float, ema_other = ema_tensors(ema)
    float_, other = ema_tensors(module)
    current = [t.detach() for t in float_]
    if isinstance(decay, torch.Tensor):
        # one weight tensor per tensor: a tensor passed where torch takes a scalar is read back to the host
        weight = (1 - decay).to(ema_float[0].dtype)
        torch._foreach_lerp_(ema_float, current, [weight] * len(ema_float))
    else:
        get_ema_multi_avg_fn(decay)(ema_float, current, None)
    for target, source in zip(ema_other, other, strict=True):
        target.copy_(source)


def decay_at(decay: float, iteration: torch.Tensor | int, warmup: bool, start_step: int = 0) -> torch.Tensor:
    """The decay of the update after ``iteration`` iterations, as a tensor where ``iteration`` is: 0 before
    ``start_step`` (the average follows G exactly), then ``decay``, or with ``warmup`` min(decay, (1 + t) / (10 +
    t)) for the t iterations since ``start_step`` (TensorFlow's ExponentialMovingAverage with num_updates, so that
    an early average does not lag behind G's fast first steps). Computed on ``iteration``'s device: no host read,
    the same operations in every phase."""
    t = torch.as_tensor(iteration, dtype=torch.float32) - start_step
    value = torch.clamp((1 + t) / (10 + t), max=decay) if warmup else torch.full_like(t, decay)
    return torch.where(t < 0, torch.zeros_like(t), value)


@torch.no_grad()
def recompute_batch_norm(generator: nn.Module, latent_dim: int) -> None:
    """Replaces ``generator``'s BatchNorm running statistics by those of its own activations on
    :data:`BATCH_NORM_SAMPLES` fixed latents (SWA's ``update_bn``): averaged weights need statistics of their
    own, not an average of G's statistics. The train/eval mode and the global RNG are left as they were."""
    device = next(generator.parameters()).device
    seeded = torch.Generator().manual_seed(0)
    latents = [
        torch.randn(BATCH_NORM_BATCH, latent_dim, 1, 1, generator=seeded).to(device)
        for _ in range(BATCH_NORM_SAMPLES // BATCH_NORM_BATCH)
    ]
    update_bn(latents, generator)
