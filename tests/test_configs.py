"""Every option of every config group composes, and the composed objects instantiate."""

from pathlib import Path

import pytest
from hydra.utils import instantiate

from .conftest import CONF_DIR, compose_config

GROUPS = [
    "model",
    "dataset",
    "accelerator",
    "logger",
    "trainer",
    "callbacks",
    "metrics",
    "paths",
    "debug",
    "experiment",
    "hparams_search",
]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml") if not p.stem.startswith("_"))


CASES = [(group, option) for group in GROUPS for option in options(group)]


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_every_option_composes(group, option, tmp_path):
    extra = ["dataset.path=/some/images"] if option == "imagefolder" else []
    cfg = compose_config([f"{group}={option}", *extra], tmp_path)
    assert cfg.model.image_size in (32, 64, 128, 256)
    assert cfg.dataset.image_size == cfg.model.image_size
    assert cfg.model.channels == cfg.dataset.channels
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"


def test_groups_have_the_documented_options():
    assert options("model") == ["dcgan128", "dcgan256", "dcgan32", "dcgan64"]
    assert {"mnist", "catfaces", "imagefolder"} <= set(options("dataset"))
    assert {"auto", "cpu", "gpu", "mps"} <= set(options("accelerator"))
    assert {"wandb", "csv", "tensorboard", "none"} <= set(options("logger"))
    assert {"catfaces", "mnist"} <= set(options("experiment"))


def test_default_is_dcgan32_on_mnist(tmp_path):
    cfg = compose_config([], tmp_path)
    assert cfg.model.image_size == 32 and cfg.dataset._target_.endswith("MNISTDataModule")
    assert cfg.dataset.channels == 1 and cfg.model.channels == 1
    assert cfg.model.latent_dim == 100 and cfg.dataset.batch_size == 128
    assert cfg.model.optimizer_g.lr == 2e-4 and list(cfg.model.optimizer_d.betas) == [0.5, 0.999]


def test_experiment_catfaces_is_the_paper_setup(tmp_path):
    cfg = compose_config(["experiment=catfaces"], tmp_path)
    assert cfg.model.image_size == 64 and cfg.dataset._target_.endswith("CatFacesDataModule")
    assert cfg.dataset.channels == 3 and cfg.dataset.batch_size == 128


def test_data_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DCGAN_DATA_DIR", "/data/here")
    assert compose_config(["dataset=catfaces"], tmp_path).dataset.path == "/data/here/catfaces"
    monkeypatch.delenv("DCGAN_DATA_DIR")
    assert compose_config(["dataset=catfaces"], tmp_path).dataset.path == "data/catfaces"


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_model_configs_instantiate(size, tmp_path):
    cfg = compose_config([f"model=dcgan{size}", "model.ngf=4", "model.ndf=4"], tmp_path)
    model = instantiate(cfg.model)
    assert model.generator(model.fixed_noise[:1]).shape == (1, 1, size, size)


def test_the_experiment_folder_is_not_empty():
    assert Path(CONF_DIR / "experiment").is_dir() and options("experiment")
