"""Start-up checks of the composed config: one clear line per mistake, before any data are read."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from dcgan_lit.errors import UserError
from dcgan_lit.model.module import check_options
from dcgan_lit.model.networks import SUPPORTED_SIZES

# The folders a run writes into, as config keys (absent or null entries are skipped).
OUTPUT_KEYS = ("paths.output_dir", "callbacks.model_checkpoint.dirpath", "callbacks.samples.dirpath")


# Config sections that must stay groups of settings (an override such as `model=[1,2]` or `metrics.fid=3`
# would replace one with a value).
SECTIONS = ("dataset", "model", "trainer", "paths", "gan", "augment")
OPTIONAL_SECTIONS = ("callbacks", "logger", "metrics", "metrics.fid")

MODEL_LIMITS = {
    "latent_dim": (4096, 100),
    "ngf": (1024, 64),
    "ndf": (1024, 64),
    "d_steps": (100, 1),
    "num_fixed_samples": (4096, 64),
}


def validate(cfg: DictConfig) -> None:
    """Raises :class:`UserError` naming the key, the value and what is allowed."""
    validate_top_level(cfg)
    validate_model_and_data(cfg)
    validate_training(cfg)
    for key in OUTPUT_KEYS:
        folder = OmegaConf.select(cfg, key, default=None)
        if folder:
            require_writable(key, folder)


def positive_int(key: str, value) -> int:
    """``value`` as an int >= 1, or one line naming ``key``."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1 or number != value:
        raise UserError(f"{key}={value} must be a positive integer")
    return number


def validate_model_and_data(cfg: DictConfig) -> None:
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
    if data.get("image_size", model.image_size) != model.image_size:
        raise UserError(
            f"dataset.image_size={data.image_size} does not match model.image_size={model.image_size}; "
            "leave dataset.image_size as ${model.image_size}"
        )
    # Positive integers, each with a ceiling: a typo such as ngf=640000 would try to allocate the machine's
    # memory many times over before failing, and d_steps=600000000 would spend days inside one iteration,
    # where no max_steps is checked. (key: (most, the paper's value))
    for key, (most, paper) in MODEL_LIMITS.items():
        if key in model and positive_int(f"model.{key}", model[key]) > most:
            raise UserError(f"model.{key}={model[key]} is larger than {most}; the paper uses {paper}")
    if not isinstance(model.get("conditional", False), bool):
        raise UserError(f"model.conditional={model.conditional} must be true or false")
    positive_int("dataset.batch_size", data.batch_size)
    workers, most = data.get("num_workers", 0), max(4 * (os.cpu_count() or 1), 8)
    if not (isinstance(workers, int) and not isinstance(workers, bool) and 0 <= workers <= most):
        # each worker is a process holding a copy of the loader: thousands of them exhaust the memory
        raise UserError(
            f"dataset.num_workers={workers} must be an integer from 0 (load in the main process) to {most} "
            f"(4 per CPU core here)"
        )
    for name in ("optimizer_g", "optimizer_d"):
        opt = model.get(name) or {}
        lr = opt.get("lr", 1.0)
        if not (isinstance(lr, (int, float)) and lr > 0):
            raise UserError(f"model.{name}.lr={lr} must be positive (the paper uses 2e-4)")
        betas = opt.get("betas", (0.5, 0.999))
        if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
            raise UserError(
                f"model.{name}.betas={list(betas)} must be two numbers in [0, 1) (the paper: [0.5, 0.999])"
            )
    validate_small_data_options(model)


def validate_top_level(cfg: DictConfig) -> None:
    for key in (*SECTIONS, *OPTIONAL_SECTIONS):
        value = OmegaConf.select(cfg, key, default=None)
        if not (isinstance(value, DictConfig) or (value is None and key in OPTIONAL_SECTIONS)):
            raise UserError(
                f"{key}={value} is not a group of settings; set its keys ({key}.<name>=...) or pick an option "
                f"of its config group"
            )
    seed = cfg.get("seed")
    if seed is not None and not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**32):
        raise UserError(f"seed={seed} must be an integer in [0, 2^32) or null (no seeding)")
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None and not isinstance(ckpt_path, str):
        raise UserError(f"ckpt_path={ckpt_path} must be a .ckpt file, 'last', or null")


def validate_training(cfg: DictConfig) -> None:
    max_steps = cfg.trainer.get("max_steps", -1)
    if max_steps is not None and max_steps != -1 and not (isinstance(max_steps, int) and max_steps >= 1):
        raise UserError(
            f"trainer.max_steps={max_steps} must be -1 (no limit) or a positive number of iterations"
        )
    every = OmegaConf.select(cfg, "callbacks.model_checkpoint.every_n_steps", default=0)
    if not (isinstance(every, int) and every >= 0):
        raise UserError(
            f"callbacks.model_checkpoint.every_n_steps={every} must be 0 (off) or a positive number of iterations"
        )
    action = OmegaConf.select(cfg, "callbacks.divergence.action", default="warn")
    if action not in ("warn", "stop"):
        raise UserError(f"callbacks.divergence.action={action} is not allowed; use warn or stop")


def require_writable(key: str, folder: str | Path) -> None:
    """Creates ``folder`` and writes a probe file there, or raises one line naming ``key``."""
    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UserError(
            f"{key}={folder} is not a writable folder ({error.strerror or type(error).__name__}); "
            "choose another (the run folder: hydra.run.dir=...)"
        ) from None


def plain(value: object) -> object:
    """A config node as plain, resolved Python containers (anything else as it is)."""
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def validate_small_data_options(model: DictConfig) -> None:
    """Loss, label smoothing, D normalisation, DiffAugment policy and EMA decay: the model's own checks."""
    try:
        check_options(
            model.get("loss", "bce"),
            model.get("label_smoothing", 0.0),
            model.get("d_norm", "batch"),
            model.get("augment_policy"),
            plain(model.get("ema")),
        )
    except ValueError as error:
        raise UserError(str(error)) from None
