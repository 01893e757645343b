"""Every conf/experiment/*.yaml composes and trains 2 iterations on tiny data in its dataset's real format.

The cases are the files of the folder, so an experiment is tested the day it is added; one whose dataset has
no writer below fails until one is added.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lit.run.fit import train
from tests.helpers.config import CONF_DIR, compose_config
from tests.helpers.fake_data import write_celeba, write_cifar10, write_idx, write_lsun, write_video
from tests.helpers.images import write_images

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))

RUN = [
    "model.ngf=8",
    "model.ndf=8",
    "model.num_fixed_samples=4",
    "dataset.batch_size=4",
    "logger=csv",
    "accelerator=cpu",
    "trainer.max_steps=2",
    "trainer.log_every_n_steps=1",
    "callbacks.progress=null",
    "callbacks.samples.every_n_steps=1",
    "metrics=none",  # the experiments' FID would score thousands of fakes with the real Inception on CPU
]


def write_dataset(dataset, monkeypatch) -> None:
    """Writes a few images where the composed dataset config looks for them, in that source's own format."""
    kind = dataset._target_.rsplit(".", 1)[-1]
    if kind == "MNISTDataModule":
        digits = torch.randint(0, 256, (8, 28, 28)).numpy()
        write_idx(Path(dataset.root) / "MNIST" / "raw", digits, digits[:, 0, 0] % 10)
    elif kind in ("ImageFolderDataModule", "CatFacesDataModule", "MonetDataModule") and dataset.get(
        "classes"
    ):
        for seed, name in enumerate(dataset.classes):  # class subfolders, as CIFAR-10's train/<class>/
            write_images(Path(dataset.path) / str(name), 4, size=(32, 32), seed=seed)
    elif kind in ("ImageFolderDataModule", "CatFacesDataModule", "MonetDataModule"):
        write_images(Path(dataset.path), 6, size=(64, 64), ext="jpg")
    elif kind == "PokemonDataModule":
        write_images(Path(dataset.path), 6, size=(256, 256), mode="RGBA")
    elif kind == "CIFAR10DataModule":
        write_cifar10(Path(dataset.root), monkeypatch)
    elif kind == "VideoDataModule":
        write_video(Path(dataset.path), frames=12)
    elif kind == "CelebADataModule":
        write_celeba(Path(dataset.root), monkeypatch)
    elif kind == "LSUNDataModule":
        pytest.importorskip("lmdb")
        write_lsun(Path(dataset.root), category=dataset.category, count=6)
    else:
        raise AssertionError(f"no tiny-data writer for {kind}: add one to tests/conf/test_experiments.py")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_trains_two_iterations(name, tmp_path, monkeypatch, single_thread):
    if name == "jellyfish":
        pytest.importorskip("av")
    settings = compose_config([f"experiment={name}"], tmp_path / "plain")
    cfg = compose_config(
        [f"experiment={name}", f"paths.data_dir={tmp_path / 'data'}", *RUN], tmp_path / "run"
    )
    write_dataset(cfg.dataset, monkeypatch)
    train(cfg)
    run = tmp_path / "run"
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 2 * (cfg.model.d_steps + 1)
    size = settings.model.image_size
    assert checkpoint["hyper_parameters"]["image_size"] == size
    assert checkpoint["hyper_parameters"]["g_activation"] == settings.model.g_activation
    grid = Image.open(run / "samples" / "final.png")
    rows = len(settings.dataset.classes) if settings.model.conditional else 1  # conditional: a row per class
    assert grid.size == (4 * (size + 2) + 2, rows * (size + 2) + 2)  # 4 fixed samples in each row of the grid


def test_pegasus_conditional_writes_the_horse_to_bird_sheet(tmp_path, monkeypatch, single_thread):
    """At the end of training: one row per fixed z, columns from horse to bird; the interpolate tool draws the
    same sheet from the run's last checkpoint."""
    from dcgan_lit.tools.interpolate import run as interpolate
    from tests.helpers.config import compose_tool

    cfg = compose_config(
        ["experiment=pegasus_conditional", f"paths.data_dir={tmp_path / 'data'}", *RUN], tmp_path / "run"
    )
    write_dataset(cfg.dataset, monkeypatch)
    train(cfg)
    sheet = tmp_path / "run" / "pegasus.png"
    assert Image.open(sheet).size == (10 * 34 + 2, 8 * 34 + 2)  # 8 seeds x 10 steps of 32-pixel images
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["class_names"] == ["horse", "bird"]
    tool = compose_tool(
        "interpolate",
        [
            f"ckpt_path={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}",
            "classes=[horse,bird]",
            "seeds=[0,1,2,3,4,5,6,7]",
            "steps=10",
            "device=cpu",
            f"out={tmp_path / 'tool.png'}",
        ],
        tmp_path / "tool",
    )
    interpolate(tool)
    assert np.array_equal(np.asarray(Image.open(sheet)), np.asarray(Image.open(tmp_path / "tool.png")))
