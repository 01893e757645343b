"""Safe loading of trained networks from Lightning checkpoints: ``weights_only=True``, never arbitrary pickles.

Everything outside Lightning's own resume (tools, the Python API, exports) loads through here. A standalone
generator file (:func:`save_generator`) has the same layout as a checkpoint, reduced to G's weights and the
hyperparameters that rebuild it, so every loader here reads both.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from dcgan_lit.errors import UserError
from dcgan_lit.networks import Discriminator, Generator

GENERATOR_KEYS = ("latent_dim", "image_size", "channels", "ngf", "g_activation")
EXPORT_FORMAT = "dcgan-lit/generator"  # the "format" entry of a standalone generator file


def refusal(error: pickle.UnpicklingError) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in one line.

    torch's first line is generic advice (to load with weights_only=False); the blocked global, or the
    unsupported pickle operand (raw bytes of a damaged file, or a newer pickle protocol), says why.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    blocked = next((line for line in lines if "GLOBAL" in line), None)
    if blocked:
        return f"it holds objects other than tensors and plain data ({blocked})"
    detail = next((line for line in lines if line.startswith("Unsupported")), type(error).__name__)
    return (
        f"it is corrupt or not a PyTorch file, or holds objects other than tensors and plain data ({detail})"
    )


def torch_load_weights_only(path: Path, what: str, noun: str, advice: str) -> Any:
    """``torch.load(path, weights_only=True)``; a refused or unreadable file is one line naming ``what``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UserError(f"{what} {path} was refused: {refusal(error)}{advice}") from None
    except Exception as error:
        raise UserError(
            f"{what} {path} is corrupt or not a PyTorch {noun} ({type(error).__name__})"
        ) from None


def load_state_dict_file(path: str | Path, what: str = "weights file") -> dict[str, Any]:
    """Reads a plain tensor file (e.g. third-party network weights) with ``weights_only=True``."""
    path = Path(path).expanduser()
    state = torch_load_weights_only(path, what, "file", "; use a file with only a state_dict")
    if not isinstance(state, dict):
        raise UserError(f"{what} {path} is not a state_dict (found {type(state).__name__})")
    return state


def read_weights_only(path: str | Path) -> Any:
    """Any tensors-only file read with ``torch.load(weights_only=True)``; one clear line when it can't be read."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"checkpoint {path}: no such file")
    refuse_other_exports(path)
    advice = ". Only load checkpoints you trust; dcgan-lit never unpickles arbitrary objects"
    return torch_load_weights_only(path, "checkpoint", "checkpoint", advice)


def load_weights(path: str | Path) -> dict[str, Any]:
    """Reads a checkpoint with ``torch.load(weights_only=True)``; one clear line when it can't be read."""
    checkpoint = read_weights_only(path)
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
    return generator_from_state(checkpoint["state_dict"], hparams, prefer_ema, path).to(device)


def generator_from_state(
    state: dict[str, torch.Tensor],
    hparams: dict[str, Any],
    prefer_ema: bool = True,
    source: str | Path = "model",
) -> Generator:
    """Rebuilds the eval-mode generator from a DCGAN state dict and its hyperparameters (EMA weights first)."""
    generator = Generator(
        latent_dim=hparams.get("latent_dim", 100),
        image_size=hparams.get("image_size", 64),
        channels=hparams.get("channels", 3),
        ngf=hparams.get("ngf", 64),
        activation=hparams.get("g_activation", "relu"),
    )
    weights = submodule_state(state, "generator_ema") if prefer_ema else {}
    load_submodule(generator, weights or submodule_state(state, "generator"), source, "generator")
    return generator.eval()


def discriminator_from_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Discriminator:
    """Rebuilds the eval-mode discriminator of a training checkpoint."""
    checkpoint = load_weights(path)
    hparams = checkpoint.get("hyper_parameters", {})
    discriminator = Discriminator(
        image_size=hparams.get("image_size", 64),
        channels=hparams.get("channels", 3),
        ndf=hparams.get("ndf", 64),
        norm=hparams.get("d_norm", "batch"),
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


def refuse_other_exports(path: Path) -> None:
    """TorchScript and ONNX exports are not checkpoints: say how to load them instead."""
    if path.suffix == ".onnx":
        raise UserError(
            f"{path} is an ONNX graph; run it with onnxruntime (see README, Export), not load_generator"
        )
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if any(name.split("/", 1)[-1].startswith("code/") for name in archive.namelist()):
                raise UserError(
                    f"{path} is a TorchScript export; load it with torch.jit.load({str(path)!r}) "
                    "and sample with .sample(n, seed)"
                )


def generator_hyperparameters(generator: Generator) -> dict[str, Any]:
    """The hyperparameters that rebuild ``generator`` (the checkpoint's names, GENERATOR_KEYS)."""
    values = (
        generator.latent_dim,
        generator.image_size,
        generator.channels,
        generator.ngf,
        generator.activation,
    )
    return dict(zip(GENERATOR_KEYS, values, strict=True))


def save_generator(generator: Generator, path: str | Path) -> Path:
    """Writes a standalone generator file (tensors and plain data only) that every loader here reads back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = {f"generator.{k}": v.detach().cpu().clone() for k, v in generator.state_dict().items()}
    export = {
        "format": EXPORT_FORMAT,
        "hyper_parameters": generator_hyperparameters(generator),
        "state_dict": weights,
    }
    torch.save(export, path)
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
