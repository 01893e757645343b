"""Every option of every config group composes, and the composed objects instantiate."""

from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from dcgan_lit.run.config import validate
from tests.helpers.config import CONF_DIR, compose_config

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
    "augment",
    "recipe",
]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml") if not p.stem.startswith("_"))


CASES = [(group, option) for group in GROUPS for option in options(group)]


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_every_option_composes(group, option, tmp_path):
    cfg = compose_config([f"{group}={option}"], tmp_path)
    if OmegaConf.is_missing(cfg.dataset, "path"):  # imagefolder and video leave it ???
        cfg = compose_config([f"{group}={option}", "dataset.path=/some/images"], tmp_path)
    assert cfg.hydra.runtime.choices[group] == option
    # every interpolation resolves (a dangling ${...} raises here), and start-up validation accepts it
    for key in cfg:
        if key != "hydra" and OmegaConf.is_config(cfg[key]):
            OmegaConf.to_container(cfg[key], resolve=True)
    validate(cfg)
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"


def test_groups_have_the_documented_options():
    assert options("model") == ["dcgan128", "dcgan256", "dcgan32", "dcgan64"]
    assert {
        "mnist",
        "catfaces",
        "imagefolder",
        "cifar10",
        "video",
        "pokemon",
        "monet",
        "celeba",
        "lsun",
    } <= set(options("dataset"))
    assert {"auto", "cpu", "gpu", "mps"} <= set(options("accelerator"))
    assert {"wandb", "csv", "tensorboard", "none"} <= set(options("logger"))
    assert {
        "catfaces",
        "mnist",
        "pegasus",
        "jellyfish",
        "pokemon",
        "monet64",
        "monet128",
        "monet256",
        "celeba64",
        "paper_lsun",
        "cifar10_best",
        "pokemon_plus",
        "monet_plus",
    } <= set(options("experiment"))
    assert options("recipe") == ["fast_ema", "paper", "small_ada"]


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


def test_the_fast_ema_recipe_goes_on_any_dataset_and_the_command_line_wins(tmp_path):
    paper = compose_config(["dataset=catfaces", "model=dcgan64"], tmp_path)
    fast = compose_config(["dataset=catfaces", "model=dcgan64", "recipe=fast_ema"], tmp_path)
    assert paper.model.optimizer_g.lr == paper.model.optimizer_d.lr == 2e-4 and paper.model.ema.decay is None
    assert fast.model.optimizer_g.lr == fast.model.optimizer_d.lr == 4e-4
    assert fast.model.ema.decay == 0.999 and fast.model.ema.warmup and fast.model.ema.recompute_bn
    # only the training changes: the data, the networks and the loss stay the paper's
    assert fast.dataset == paper.dataset and fast.gan == paper.gan and fast.model.d_norm == "batch"
    assert list(fast.model.optimizer_g.betas) == [0.5, 0.999]
    # the small-data experiments bring it, and recipe=paper on the command line takes it back out
    plus = compose_config(["experiment=pokemon_plus"], tmp_path)
    assert plus.model.ema == fast.model.ema and plus.model.optimizer_d == fast.model.optimizer_d
    back = compose_config(["experiment=pokemon_plus", "recipe=paper"], tmp_path)
    assert back.model.ema.decay is None and back.model.optimizer_g.lr == 2e-4 and back.dataset.hflip
    assert (
        back.gan.label_smoothing == 0.0 and list(back.augment.policy) == [] and back.model.ada.target is None
    )
    one_key = compose_config(["recipe=fast_ema", "model.optimizer_g.lr=0.001"], tmp_path)
    assert one_key.model.optimizer_g.lr == 0.001 and one_key.model.optimizer_d.lr == 4e-4


