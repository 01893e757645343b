"""Pixel conversion between the networks' [-1, 1] floats and uint8 images: one rounding rule for everything.

Floats round as torchvision's ``save_image`` rounds (``x * 127.5 + 127.5``, then ``+ 0.5`` and truncation), so
the uint8 pixels scored by FID, shown in grids and written to PNG files are the same numbers.
"""

from __future__ import annotations

import torch


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> uint8 in [0, 255] on the same device; uint8 input is returned as it is."""
    if images.dtype == torch.uint8:
        return images
    return images.detach().float().add(1).mul_(127.5).add_(0.5).clamp_(0, 255).to(torch.uint8)


def from_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [-1, 1] on the same device, as training sees them."""
    assert images.dtype == torch.uint8, f"from_uint8 takes uint8 images, got {images.dtype}"
    return images.float().div_(127.5).sub_(1.0)


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """(N, 1|3, H, W) -> (N, 3, H, W): gray replicated to three channels (a view, no copy)."""
    return images.expand(-1, 3, -1, -1) if images.size(1) == 1 else images
