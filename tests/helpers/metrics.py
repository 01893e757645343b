"""Metric helpers: a counting feature extractor, the FID config with no download, the evaluator as a command."""

from __future__ import annotations

import subprocess
import sys

import torch
from omegaconf import OmegaConf

from dcgan_lit.metrics import TinyFeatureExtractor
from dcgan_lit.metrics.features import INCEPTION_FILE
from tests.helpers.config import CONF_DIR, ROOT

FIDELITY_NAME = "inception-v3-tf-2015-12-05-torch-fidelity"  # torch-fidelity's .pth: the name in cache keys


class CountingExtractor(TinyFeatureExtractor):
    """The tiny extractor, counting the images it has seen."""

    def __init__(self) -> None:
        super().__init__(num_features=8)
        self.images_seen = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.images_seen += images.size(0)
        return super().forward(images)


def fid_metrics(tmp_path, **fid) -> OmegaConf:
    """conf/metrics/default.yaml with ``fid`` overrides and an unreachable standard download."""
    cfg = OmegaConf.load(CONF_DIR / "metrics" / "default.yaml")
    # an unreachable "standard download" (no network is ever touched in tests)
    cfg.fid.weights_url = (tmp_path / "nowhere" / INCEPTION_FILE).as_uri()
    cfg.fid.update(fid)
    return cfg


def run_evaluate(fake_dir, image_folder, tmp_path, *overrides: str) -> subprocess.CompletedProcess:
    """``python -m dcgan_lit.tools.evaluate`` scoring the images in ``fake_dir`` against ``image_folder``."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "dcgan_lit.tools.evaluate",
            f"fake_dir={fake_dir}",
            "dataset=imagefolder",
            f"dataset.path={image_folder}",
            "device=cpu",
            f"paths.cache_dir={tmp_path / 'cache'}",
            f"hydra.run.dir={tmp_path / 'eval'}",
            f"metrics.fid.weights_url={(tmp_path / 'nowhere' / INCEPTION_FILE).as_uri()}",
            *overrides,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


class MeanColour(torch.nn.Module):
    """A custom feature extractor with no name of its own: the mean of each colour channel."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.float().mean(dim=(2, 3))