def test_the_small_ada_recipe_is_the_benchmark_row_it_was_measured_as_on_any_dataset(tmp_path):
    """recipe=small_ada composes exactly what the quality benchmark's `small_ada` row trained (its overrides
    in conf/benchmarks/quality.yaml), on any dataset; a key on the command line still wins."""
    row = OmegaConf.load(CONF_DIR / "benchmarks" / "quality.yaml").recipes.small_ada
    base = ["dataset=catfaces", "model=dcgan64"]
    recipe = compose_config([*base, "recipe=small_ada"], tmp_path)
    spelled_out = compose_config([*base, *row], tmp_path)

    def settings(cfg):  # all but Hydra's own record of the command line
        return {k: v for k, v in OmegaConf.to_container(cfg).items() if k != "hydra"}

    assert settings(recipe) == settings(spelled_out)
    assert recipe.model.ada.target == 0.6
    assert list(recipe.augment.policy) == ["color", "translation", "cutout"]
    assert recipe.model.optimizer_g.lr == 4e-4 and recipe.model.ema.decay == 0.999 and recipe.dataset.hflip
    one_key = compose_config([*base, "recipe=small_ada", "model.ada.target=0.5"], tmp_path)
    assert one_key.model.ada.target == 0.5 and one_key.gan.label_smoothing == 0.1


def test_ttur_learning_rates_and_d_steps_reach_the_model(tmp_path):
    overrides = ["model.ngf=4", "model.ndf=4", "model.optimizer_g.lr=0.0001", "model.optimizer_d.lr=0.0004"]
    model = instantiate(compose_config([*overrides, "model.d_steps=2"], tmp_path).model)
    opt_d, opt_g = model.configure_optimizers()
    assert opt_g.defaults["lr"] == 1e-4 and opt_d.defaults["lr"] == 4e-4
    assert model.hparams.d_steps == 2 and model.optimizer_steps_per_iteration == 3


def test_the_experiment_folder_is_not_empty():
    assert Path(CONF_DIR / "experiment").is_dir() and options("experiment")


# (experiment, expected settings as dotted keys) -- what each replication promises in the README
EXPERIMENT_SETTINGS = {
    "pegasus": {
        "dataset._target_": "dcgan_lit.data.CIFAR10DataModule",
        "dataset.classes": ["horse", "bird"],
        "model.image_size": 32,
        "dataset.batch_size": 16,
        "model.g_activation": "leaky_relu",
    },
    "jellyfish": {
        "dataset._target_": "dcgan_lit.data.VideoDataModule",
        "model.image_size": 32,
        "dataset.num_frames": 10000,
        "dataset.symmetries": "all",
        "dataset.per_image_normalize": True,
    },
    "pokemon": {"dataset._target_": "dcgan_lit.data.PokemonDataModule", "model.image_size": 64},
    "monet64": {
        "dataset._target_": "dcgan_lit.data.MonetDataModule",
        "model.image_size": 64,
        "dataset.batch_size": 25,
    },
    "monet128": {
        "dataset._target_": "dcgan_lit.data.MonetDataModule",
        "model.image_size": 128,
        "dataset.batch_size": 16,
    },
    "monet256": {
        "dataset._target_": "dcgan_lit.data.MonetDataModule",
        "model.image_size": 256,
        "dataset.batch_size": 10,
    },
    "celeba64": {
        "dataset._target_": "dcgan_lit.data.CelebADataModule",
        "model.image_size": 64,
        "dataset.crop_size": 108,
    },
    "paper_lsun": {
        "dataset._target_": "dcgan_lit.data.LSUNDataModule",
        "dataset.category": "bedroom_train",
        "model.image_size": 64,
        "dataset.batch_size": 128,
    },
    "mnist": {
        "dataset._target_": "dcgan_lit.data.MNISTDataModule",
        "model.image_size": 32,
        "dataset.hflip": False,
    },
    "catfaces": {
        "dataset._target_": "dcgan_lit.data.CatFacesDataModule",
        "model.image_size": 64,
        "dataset.hflip": True,
    },
}


@pytest.mark.parametrize("name", sorted(EXPERIMENT_SETTINGS))
def test_experiment_settings(name, tmp_path):
    cfg = compose_config([f"experiment={name}"], tmp_path)
    for key, expected in EXPERIMENT_SETTINGS[name].items():
        value = OmegaConf.select(cfg, key)
        value = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
        assert value == expected, key
    assert cfg.model.latent_dim == 100 and cfg.model.optimizer_g.lr == 2e-4  # the paper's, everywhere
