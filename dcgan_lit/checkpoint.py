"""Safe loading of trained networks from Lightning checkpoints: ``weights_only=True``, never arbitrary pickles.

Everything outside Lightning's own resume (tools, the Python API, exports) loads through here.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from dcgan_lit.errors import UserError
from dcgan_lit.networks import Discriminator, Generator

GENERATOR_KEYS = ("latent_dim", "image_size", "channels", "ngf", "g_activation")


def load_weights(path: str | Path) -> dict[str, Any]:
    """Reads a checkpoint with ``torch.load(weights_only=True)``; one clear line when it can't be read."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"checkpoint {path}: no such file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(
            f"checkpoint {path} was refused: it holds objects other than tensors and plain data ({first}). "
            "Only load checkpoints you trust; dcgan-lit never unpickles arbitrary objects"
        ) from None
    except Exception as error:
        raise UserError(
            f"checkpoint {path} is corrupt or not a PyTorch checkpoint ({type(error).__name__})"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UserError(f"checkpoint {path} has no 'state_dict'; is it a dcgan-lit Lightning checkpoint?")
    return checkpoint


def submodule_state(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``state_dict`` under ``prefix.`` with the prefix removed."""
    return {k[len(prefix) + 1 :]: v for k, v in state_dict.items() if k.startswith(prefix + ".")}


def generator_from_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", prefer_ema: bool = True
) -> Generator:
    """Rebuilds the eval-mode generator of a training checkpoint (its EMA weights when it has them)."""
    checkpoint = load_weights(path)
    hparams = checkpoint.get("hyper_parameters", {})
    generator = Generator(
        latent_dim=hparams.get("latent_dim", 100),
        image_size=hparams.get("image_size", 64),
        channels=hparams.get("channels", 3),
        ngf=hparams.get("ngf", 64),
        activation=hparams.get("g_activation", "relu"),
    )
    state = checkpoint["state_dict"]
    weights = submodule_state(state, "generator_ema") if prefer_ema else {}
    generator.load_state_dict(weights or submodule_state(state, "generator"))
    return generator.to(device).eval()


def discriminator_from_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Discriminator:
    """Rebuilds the eval-mode discriminator of a training checkpoint."""
    checkpoint = load_weights(path)
    hparams = checkpoint.get("hyper_parameters", {})
    discriminator = Discriminator(
        image_size=hparams.get("image_size", 64),
        channels=hparams.get("channels", 3),
        ndf=hparams.get("ndf", 64),
    )
    discriminator.load_state_dict(submodule_state(checkpoint["state_dict"], "discriminator"))
    return discriminator.to(device).eval()
