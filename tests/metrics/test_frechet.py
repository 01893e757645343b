"""The Fréchet distance (closed forms, scipy reference) and feature statistics from sums."""

import numpy as np
import pytest
import torch
from scipy import linalg

from dcgan_lit.metrics import FeatureStats, frechet_distance


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
