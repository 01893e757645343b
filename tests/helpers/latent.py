"""The latent tools' pixel arithmetic: grid tiles and G(z) without gradients."""

from __future__ import annotations

import torch

TILE = 34  # a 32-pixel image plus torchvision's 2-pixel grid padding


def g(generator, z):
    with torch.no_grad():
        return generator(z)
