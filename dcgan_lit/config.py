"""Start-up checks of the composed config: one clear line per mistake, before any data are read."""

from __future__ import annotations

from omegaconf import DictConfig

from dcgan_lit.augment import parse_policy
from dcgan_lit.errors import UserError
from dcgan_lit.losses import check_loss
from dcgan_lit.networks import D_NORMS, SUPPORTED_SIZES


def validate(cfg: DictConfig) -> None:
    """Raises :class:`UserError` naming the key, the value and what is allowed."""
    model, data = cfg.model, cfg.dataset
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
    validate_small_data_options(model)
    max_steps = cfg.trainer.get("max_steps", -1)
    if max_steps is not None and max_steps != -1 and max_steps < 1:
        raise UserError(
            f"trainer.max_steps={max_steps} must be -1 (no limit) or a positive number of iterations"
        )


def validate_small_data_options(model: DictConfig) -> None:
    """Loss, label smoothing, D normalisation, DiffAugment policy and EMA decay (issue 9's options)."""
    try:
        check_loss(model.get("loss", "bce"), float(model.get("label_smoothing", 0.0)))
        parse_policy(model.get("augment_policy"))
    except ValueError as error:
        raise UserError(str(error)) from None
    if model.get("d_norm", "batch") not in D_NORMS:
        raise UserError(f"model.d_norm={model.d_norm} is unknown; use one of {list(D_NORMS)}")
    decay = (model.get("ema") or {}).get("decay")
    if decay is not None and not 0.0 <= float(decay) < 1.0:
        raise UserError(f"model.ema.decay={decay} must be in [0, 1) (e.g. 0.999), or null to switch EMA off")
