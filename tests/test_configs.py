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
    "paths",
    "debug",
    "experiment",
    "hparams_search",
    "augment",
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


def test_defaults_are_the_papers_and_options_reach_the_model(tmp_path):
    paper = instantiate(compose_config(["model.ngf=4", "model.ndf=4"], tmp_path).model)
    assert paper.hparams.loss == "bce" and paper.hparams.label_smoothing == 0.0
    assert paper.augment.policy == [] and paper.discriminator.norm == "batch"
    assert not hasattr(paper, "generator_ema")
    overrides = [
        "model.ngf=4",
        "model.ndf=4",
        "gan.loss=lsgan",
        "gan.label_smoothing=0.1",
        "augment=diffaugment",
    ]
    overrides += ["model.d_norm=none", "model.ema.decay=0.99", "model.ema.start_step=7"]
    model = instantiate(compose_config(overrides, tmp_path).model)
    assert model.hparams.loss == "lsgan" and model.hparams.label_smoothing == 0.1
    assert model.augment.policy == ["color", "translation", "cutout"] and model.discriminator.norm == "none"
    assert model.ema_decay == 0.99 and model.ema_start_step == 7 and hasattr(model, "generator_ema")


def test_ttur_learning_rates_and_d_steps_reach_the_model(tmp_path):
    overrides = ["model.ngf=4", "model.ndf=4", "model.optimizer_g.lr=0.0001", "model.optimizer_d.lr=0.0004"]
    model = instantiate(compose_config([*overrides, "model.d_steps=2"], tmp_path).model)
    opt_d, opt_g = model.configure_optimizers()
    assert opt_g.defaults["lr"] == 1e-4 and opt_d.defaults["lr"] == 4e-4
    assert model.hparams.d_steps == 2 and model.optimizer_steps_per_iteration == 3


def test_the_experiment_folder_is_not_empty():
    assert Path(CONF_DIR / "experiment").is_dir() and options("experiment")
