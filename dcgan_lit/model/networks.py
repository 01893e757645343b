"""The DCGAN generator and discriminator (Radford et al., 2015, section 3), one builder for every size.

For ``image_size = 2**k`` both networks have ``k - 2`` stride-2 layers between 4x4 and the image; the
widths double towards the 4x4 end (``ngf * 2**(k-3)`` channels at 4x4), so ``dcgan64`` with 3 channels has
exactly the layer shapes of the PyTorch DCGAN example: G 100-512-256-128-64-3, D 3-64-128-256-512-1.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

SUPPORTED_SIZES = (32, 64, 128, 256)

ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.2, inplace=True),
}

D_NORMS = ("batch", "spectral", "none")

# The paper's settings: the one place the networks' defaults live. DCGAN, the checkpoint loaders and the
# Hydra model config (conf/model/_base.yaml, checked against this by the tests) all take them from here.
PAPER = {
    "latent_dim": 100,
    "image_size": 64,
    "channels": 3,
    "ngf": 64,
    "ndf": 64,
    "g_activation": "relu",
    "d_norm": "batch",
}


def check_d_norm(norm: str) -> None:
    """Raises ValueError for a discriminator normalisation other than batch, spectral or none."""
    if norm not in D_NORMS:
        raise ValueError(f"model.d_norm={norm} is unknown; use one of {list(D_NORMS)}")


def num_upsamplings(image_size: int) -> int:
    """Number of stride-2 layers between 4x4 and ``image_size`` (log2(size) - 2)."""
    if image_size not in SUPPORTED_SIZES:
        raise ValueError(f"image_size={image_size} is not supported; use one of {SUPPORTED_SIZES}")
    return int(math.log2(image_size)) - 2


CLASS_EMBEDDING_DIM = (
    50  # a conditional G's class embedding, joined to z (Mirza & Osindero 2014; cGAN practice)
)


def class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(N,) class indices -> (N, num_classes) one-hot float weights; (N, num_classes) weights pass through.

    Weights that are not one-hot mix the class embeddings: (1 - t) * horse + t * bird is the pegasus path.
    Indices are not read on the host here (a training step must not wait for the GPU; torch's ``one_hot``
    reads them to check their range): out of range, they fail in ``scatter_`` (on a GPU as a device assert);
    :func:`check_labels` checks user input first.
    """
    if labels.is_floating_point():
        if labels.dim() != 2 or labels.size(1) != num_classes:
            raise ValueError(f"class weights must be (N, {num_classes}), got {list(labels.shape)}")
        return labels
    one_hot = torch.zeros(labels.size(0), num_classes, device=labels.device)
    return one_hot.scatter_(1, labels.long()[:, None], 1.0)


def check_labels(labels: torch.Tensor, num_classes: int) -> None:
    """Raises ValueError for class indices outside 0..num_classes-1 (weights: see :func:`class_weights`)."""
    if labels.is_floating_point():
        class_weights(labels, num_classes)
    elif bool((labels < 0).any()) or bool((labels >= num_classes).any()):
        raise ValueError(f"class labels must lie in 0..{num_classes - 1}")


def cycled_labels(n: int, num_classes: int, device: torch.device, offset: int = 0) -> torch.Tensor:
    """Classes 0, 1, ..., K-1, 0, 1, ... for n samples (sample i, counted from ``offset``, has class i mod K):
    what a conditional G draws when no class is given, and "the classes in turn" everywhere else."""
    return torch.arange(offset, offset + n, device=device) % num_classes


class ClassMap(nn.Linear):
    """A bias-free linear map of class weights (one-hot or mixed): a class embedding that also takes mixtures.

    ``init_std``: the N(0, std) its weights start from (:func:`init_weights`): 1 for G's embedding, which is
    joined to z ~ N(0, I); the paper's 0.02 for D's projection.
    """

    def __init__(self, num_classes: int, features: int, init_std: float = 0.02) -> None:
        super().__init__(num_classes, features, bias=False)
        self.init_std = init_std


