"""The Python API for a trained DCGAN: load G or D, sample, turn images into PIL images or a PNG grid.

import dcgan_lit
generator = dcgan_lit.load_generator("outputs/train/.../checkpoints/last.ckpt")  # eval mode
images = generator.sample(16, seed=0)             # (16, channels, image_size, image_size) in [-1, 1]
dcgan_lit.save_grid(images, "grid.png", nrow=4)
dcgan_lit.to_pil(images)[0].save("first.png")
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from dcgan_lit.checkpoint.load import discriminator_from_checkpoint, generator_from_checkpoint
from dcgan_lit.errors import UserError
from dcgan_lit.model.networks import Discriminator, Generator
from dcgan_lit.pixels import to_uint8


def pick_device(name: str | torch.device) -> torch.device:
    """``auto`` is CUDA when available, else CPU; anything else is passed to torch."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"device={name!r} is not a torch device; use auto, cpu, cuda or cuda:N") from None


def load_generator(path: str | Path, device: str | torch.device = "cpu", ema: bool = True) -> Generator:
    """The eval-mode generator of a training checkpoint or a standalone export (``weights_only`` loading).

    ``device``: a torch device, or ``auto`` (CUDA when available).

    ``ema=True`` takes the checkpoint's EMA weights (``generator_ema.*``) when it has them. The result has
    ``latent_dim``, ``image_size`` and ``channels`` and samples with ``generator.sample(n, seed=...)``.
    """
    return generator_from_checkpoint(path, device=pick_device(device), prefer_ema=ema)


def load_discriminator(path: str | Path, device: str | torch.device = "cpu") -> Discriminator:
    """The eval-mode discriminator of a training checkpoint, e.g. for ``discriminator.features(images)``."""
    return discriminator_from_checkpoint(path, device=pick_device(device))


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """One PIL image (``L`` or ``RGB``) per image of a (N, C, H, W) batch in [-1, 1]; (C, H, W) gives one."""
    if images.dim() == 3:
        images = images[None]
    if images.dim() != 4 or images.size(1) not in (1, 3):
        raise ValueError(f"to_pil takes (N, 1|3, H, W) images in [-1, 1], got shape {tuple(images.shape)}")
    arrays = to_uint8(images).cpu().permute(0, 2, 3, 1).numpy()
    if images.size(1) == 1:
        return [Image.fromarray(array[..., 0], "L") for array in arrays]
    return [Image.fromarray(array, "RGB") for array in arrays]


def grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = -1.0) -> torch.Tensor:
    """Images in [-1, 1] tiled ``nrow`` to a row as one (3, H, W) image in [-1, 1] on the CPU; ``pad_value`` is
    the colour between tiles (-1 black, 1 white)."""
    from torchvision.utils import make_grid  # importing torchvision loads all its models: only when needed

    return make_grid(images.detach().float().cpu(), nrow=nrow, padding=padding, pad_value=pad_value)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 8) -> Path:
    """Writes images in [-1, 1] as one PNG grid of ``nrow`` images per row and returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_pil(grid(images, nrow))[0].save(path)
    return path
