"""Trained networks rebuilt from checkpoints (read by :mod:`dcgan_lit.checkpoint.io`, ``weights_only=True``).

Everything outside Lightning's own resume (tools, the Python API, exports) loads through here. A standalone
generator file (:func:`save_generator`) has the same layout as a checkpoint, reduced to G's weights and the
hyperparameters that rebuild it, so every loader here reads both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dcgan_lit.checkpoint.io import atomic_torch_save, load_weights, read_weights_only
from dcgan_lit.errors import UserError
from dcgan_lit.model.networks import PAPER, Discriminator, Generator

GENERATOR_KEYS = ("latent_dim", "image_size", "channels", "ngf", "g_activation")  # + class_names: conditional
EXPORT_FORMAT = "dcgan-lit/generator"  # the "format" entry of a standalone generator file


def submodule_state(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``state_dict`` under ``prefix.`` with the prefix removed."""
    return {k[len(prefix) + 1 :]: v for k, v in state_dict.items() if k.startswith(prefix + ".")}


def generator_from_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", prefer_ema: bool = True
) -> Generator:
    """Rebuilds the eval-mode generator of a training checkpoint (its EMA weights when it has them)."""
    checkpoint = load_weights(path)
    hparams = checkpoint.get("hyper_parameters", {})
    return generator_from_state(checkpoint["state_dict"], hparams, prefer_ema, path).to(device)


def generator_from_state(
    state: dict[str, torch.Tensor],
    hparams: dict[str, Any],
    prefer_ema: bool = True,
    source: str | Path = "model",
) -> Generator:
    """Rebuilds the eval-mode generator from a DCGAN state dict and its hyperparameters (EMA weights first)."""
    class_names = checkpoint_classes(hparams)
    generator = Generator(
        latent_dim=hparams.get("latent_dim", PAPER["latent_dim"]),
        image_size=hparams.get("image_size", PAPER["image_size"]),
        channels=hparams.get("channels", PAPER["channels"]),
        ngf=hparams.get("ngf", PAPER["ngf"]),
        activation=hparams.get("g_activation", PAPER["g_activation"]),
        num_classes=len(class_names) or None,
        class_names=class_names,
    )
    weights = submodule_state(state, "generator_ema") if prefer_ema else {}
    load_submodule(generator, weights or submodule_state(state, "generator"), source, "generator")
    return generator.eval()


def checkpoint_classes(hparams: dict[str, Any]) -> list[str]:
    """The class names of a conditional model's checkpoint or generator file ([]: unconditional)."""
    return [str(name) for name in hparams.get("class_names") or []]


def discriminator_from_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Discriminator:
    """Rebuilds the eval-mode discriminator of a training checkpoint."""
    checkpoint = load_weights(path)
    hparams = checkpoint.get("hyper_parameters", {})
    discriminator = Discriminator(
        image_size=hparams.get("image_size", PAPER["image_size"]),
        channels=hparams.get("channels", PAPER["channels"]),
        ndf=hparams.get("ndf", PAPER["ndf"]),
        norm=hparams.get("d_norm", PAPER["d_norm"]),
        num_classes=len(checkpoint_classes(hparams)) or None,
    )
    load_submodule(
        discriminator, submodule_state(checkpoint["state_dict"], "discriminator"), path, "discriminator"
    )
    return discriminator.to(device).eval()


def load_submodule(
    network: torch.nn.Module, weights: dict[str, torch.Tensor], path: Path | str, name: str
) -> None:
    """Loads a network's weights, or says in one line why the checkpoint doesn't hold them."""
    if not weights:
        hint = " (a standalone generator export holds only the generator)" if name == "discriminator" else ""
        raise UserError(
            f"checkpoint {path} holds no {name} weights{hint}; pass a dcgan-lit training checkpoint"
        )
    try:
        network.load_state_dict(weights)
    except RuntimeError as error:
        # torch's message is a header line, then one line per problem: show the first problem
        lines = str(error).strip().splitlines()
        first = lines[min(1, len(lines) - 1)].strip()
        raise UserError(
            f"checkpoint {path}: its {name} weights don't fit the network its hyperparameters describe ({first})"
        ) from None


def generator_hyperparameters(generator: Generator) -> dict[str, Any]:
    """The hyperparameters that rebuild ``generator`` (the checkpoint's names: GENERATOR_KEYS, class_names)."""
    values = (
        generator.latent_dim,
        generator.image_size,
        generator.channels,
        generator.ngf,
        generator.activation,
    )
    hparams = dict(zip(GENERATOR_KEYS, values, strict=True))
    if generator.num_classes:
        hparams.update(conditional=True, class_names=list(generator.class_names))
    return hparams


def save_generator(generator: Generator, path: str | Path) -> Path:
    """Writes a standalone generator file (tensors and plain data only) that every loader here reads back."""
    path = Path(path)
    weights = {
        f"generator.{k}": v.detach().cpu().contiguous().clone() for k, v in generator.state_dict().items()
    }
    export = {
        "format": EXPORT_FORMAT,
        "hyper_parameters": generator_hyperparameters(generator),
        "state_dict": weights,
    }
    atomic_torch_save(export, path)  # a crash mid-write leaves the previous file whole
    return path


def load_module_weights(module: torch.nn.Module, path: str | Path, prefix: str = "") -> torch.nn.Module:
    """Loads a state dict (a plain one, or a checkpoint's ``state_dict`` under ``prefix.``) into ``module``."""
    weights = read_weights_only(path)
    if isinstance(weights, dict) and isinstance(weights.get("state_dict"), dict):
        weights = weights["state_dict"]
    if not isinstance(weights, dict):
        raise UserError(f"checkpoint {path} holds no state dict for a {type(module).__name__}")
    load_submodule(
        module, submodule_state(weights, prefix) if prefix else weights, path, type(module).__name__
    )
    return module
