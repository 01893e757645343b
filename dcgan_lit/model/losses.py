"""GAN losses on D's logits: the paper's BCE (non-saturating G), hinge and least squares; smoothing for bce/lsgan;
and the LeCam regulariser of D."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

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


class LeCam(nn.Module):
    """The LeCam regulariser of D (Tseng et al., "Regularizing Generative Adversarial Networks under Limited Data",
    CVPR 2021): ``weight`` x (mean(relu(D(x) - a_fake)^2) + mean(relu(a_real - D(G(z)))^2)), where a_real and
    a_fake are moving averages (``decay``) of D's mean logit on real and fake images. It keeps D's outputs on the
    two sides from drifting apart, which is how D memorises a small set.

    The averages are buffers: saved in checkpoints (an exact resume) and updated on the device (no host read).
    """

    def __init__(self, weight: float, decay: float = 0.99) -> None:
        super().__init__()
        self.weight = weight
        self.decay = decay
        self.register_buffer("real_anchor", torch.zeros(()))
        self.register_buffer("fake_anchor", torch.zeros(()))

    def forward(self, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            self.real_anchor.lerp_(logits_real.detach().float().mean(), 1 - self.decay)
            self.fake_anchor.lerp_(logits_fake.detach().float().mean(), 1 - self.decay)
        penalty = F.relu(logits_real - self.fake_anchor).pow(2).mean()
        return self.weight * (penalty + F.relu(self.real_anchor - logits_fake).pow(2).mean())


def check_lecam(lecam) -> None:
    """Raises ValueError (one line naming the key) for a ``model.lecam`` setting it does not take."""
    if lecam is None:
        return
    if not hasattr(lecam, "get") or set(lecam) - {"weight", "decay"}:
        raise ValueError(
            f"model.lecam={lecam} must be a mapping of weight and decay (e.g. weight 0.3, decay 0.99)"
        )
    weight, decay = lecam.get("weight", 0.0), lecam.get("decay", 0.99)
    if not is_number(weight) or weight < 0:
        raise ValueError(
            f"model.lecam.weight={weight} must be a number >= 0 (0: off; the paper's runs use 0.1-0.3)"
        )
    if not is_number(decay) or not 0.0 <= decay < 1.0:
        raise ValueError(f"model.lecam.decay={decay} must be in [0, 1) (e.g. 0.99)")
