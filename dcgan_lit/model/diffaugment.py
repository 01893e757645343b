"""DiffAugment (Zhao et al. 2020): differentiable color, translation and cutout, on real and fake images alike.

Every operation is built from tensor arithmetic and indexing, so gradients flow through it to G. Images are
(N, C, H, W) in [-1, 1]; each image draws its own random parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5) per image."""
    n = x.size(0)
    x = x + (torch.rand(n, 1, 1, 1, device=x.device) - 0.5)
    gray = x.mean(dim=1, keepdim=True)
    x = (x - gray) * (torch.rand(n, 1, 1, 1, device=x.device) * 2) + gray
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shifts each image by up to ``ratio`` of its size in x and y, filling with zeros."""
    n, _, h, w = x.shape
    max_dy, max_dx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-max_dy, max_dy + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-max_dx, max_dx + 1, (n, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    # Index a one-pixel zero border: sources shifted outside the image land on it.
    source_rows = (rows - dy + 1).clamp(0, h + 1).expand(n, h, w)
    source_cols = (cols - dx + 1).clamp(0, w + 1).expand(n, h, w)
    padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)  # (N, H+2, W+2, C)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded[batch, source_rows, source_cols].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zeroes one square of ``ratio`` times the image size at a random place in each image."""
    n, _, h, w = x.shape
    cut_h, cut_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h - cut_h + 1, (n, 1, 1), device=x.device)
    left = torch.randint(0, w - cut_w + 1, (n, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + cut_h) & (cols >= left) & (cols < left + cut_w)
    return x * (~inside).unsqueeze(1).to(x.dtype)


OPERATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "color": color,
    "translation": translation,
    "cutout": cutout,
}


def parse_policy(policy: str | Iterable[str] | None) -> list[str]:
    """``"color,translation"`` or ``["color", "translation"]`` -> a checked list (empty/None -> [])."""
    if policy is None:
        return []
    names = policy.split(",") if isinstance(policy, str) else list(policy)
    names = [str(name).strip() for name in names if str(name).strip()]
    unknown = [name for name in names if name not in OPERATIONS]
    if unknown:
        raise ValueError(f"augment.policy: unknown operation(s) {unknown}; use any of {list(OPERATIONS)}")
    return names


class DiffAugment(nn.Module):
    """Applies the policy's operations in order; the identity when the policy is empty."""

    def __init__(self, policy: str | Iterable[str] | None = None) -> None:
        super().__init__()
        self.policy = parse_policy(policy)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        for name in self.policy:
            images = OPERATIONS[name](images)
        return images.contiguous() if self.policy else images

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policy) or 'none'}"


class AdaptiveAugment(nn.Module):
    """ADA's answer to a discriminator that memorises (Karras et al., "Training Generative Adversarial Networks
    with Limited Data", 2020) for DiffAugment's operations: each image is augmented with probability ``p``, and
    every ``interval`` iterations ``p`` moves by ``interval x batch / speed_images`` up when D is overconfident on
    the real images (r = E[sign(D(x))] since the last adjustment above ``target``), down when below; p stays in
    [0, 1]. ``p`` and the signs gathered are buffers: saved in checkpoints (an exact resume) and kept on the
    device (no host read)."""

    def __init__(
        self,
        policy: str | Iterable[str],
        target: float = 0.6,
        interval: int = 4,
        speed_images: float = 500_000,
    ) -> None:
        super().__init__()
        self.augment = DiffAugment(policy)
        self.policy = self.augment.policy
        self.target, self.interval, self.speed_images = target, interval, speed_images
        self.register_buffer("p", torch.zeros(()))
        self.register_buffer("signs", torch.zeros(()))
        self.register_buffer("count", torch.zeros(()))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        chosen = torch.rand(images.size(0), 1, 1, 1, device=images.device) < self.p
        return torch.where(chosen, self.augment(images), images)

    @torch.no_grad()
    def observe(self, logits_real: torch.Tensor) -> None:
        """Gathers the signs of D's logits on real images (the overfitting signal r)."""
        self.signs.add_(logits_real.detach().float().sign().sum())
        self.count.add_(logits_real.numel())

    @torch.no_grad()
    def adjust(self, images: int) -> None:
        """Moves ``p`` after ``images`` real images by sign(r - target) x images / speed_images; starts over."""
        r = self.signs / self.count.clamp(min=1)
        self.p.add_(torch.sign(r - self.target) * (images / self.speed_images)).clamp_(0.0, 1.0)
        self.signs.zero_()
        self.count.zero_()

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policy)}, target={self.target}, interval={self.interval}"
