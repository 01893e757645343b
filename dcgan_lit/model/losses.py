"""GAN losses on D's logits: the paper's BCE (non-saturating G), hinge and least squares; smoothing for bce/lsgan."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("bce", "hinge", "lsgan")


def check_loss(name: str, label_smoothing: float = 0.0) -> None:
    """Raises ValueError for an unknown loss or a smoothing outside [0, 1) or used with hinge."""
    if name not in LOSSES:
        raise ValueError(f"gan.loss={name!r} is unknown; use one of {list(LOSSES)}")
    if not is_number(label_smoothing) or not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"gan.label_smoothing={label_smoothing} must be in [0, 1) (0.1 is common)")
    if label_smoothing and name == "hinge":
        raise ValueError("gan.label_smoothing applies to gan.loss=bce or lsgan, not hinge (it has no labels)")


def is_number(value) -> bool:
    """An int or float (not a bool, not a string such as a mistyped override)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def discriminator_loss(
    name: str, logits_real: torch.Tensor, logits_fake: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """D's loss (to minimize); one-sided smoothing lowers only the real label to ``1 - label_smoothing``."""
    real_label = 1.0 - label_smoothing
    if name == "bce":
        return bce(logits_real, real_label) + bce(logits_fake, 0.0)
    if name == "hinge":
        return F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean()
    if name == "lsgan":
        return 0.5 * ((logits_real - real_label) ** 2).mean() + 0.5 * (logits_fake**2).mean()
    raise ValueError(f"unknown GAN loss {name!r}")


def generator_loss(name: str, logits_fake: torch.Tensor) -> torch.Tensor:
    """G's loss (to minimize) on D's logits for G(z)."""
    if name == "bce":
        return bce(logits_fake, 1.0)  # non-saturating: maximize log D(G(z))
    if name == "hinge":
        return -logits_fake.mean()
    if name == "lsgan":
        return 0.5 * ((logits_fake - 1.0) ** 2).mean()
    raise ValueError(f"unknown GAN loss {name!r}")


def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Binary cross-entropy of logits against a constant label (1 = real, 0 = fake)."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))
