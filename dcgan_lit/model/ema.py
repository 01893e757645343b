"""An exponential moving average of the generator: its weights and its BatchNorm running statistics."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn


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
def update_ema(ema: nn.Module, module: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * module for weights and float buffers; integer buffers are copied."""
    ema_float, ema_other = ema_tensors(ema)
    float_, other = ema_tensors(module)
    get_ema_multi_avg_fn(decay)(ema_float, [t.detach() for t in float_], None)
    for target, source in zip(ema_other, other, strict=True):
        target.copy_(source)


@torch.no_grad()
def copy_into(ema: nn.Module, module: nn.Module) -> None:
    """ema <- module exactly (before ``start_step`` the average just follows the generator)."""
    update_ema(ema, module, decay=0.0)
