"""The Fréchet distance (closed forms, scipy reference), feature statistics, extractors and their weights."""

import argparse
import logging

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from scipy import linalg

from dcgan_lit.callbacks.fid import build_fid_callback
from dcgan_lit.errors import UserError
from dcgan_lit.metrics import FeatureStats, TinyFeatureExtractor, build_feature_extractor, frechet_distance
from dcgan_lit.metrics.features import INCEPTION_FILE, to_uint8_rgb

from .conftest import CONF_DIR


def random_spd(d: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def test_frechet_distance_of_commuting_gaussians_matches_the_closed_form():
    mean1, mean2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, -1.0, 2.5])
    var1, var2 = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([9.0, 1.0, 1.0])
    expected = (mean1 - mean2).square().sum() + (var1 + var2 - 2 * (var1 * var2).sqrt()).sum()
    distance = frechet_distance(mean1, torch.diag(var1), mean2, torch.diag(var2))
    assert distance == pytest.approx(float(expected), rel=1e-12)  # 1.25 + 4 + 1 + 0.25 + 4 + 1.25 - 2 * ...


def test_frechet_distance_of_scaled_covariances_matches_the_closed_form():
    # S2 = c S1  =>  Tr(S1 + S2 - 2 sqrt(S1 S2)) = (1 - sqrt(c))^2 Tr(S1); a full, non-diagonal covariance
    cov = random_spd(32, seed=1)
    mean1 = torch.randn(32, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    mean2 = mean1 + 0.5
    distance = frechet_distance(mean1, cov, mean2, 4.0 * cov)
    assert distance == pytest.approx(32 * 0.25 + (1 - 2.0) ** 2 * float(cov.trace()), rel=1e-10)
    assert frechet_distance(mean1, cov, mean1, cov) == pytest.approx(0.0, abs=1e-9)


def scipy_fid(mean1, cov1, mean2, cov2) -> float:
    """The pytorch-fid formula in float64 with scipy's sqrtm."""
    covmean = linalg.sqrtm(cov1 @ cov2)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float(((mean1 - mean2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("dim", [16, 256])
def test_frechet_distance_matches_scipy_sqrtm_within_1e_6(dim):
    rng = np.random.default_rng(dim)
    real = rng.normal(size=(2 * dim + 50, dim))
    fake = 0.8 * rng.normal(size=(2 * dim + 50, dim)) @ rng.normal(size=(dim, dim)) / dim**0.5 + 0.3
    r, f = (
        FeatureStats.from_features(torch.from_numpy(real)),
        FeatureStats.from_features(torch.from_numpy(fake)),
    )
    ours = frechet_distance(r.mean, r.cov, f.mean, f.cov)
    reference = scipy_fid(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))
    assert abs(ours - reference) / reference < 1e-6


def test_feature_stats_from_sums_equal_numpy_mean_and_covariance():
    features = torch.randn(300, 12, generator=torch.Generator().manual_seed(0)) * 3 + 5
    stats = FeatureStats.from_features(features)
    assert stats.mean.dtype == torch.float64 and stats.num == 300
    np.testing.assert_allclose(stats.mean.numpy(), features.double().mean(0).numpy(), rtol=1e-12)
    np.testing.assert_allclose(stats.cov.numpy(), np.cov(features.double().numpy(), rowvar=False), rtol=1e-9)
    back = FeatureStats.from_dict(stats.to_dict())
    assert torch.equal(back.cov, stats.cov)
    with pytest.raises(ValueError, match="at least 2"):
        FeatureStats.from_features(features[:1])


def test_generator_output_becomes_uint8_rgb_as_a_saved_png_would():
    images = torch.tensor([-1.0, -0.5, 0.0, 0.999, 1.0]).view(1, 1, 1, 5)
    out = to_uint8_rgb(images)
    assert out.dtype == torch.uint8 and out.shape == (1, 3, 1, 5)
    assert out[0, 0, 0].tolist() == [0, 64, 128, 255, 255] and torch.equal(out[0, 0], out[0, 2])


def test_tiny_extractor_is_deterministic_and_named():
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    a, b = TinyFeatureExtractor(num_features=8, seed=3), TinyFeatureExtractor(num_features=8, seed=3)
    assert a(images).shape == (5, 8) and torch.equal(a(images), b(images))
    assert not torch.equal(a(images), TinyFeatureExtractor(num_features=8, seed=4)(images))
    assert a.name == "tiny-8d-seed3"


def test_extractors_come_from_the_registry_or_a_target():
    assert build_feature_extractor("tiny").name == "tiny-16d-seed0"
    custom = build_feature_extractor(
        OmegaConf.create({"_target_": "torch.nn.Flatten", "start_dim": 1}), weights_path="/ignored"
    )
    assert (
        isinstance(custom, torch.nn.Flatten)
        and custom.name == "torch.nn.modules.flatten.Flatten{'start_dim': 1}"
    )
    with pytest.raises(UserError, match="unknown; use one of"):
        build_feature_extractor("resnet")


def fid_metrics(tmp_path, **fid) -> OmegaConf:
    cfg = OmegaConf.load(CONF_DIR / "metrics" / "default.yaml")
    # an unreachable "standard download" (no network is ever touched in tests)
    cfg.fid.weights_url = (tmp_path / "nowhere" / INCEPTION_FILE).as_uri()
    cfg.fid.update(fid)
    return cfg


@pytest.fixture
def empty_torch_hub(tmp_path, monkeypatch):
    """torch hub's cache in an empty folder (restored afterwards): the weights are nowhere to be found."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch_home" / "hub"))
    return tmp_path / "torch_home" / "hub" / "checkpoints" / INCEPTION_FILE


def test_missing_weights_warn_in_one_line_and_fid_is_off(tmp_path, empty_torch_hub, caplog):
    with caplog.at_level(logging.WARNING):
        assert build_fid_callback(fid_metrics(tmp_path), str(tmp_path)) is None
    [record] = [r for r in caplog.records if "Inception weights" in r.getMessage()]
    message = record.getMessage()
    assert "\n" not in message and str(empty_torch_hub) in message  # where to put them
    assert "metrics.fid.weights_path=" in message and "Training continues without FID" in message


def test_missing_weights_are_fatal_when_required(tmp_path, empty_torch_hub):
    with pytest.raises(UserError, match=r"not in .*weights-inception.*required=true") as error:
        build_fid_callback(fid_metrics(tmp_path, required=True), str(tmp_path))
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match=r"weights_path=.*missing.pth is not a file"):
        build_fid_callback(
            fid_metrics(tmp_path, required=True, weights_path=str(tmp_path / "missing.pth")), None
        )


def test_weights_holding_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"conv.weight": torch.zeros(1), "extra": argparse.Namespace(evil=True)}, path)
    with pytest.raises(UserError, match="was refused"):
        build_feature_extractor("inception", weights_path=str(path))


@pytest.mark.slow
def test_inception_loads_a_local_weights_file_and_gives_2048_features(tmp_path, monkeypatch):
    """The real loading path, offline: a randomly initialised network of the FID Inception's shape."""
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    with monkeypatch.context() as patch:  # build the architecture once without any weights to read
        patch.setattr(fidelity, "load_state_dict_from_url", lambda *args, **kwargs: {})
        patch.setattr(fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        network = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    weights = tmp_path / INCEPTION_FILE
    torch.save(network.state_dict(), weights)
    del network

    extractor = build_feature_extractor("inception", weights_path=str(weights))
    assert (
        extractor.name == "inception-v3-compat-pool3" and extractor.resize == "tf1-bilinear-299-noantialias"
    )
    assert extractor.network.use_antialias is False
    images = torch.randint(
        0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    features = extractor(images)
    assert features.shape == (2, 2048) and torch.isfinite(features).all()
    assert extractor.logits(images).shape == (2, 1008)
