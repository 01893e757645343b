"""Sample-quality metrics: FID against cached reference statistics, optional KID, IS and MiFID."""

from dcgan_lit.metrics.features import (
    FEATURE_EXTRACTORS,
    InceptionV3Features,
    TinyFeatureExtractor,
    WeightsUnavailable,
    build_feature_extractor,
)
from dcgan_lit.metrics.frechet import FeatureStats, fid_from_stats, frechet_distance
from dcgan_lit.metrics.suite import MetricSuite, score_generator

__all__ = [
    "FEATURE_EXTRACTORS",
    "FeatureStats",
    "InceptionV3Features",
    "MetricSuite",
    "TinyFeatureExtractor",
    "WeightsUnavailable",
    "build_feature_extractor",
    "fid_from_stats",
    "frechet_distance",
    "score_generator",
]
