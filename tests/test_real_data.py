"""Short training runs on the real MNIST and cat faces under DCGAN_DATA_DIR (skipped when absent)."""

import logging
from pathlib import Path

import pytest
import torch

from dcgan_lit.run.fit import train
from tests.helpers.config import compose_config

pytestmark = pytest.mark.data

SHORT = [
    "logger=csv",
    "accelerator=cpu",
    "trainer.max_steps=3",
    "trainer.log_every_n_steps=1",
    "callbacks.progress=null",
    "dataset.batch_size=32",
    "metrics=none",  # the data and a short run; FID with the real Inception would score thousands of images
]


def test_mnist_short_run(data_dir, tmp_path, caplog):
    if not (data_dir / "MNIST" / "raw").is_dir():
        pytest.skip(f"no MNIST under {data_dir}")
    caplog.set_level(logging.INFO)
    cfg = compose_config(
        ["experiment=mnist", f"paths.data_dir={data_dir}", "dataset.download=false", *SHORT], tmp_path
    )
    metrics = train(cfg)
    assert "Dataset mnist: 60000 images, 1x32x32" in caplog.text
    assert torch.isfinite(torch.tensor(metrics["train/loss_d"]))
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_catfaces_short_run(data_dir, tmp_path, caplog):
    if not (data_dir / "catfaces").is_dir():
        pytest.skip(f"no catfaces under {data_dir}")
    caplog.set_level(logging.INFO)
    cfg = compose_config(["experiment=catfaces", f"paths.data_dir={data_dir}", *SHORT], tmp_path)
    train(cfg)
    count = len(list(Path(data_dir, "catfaces").rglob("*.jpg")))
    assert f"Dataset catfaces: {count} images, 3x64x64" in caplog.text
    assert (tmp_path / "real_samples.png").is_file() and (tmp_path / "samples" / "final.png").is_file()
