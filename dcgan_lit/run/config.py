"""Start-up checks of the composed config: one clear line per mistake, before any data are read."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from dcgan_lit.errors import UserError, whole_number
from dcgan_lit.model.module import check_options
from dcgan_lit.model.networks import SUPPORTED_SIZES

# The folders a run writes into, as config keys (absent or null entries are skipped).
OUTPUT_KEYS = ("paths.output_dir", "callbacks.model_checkpoint.dirpath", "callbacks.samples.dirpath")


# Config sections that must stay groups of settings (an override such as `model=[1,2]` or `metrics.fid=3`
# would replace one with a value).
SECTIONS = ("dataset", "model", "trainer", "paths", "gan", "augment")
OPTIONAL_SECTIONS = ("callbacks", "logger", "metrics", "metrics.fid")

# Every whole-number setting: key -> (least, most, other values allowed, hint). A key absent from the config is
# not checked. One check for all (errors.whole_number): true/false is never taken for 1/0. The ceilings stop a
# typo such as ngf=640000 from allocating the machine's memory many times over before failing, or
# d_steps=600000000 from spending days inside one iteration, where no max_steps is checked.
NO_LIMIT = "; -1: no limit"
INTEGER_SETTINGS: dict[str, tuple[int | None, int | None, tuple, str]] = {
    "seed": (0, 2**32 - 1, (None,), "; null: no seeding"),
    "model.image_size": (1, None, (), ""),
    "dataset.channels": (1, None, (), ""),  # before model.channels, which follows it
    "model.channels": (1, None, (), ""),
    "model.latent_dim": (1, 4096, (), "; the paper uses 100"),
    "model.ngf": (1, 1024, (), "; the paper uses 64"),
    "model.ndf": (1, 1024, (), "; the paper uses 64"),
    "model.d_steps": (1, 100, (), "; the paper uses 1"),
    "model.num_fixed_samples": (1, 4096, (), "; the default is 64"),
    "model.iterations_per_step": (1, 10_000, (), "; the default is 10"),
    "model.ema.start_step": (0, None, (None,), " iterations"),
    "model.ada.interval": (1, None, (), " iterations between adjustments (ADA's 4)"),
    "model.ada.speed_images": (1, None, (), " images for p to go from 0 to 1 (ADA's 500000)"),
    "dataset.image_size": (1, None, (), ""),  # after model.image_size, which it follows
    "dataset.batch_size": (1, None, (), ""),
    "dataset.subset": (1, None, (None,), " images; null: all of them"),
    "dataset.subset_seed": (0, None, (), ""),
    "trainer.max_steps": (1, None, (-1, None), NO_LIMIT),
    "trainer.max_epochs": (1, None, (-1, None), NO_LIMIT),
    "trainer.log_every_n_steps": (1, None, (), ""),
    "trainer.num_sanity_val_steps": (0, None, (), ""),
    "callbacks.model_checkpoint.every_n_steps": (0, None, (), "; 0: off"),
    "callbacks.model_checkpoint.every_n_epochs": (0, None, (), "; 0: off"),
    "callbacks.model_checkpoint.save_top_k": (-1, None, (), "; -1: all"),
    "callbacks.best_checkpoint.every_n_epochs": (0, None, (), "; 0: off"),
    "callbacks.best_checkpoint.save_top_k": (-1, None, (), "; -1: all"),
    "callbacks.samples.every_n_steps": (0, None, (), "; 0: off"),
    "callbacks.samples.nrow": (1, None, (), ""),
    "callbacks.divergence.check_every_n_steps": (1, None, (), ""),
    "callbacks.divergence.d_wins_window": (1, None, (), ""),
    "callbacks.divergence.d_ahead_window": (1, None, (), ""),
    "callbacks.divergence.collapse_every_n_steps": (0, None, (), "; 0: off"),
    "callbacks.divergence.collapse_patience": (1, None, (), ""),
}


def validate_integers(cfg: DictConfig) -> None:
    """Every setting of :data:`INTEGER_SETTINGS` present in ``cfg`` is a whole number in its range."""
    absent = object()
    for key, (least, most, also, hint) in INTEGER_SETTINGS.items():
        value = OmegaConf.select(cfg, key, default=absent)
        if value is not absent:
            whole_number(key, value, least, most, also, hint)


def validate(cfg: DictConfig) -> None:
    """Raises :class:`UserError` naming the key, the value and what is allowed."""
    validate_top_level(cfg)
    validate_integers(cfg)
    validate_model_and_data(cfg)
    validate_training(cfg)
    for key in OUTPUT_KEYS:
        folder = OmegaConf.select(cfg, key, default=None)
        if folder:
            require_writable(key, folder)


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
    if not isinstance(model.get("conditional", False), bool):
        raise UserError(f"model.conditional={model.conditional} must be true or false")
    if data.get("on_device", "auto") not in (True, False, "auto"):
        raise UserError(f"dataset.on_device={data.on_device} must be true, false or auto")
    # each worker is a process holding a copy of the loader: thousands of them exhaust the memory
    most = max(4 * (os.cpu_count() or 1), 8)
    hint = "; 0 loads in the main process, the most is 4 per CPU core"
    whole_number("dataset.num_workers", data.get("num_workers", 0), 0, most, hint=hint)
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
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None and not isinstance(ckpt_path, str):
        raise UserError(f"ckpt_path={ckpt_path} must be a .ckpt file, 'last', or null")


def validate_training(cfg: DictConfig) -> None:
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
            plain(model.get("lecam")),
            plain(model.get("ada")),
        )
    except ValueError as error:
        raise UserError(str(error)) from None
