"""The repository's paths, the tiny training overrides, and configs composed as the commands compose them."""

from __future__ import annotations

import os
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "conf"

TINY = [
    "model=dcgan32",
    "model.ngf=8",
    "model.ndf=8",
    "model.num_fixed_samples=16",
    "dataset.batch_size=8",
    "logger=csv",
    "accelerator=cpu",
    "trainer.log_every_n_steps=1",
    "callbacks.progress=null",
    "callbacks.samples.every_n_steps=2",
    "metrics=none",  # no FID weights offline; the metrics tests use metrics=tiny
]


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


def compose_tool(name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """A post-training tool's config (conf/tools/<name>.yaml) as ``python -m dcgan_lit.tools.<name>`` would see it."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=f"tools/{name}", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    GlobalHydra.instance().clear()
    return cfg


def real_data_dir() -> Path | None:
    """DCGAN_DATA_DIR when it names a folder, else None."""
    value = os.environ.get("DCGAN_DATA_DIR")
    return Path(value) if value and Path(value).is_dir() else None