class Generator(nn.Module):
    """z (N, latent_dim, 1, 1) -> image (N, channels, size, size) in [-1, 1].

    Transposed convolutions with BatchNorm and ReLU, Tanh on the output; no pooling, no fully connected layers.

    With ``num_classes`` it is class-conditional: a learned class embedding (:data:`CLASS_EMBEDDING_DIM`
    values, a bias-free linear map of the one-hot class) is joined to z before the first layer.
    ``forward(z, labels)`` takes class indices (N,) or class weights (N, num_classes); without labels the
    classes cycle 0..K-1 (a uniform mix). ``class_names`` name the classes (the data's folders or classes).
    """

    # The type of class_names, for TorchScript (an unconditional G's list is empty, so it cannot be inferred);
    # an object, not the string that `from __future__ import annotations` would make of `class_names: list[str]`
    __annotations__ = {"class_names": list[str]}

    def __init__(
        self,
        latent_dim: int = PAPER["latent_dim"],
        image_size: int = PAPER["image_size"],
        channels: int = PAPER["channels"],
        ngf: int = PAPER["ngf"],
        activation: str = PAPER["g_activation"],
        num_classes: int | None = None,
        class_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"generator activation {activation!r} is unknown; use one of {sorted(ACTIVATIONS)}"
            )
        self.latent_dim = latent_dim
        self.image_size = image_size
        self.channels = channels
        self.ngf = ngf
        self.activation = activation
        self.num_classes = int(num_classes or 0)  # 0: unconditional (TorchScript needs one type)
        self.class_names = list(class_names or [])
        # Identity for an unconditional G: its state dict is the paper's, and TorchScript compiles one forward
        self.class_embedding: nn.Module = (
            ClassMap(self.num_classes, CLASS_EMBEDDING_DIM, init_std=1.0)
            if self.num_classes
            else nn.Identity()
        )
        depth = num_upsamplings(image_size)
        width = ngf * 2 ** (depth - 1)
        inputs = latent_dim + (CLASS_EMBEDDING_DIM if self.num_classes else 0)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(inputs, width, 4, 1, 0, bias=False),  # 1x1 -> 4x4
            nn.BatchNorm2d(width),
            ACTIVATIONS[activation](),
        ]
        for _ in range(depth - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                ACTIVATIONS[activation](),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if z.dim() == 4:
            z = z.flatten(1)
        if self.num_classes > 0:
            if labels is None:
                labels = cycled_labels(z.size(0), self.num_classes, z.device)
            weights = class_weights(labels, self.num_classes).to(z.dtype)
            if weights.size(0) != z.size(0):
                raise ValueError("one class label (or row of class weights) per latent vector is needed")
            z = torch.cat([z, self.class_embedding(weights)], dim=1)
        elif labels is not None:
            raise ValueError("this generator is unconditional (num_classes=0): sample it without labels")
        return self.main(z[:, :, None, None])

    # The two methods below compile with TorchScript (@torch.jit.export), so a scripted export samples
    # exactly as this module does, seed for seed.
    @torch.jit.export
    def sample_latent(self, n: int, seed: int | None = None, truncation: float | None = None) -> torch.Tensor:
        """n latent vectors z ~ N(0, I), shape (n, latent_dim), drawn on the CPU and moved to G's device.

        ``seed`` gives its own random stream (the same z on every device and in every export); None draws
        from torch's global CPU generator (``torch.manual_seed``). ``truncation=t`` is the truncation trick:
        entries with |z| > t are redrawn until every entry lies in [-t, t] (resampled, not clamped).
        """
        stream: torch.Generator | None = None
        if seed is not None:
            stream = torch.Generator()
            stream.manual_seed(seed)
        z = torch.randn([n, self.latent_dim], generator=stream)
        if truncation is not None:
            if truncation <= 0:
                raise ValueError("truncation must be > 0")
            outside = z.abs() > truncation
            while bool(outside.any()):
                z = torch.where(outside, torch.randn([n, self.latent_dim], generator=stream), z)
                outside = z.abs() > truncation
        weight = self.main[0].weight
        return z.to(device=weight.device, dtype=weight.dtype)

    @torch.jit.export
    def sample(
        self,
        n: int,
        seed: int | None = None,
        truncation: float | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """n images (n, channels, image_size, image_size) in [-1, 1] from :meth:`sample_latent`, no gradients.

        ``labels`` (a conditional G): class indices (n,) or weights (n, num_classes); :meth:`class_index`
        turns a class name into its index. Uses the module's current mode: networks from
        :func:`dcgan_lit.load_generator` are in eval mode.
        """
        z = self.sample_latent(n, seed, truncation)
        if labels is not None:
            if self.num_classes > 0:
                check_labels(labels, self.num_classes)
            labels = labels.to(z.device)
        with torch.no_grad():
            return self.forward(z, labels)

    @torch.jit.export
    def class_index(self, name: str) -> int:
        """The index of class ``name`` (a conditional G); ValueError naming the classes otherwise."""
        for index, known in enumerate(self.class_names):
            if known == name:
                return index
        raise ValueError("unknown class " + name + "; the classes are " + ", ".join(self.class_names))


class Discriminator(nn.Module):
    """image (N, channels, size, size) -> one logit per image (N,).

    Strided convolutions with LeakyReLU(0.2), no fully connected layers. ``norm="batch"`` (the paper) puts
    BatchNorm on every layer but the first; ``"spectral"`` spectrally normalises every convolution instead
    (Miyato et al. 2018); ``"none"`` uses neither.

    With ``num_classes`` it is a projection discriminator (Miyato & Koyama 2018):
    ``D(x, y) = head(h) + <embed(y), sum of h over space>`` for the last block's features ``h``, the class
    entering as an inner product with D's own features and no fully connected layer. ``forward(x)`` without
    labels gives the unconditional term alone.
    """

    def __init__(
        self,
        image_size: int = PAPER["image_size"],
        channels: int = PAPER["channels"],
        ndf: int = PAPER["ndf"],
        norm: str = PAPER["d_norm"],
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        check_d_norm(norm)
        self.image_size = image_size
        self.channels = channels
        self.norm = norm
        depth = num_upsamplings(image_size)
        width = ndf
        layers: list[nn.Module] = [self._conv(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        for _ in range(depth - 1):
            layers.append(self._conv(width, width * 2, 4, 2, 1))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(width * 2))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            width *= 2
        # D(x)'s last convolutional block, (N, ndf * 2**(depth-1), 4, 4): ``discriminator.features(images)``
        # gives the representation the paper probes (section 5.1); flatten it for a linear classifier.
        self.features = nn.Sequential(*layers)
        self.head = self._conv(width, 1, 4, 1, 0)
        self.num_classes = int(num_classes or 0)
        if self.num_classes:
            projection = ClassMap(self.num_classes, width)
            self.projection = spectral_norm(projection) if norm == "spectral" else projection

    def _conv(self, *args: int) -> nn.Module:
        conv = nn.Conv2d(*args, bias=self.norm != "batch")  # without BatchNorm nothing else adds a bias
        return spectral_norm(conv) if self.norm == "spectral" else conv

    def forward(self, image: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        features = self.features(image)
        logits = self.head(features).flatten()
        if labels is None or not self.num_classes:
            return logits
        embedded = self.projection(class_weights(labels, self.num_classes).to(features.dtype))
        return logits + (embedded * features.sum(dim=(2, 3))).sum(dim=1)


def raw_weight(module: nn.Module) -> torch.Tensor:
    """The weight to initialise: a spectrally normalised layer computes ``.weight`` from the original."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight


def init_weights(module: nn.Module) -> None:
    """The paper's init: conv weights from N(0, 0.02); BatchNorm weight N(1, 0.02), bias 0."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(raw_weight(module), 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, ClassMap):
        nn.init.normal_(raw_weight(module), 0.0, module.init_std)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def reinitialised(network: nn.Module, seed: int) -> nn.Module:
    """A copy of ``network`` with the paper's random init (seeded) and fresh BatchNorm statistics."""
    fresh = copy.deepcopy(network)
    torch.manual_seed(seed)
    for module in fresh.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
    fresh.apply(init_weights)
    return fresh
