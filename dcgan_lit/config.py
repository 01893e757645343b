"""Start-up checks of the composed config: one clear line per mistake, before any data are read."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from dcgan_lit.errors import UserError
from dcgan_lit.networks import SUPPORTED_SIZES


def validate(cfg: DictConfig) -> None:
    """Raises :class:`UserError` naming the key, the value and what is allowed."""
    model, data = cfg.model, cfg.dataset
    missing = [f"dataset.{key}" for key in data if OmegaConf.is_missing(data, key)]
    if missing:
        raise UserError(
            f"{', '.join(missing)} must be set (the dataset config leaves it ???); pass it on the command line, "
            f"e.g. {missing[0]}=/path/to/data"
        )
    if model.image_size not in SUPPORTED_SIZES:
        raise UserError(
            f"model.image_size={model.image_size} is not supported; allowed: {list(SUPPORTED_SIZES)}"
        )
    if data.get("channels") not in (1, 3):
        raise UserError(
            f"dataset.channels={data.get('channels')} is not allowed; use 1 (grayscale) or 3 (RGB)"
        )
    if model.channels != data.channels:
        raise UserError(
            f"model.channels={model.channels} does not match dataset.channels={data.channels}; "
            "leave model.channels as ${dataset.channels}"
        )
    for key in ("latent_dim", "ngf", "ndf", "d_steps"):
        if int(model[key]) < 1:
            raise UserError(f"model.{key}={model[key]} must be a positive integer")
    if int(data.batch_size) < 1:
        raise UserError(f"dataset.batch_size={data.batch_size} must be a positive integer")
    for name in ("optimizer_g", "optimizer_d"):
        opt = model.get(name) or {}
        lr = opt.get("lr", 1.0)
        if not lr > 0:
            raise UserError(f"model.{name}.lr={lr} must be positive (the paper uses 2e-4)")
        betas = opt.get("betas", (0.5, 0.999))
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise UserError(
                f"model.{name}.betas={list(betas)} must be two numbers in [0, 1) (the paper: [0.5, 0.999])"
            )
    max_steps = cfg.trainer.get("max_steps", -1)
    if max_steps is not None and max_steps != -1 and max_steps < 1:
        raise UserError(
            f"trainer.max_steps={max_steps} must be -1 (no limit) or a positive number of iterations"
        )
