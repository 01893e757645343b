"""The Fréchet distance between two Gaussians, and Gaussian feature statistics, in float64."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class FeatureStats:
    """Mean and covariance (unbiased, float64) of ``num`` feature vectors."""

    mean: torch.Tensor
    cov: torch.Tensor
    num: int

    @classmethod
    def from_sums(cls, total: torch.Tensor, outer_total: torch.Tensor, num: int) -> FeatureStats:
        """From sum(x) and sum(x x^T) over ``num`` vectors (how torchmetrics accumulates them)."""
        if num < 2:
            raise ValueError(f"at least 2 feature vectors are needed for a covariance, got {num}")
        total, outer_total = total.double(), outer_total.double()
        mean = total / num
        cov = (outer_total - num * torch.outer(mean, mean)) / (num - 1)
        return cls(mean=mean, cov=cov, num=int(num))

    @classmethod
    def from_features(cls, features: torch.Tensor) -> FeatureStats:
        """From an (N, d) matrix of feature vectors."""
        features = features.double()
        return cls.from_sums(features.sum(0), features.T @ features, features.size(0))

    def to_dict(self) -> dict:
        return {"mean": self.mean.double().cpu(), "cov": self.cov.double().cpu(), "num": self.num}

    @classmethod
    def from_dict(cls, state: dict) -> FeatureStats:
        return cls(mean=state["mean"].double(), cov=state["cov"].double(), num=int(state["num"]))


def sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix (eigh; negative rounding clipped)."""
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    return (eigenvectors * eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T


def frechet_distance(
    mean1: torch.Tensor, cov1: torch.Tensor, mean2: torch.Tensor, cov2: torch.Tensor
) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), in float64.

    Tr((S1 S2)^(1/2)) = Tr((S1^(1/2) S2 S1^(1/2))^(1/2)): the right side is a symmetric PSD matrix, so its
    eigenvalues are real and non-negative and no complex round-off appears (scipy's ``sqrtm(S1 @ S2)``
    path, as in pytorch-fid, can return small imaginary parts that must be dropped).
    """
    mean1, mean2, cov1, cov2 = (t.double() for t in (mean1, mean2, cov1, cov2))
    root1 = sqrtm_psd(cov1)
    middle = root1 @ cov2 @ root1
    middle = (middle + middle.T) / 2  # exact symmetry against round-off
    trace_sqrt = torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()
    distance = (mean1 - mean2).square().sum() + cov1.trace() + cov2.trace() - 2 * trace_sqrt
    return float(distance)


def fid_from_stats(real: FeatureStats, fake: FeatureStats) -> float:
    """FID between reference (real) and generated (fake) feature statistics."""
    return frechet_distance(real.mean, real.cov, fake.mean, fake.cov)
