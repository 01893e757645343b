"""The feature-extractor registry: the tiny extractor, targets, custom extractors in logs and cache keys."""

import logging

import pytest
import torch
from omegaconf import OmegaConf

from dcgan_lit.callbacks.fid import build_fid_callback
from dcgan_lit.errors import UserError
from dcgan_lit.metrics import TinyFeatureExtractor, build_feature_extractor
from dcgan_lit.pixels import to_rgb, to_uint8
from tests.helpers.metrics import fid_metrics


def test_generator_output_becomes_uint8_rgb_as_a_saved_png_would():
    images = torch.tensor([-1.0, -0.5, 0.0, 0.999, 1.0]).view(1, 1, 1, 5)
    out = to_rgb(to_uint8(images))
    assert out.dtype == torch.uint8 and out.shape == (1, 3, 1, 5)
    assert out[0, 0, 0].tolist() == [0, 64, 128, 255, 255] and torch.equal(out[0, 0], out[0, 2])


def test_tiny_extractor_is_deterministic_and_named():
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    a, b = TinyFeatureExtractor(num_features=8, seed=3), TinyFeatureExtractor(num_features=8, seed=3)
    assert a(images).shape == (5, 8) and torch.equal(a(images), b(images))
    assert not torch.equal(a(images), TinyFeatureExtractor(num_features=8, seed=4)(images))
    assert a.name == "tiny-8d-seed3"


def test_extractors_come_from_the_registry_or_a_target(caplog):
    assert build_feature_extractor("tiny").name == "tiny-16d-seed0"
    with caplog.at_level(logging.WARNING):
        build_feature_extractor("tiny", weights_path="/some/inception.pth")
    assert (
        "weights_path=/some/inception.pth is not used: feature extractor tiny loads no weights" in caplog.text
    )
    custom = build_feature_extractor(
        OmegaConf.create({"_target_": "torch.nn.Flatten", "start_dim": 1}), weights_path="/ignored"
    )
    assert (
        isinstance(custom, torch.nn.Flatten)
        and custom.name == "torch.nn.modules.flatten.Flatten{'start_dim': 1}"
    )
    with pytest.raises(UserError, match="unknown; use one of"):
        build_feature_extractor("resnet")


def test_a_custom_feature_extractor_is_named_in_logs_and_cache_keys(tmp_path, caplog):
    metrics = fid_metrics(tmp_path, num_fake=8)
    metrics.fid.feature_extractor = {"_target_": "tests.helpers.metrics.MeanColour"}
    with caplog.at_level(logging.INFO):
        callback = build_fid_callback(metrics, str(tmp_path / "cache"))
    assert "features tests.helpers.metrics.MeanColour (own)" in caplog.text
    images = torch.randint(
        0, 256, (20, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    with caplog.at_level(logging.INFO):
        callback.suite.prepare_reference(images, "some-dataset", str(tmp_path / "cache"))
    [stats] = (tmp_path / "cache" / "fid_stats").glob("*.pt")
    assert stats.stem == callback.suite.reference_key and stats.name.startswith("fid-MeanColour-20-")
    assert "with tests.helpers.metrics.MeanColour (own)" in caplog.text
    assert torch.load(stats, weights_only=True)["mean"].shape == (3,)
