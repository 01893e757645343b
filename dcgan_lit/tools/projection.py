"""Projection into G's latent space: a distance (pixels, D's features, a perceptual network when its weights are
here) and the batched Adam search for the z (and class) whose G(z) is nearest to each target image."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dcgan_lit.checkpoint.io import load_state_dict_file
from dcgan_lit.errors import UserError
from dcgan_lit.model.networks import Discriminator, Generator, reinitialised
from dcgan_lit.model.sampling import Progress, eval_mode, frozen
from dcgan_lit.pixels import from_uint8, to_rgb, to_uint8

PIXEL_LOSSES = {
    "mse": lambda a, b: (a - b).pow(2).flatten(1).mean(1),
    "l1": lambda a, b: (a - b).abs().flatten(1).mean(1),
}
VGG16_FILE = (
    "vgg16-397923af.pth"  # torchvision's ImageNet VGG16 (VGG16_Weights.IMAGENET1K_V1) in torch hub's cache
)
VGG16_TAPS = (3, 8, 15)  # relu1_2, relu2_2, relu3_3: LPIPS's first three layers
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - cos between the flattened rows of a and b: (N,)."""
    return 1 - F.cosine_similarity(a.flatten(1).float(), b.flatten(1).float(), dim=1)


class DiscriminatorFeatures(nn.Module):
    """Cosine distance of D's last convolutional features (``Discriminator.features``), as neighbors compares."""

    def __init__(self, discriminator: Discriminator) -> None:
        super().__init__()
        self.discriminator = discriminator

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.discriminator.features(images)

    def forward(self, embedded: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return cosine_distance(embedded, reference)


class Perceptual(nn.Module):
    """LPIPS-style distance without learned weights: VGG16's relu1_2/2_2/3_3, unit-normalised per position."""

    def __init__(self, weights: str | Path) -> None:
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        self.layers = make_layers(cfgs["D"])[: VGG16_TAPS[-1] + 1]
        state = load_state_dict_file(weights, "VGG16 weights")
        wanted = {f"features.{k}": k for k in self.layers.state_dict()}
        missing = sorted(set(wanted) - set(state))
        if missing:
            raise UserError(
                f"perceptual_weights={weights} is not torchvision's VGG16 state dict (no {missing[0]})"
            )
        self.layers.load_state_dict({k: state[name] for name, k in wanted.items()})
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    def embed(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = (to_rgb(images).add(1).div(2) - self.mean) / self.std
        taps = []
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index in VGG16_TAPS:
                taps.append(F.normalize(x, dim=1))
        return taps

    def forward(self, embedded: list[torch.Tensor], reference: list[torch.Tensor]) -> torch.Tensor:
        return sum((a - b).pow(2).sum(1).mean((1, 2)) for a, b in zip(embedded, reference, strict=True))


def default_vgg16_file() -> Path:
    """Where torchvision keeps its VGG16 download: ``<torch hub dir>/checkpoints/vgg16-397923af.pth``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE


class Distance(nn.Module):
    """Per-image distance of G's images to the targets: pixel MSE or L1 + weighted distances of feature networks.

    ``terms`` maps a name to (weight, network with ``embed`` and ``forward(embedded, reference)``); each
    network's view of the targets is computed once by :meth:`references`.
    """

    def __init__(self, pixel: str = "mse", terms: dict[str, tuple[float, nn.Module]] | None = None) -> None:
        super().__init__()
        if pixel not in PIXEL_LOSSES:
            raise ValueError(f"pixel loss {pixel!r} is unknown; use one of {sorted(PIXEL_LOSSES)}")
        self.pixel = pixel
        terms = {name: term for name, term in (terms or {}).items() if term[0] > 0}
        self.weights = {name: float(weight) for name, (weight, _) in terms.items()}
        self.networks = nn.ModuleDict({name: network for name, (_, network) in terms.items()})

    @torch.no_grad()
    def references(self, targets: torch.Tensor) -> dict:
        """The targets as each term sees them (pixels, then each network's embedding)."""
        return {"pixels": targets, **{name: net.embed(targets) for name, net in self.networks.items()}}

    def forward(self, images: torch.Tensor, references: dict) -> torch.Tensor:
        total = PIXEL_LOSSES[self.pixel](images, references["pixels"])
        for name, network in self.networks.items():
            total = total + self.weights[name] * network(network.embed(images), references[name])
        return total


def repeat_references(references: dict, times: int) -> dict:
    """Each target's references repeated ``times`` in a row (one per candidate of that image)."""

    def repeat(value):
        if isinstance(value, list):
            return [repeat(v) for v in value]
        return value.repeat_interleave(times, 0)

    return {name: repeat(value) for name, value in references.items()}


@torch.no_grad()
def untrained_generator(generator: Generator, seed: int, samples: int = 1024, batch: int = 256) -> Generator:
    """``generator``'s shape with the paper's random init and BatchNorm statistics measured on random z, in eval.

    Fresh running statistics (mean 0, variance 1) make a new G's eval-mode images flat gray; measured ones give
    the images of the first training step, one image independent of the others (a fair baseline).
    """
    fresh = reinitialised(generator, seed)
    norms = [m for m in fresh.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the calibration batches
    fresh.train()
    z = fresh.sample_latent(samples, seed=seed + 1)
    for chunk in z.split(batch):
        fresh(chunk)
    return fresh.eval()


@dataclass
class Projection:
    """The best candidate per target: its z, class, image and distance, and what the optimisation went through."""

    z: torch.Tensor  # (N, latent_dim)
    labels: torch.Tensor | None  # (N,) classes of a conditional G, else None
    images: torch.Tensor  # (N, C, H, W) in [-1, 1]
    distance: torch.Tensor  # (N,) the objective of the kept candidate
    start_distance: torch.Tensor  # (N,) the best objective among the starting points
    start: torch.Tensor  # (N,) which start was kept
    frames: list[torch.Tensor] = field(default_factory=list)  # the first images' best images, step by step
    frame_steps: list[int] = field(default_factory=list)


def frame_schedule(steps: int, frames: int) -> set[int]:
    """Steps (0..steps) at which a GIF frame is kept: ``frames`` of them, evenly spaced, both ends included."""
    if frames < 2:
        return {steps} if frames == 1 else set()
    return {round(i * steps / (frames - 1)) for i in range(frames)}


def project(
    generator: Generator,
    targets: torch.Tensor,
    distance: Distance,
    steps: int = 300,
    starts: int = 4,
    lr: float = 0.05,
    z_reg: float = 0.0,
    seed: int = 0,
    classes: list[int] | None = None,
    batch_size: int = 256,
    frames: int = 0,
    frame_images: int = 16,
    progress: Progress | None = None,
) -> Projection:
    """Finds, for each target in [-1, 1], the z (and class) whose G(z) is nearest under ``distance``.

    Adam from ``starts`` seeded random z per image (the same starts for every class of a conditional G, which
    tries each class in ``classes``, default all); the candidate with the smallest final distance is kept.
    ``z_reg`` adds z_reg * (mean(z^2) - 1)^2, which keeps z near the shell where N(0, I) samples lie.
    Images are optimised ``batch_size`` candidates (images x classes x starts) at a time; in eval mode every
    candidate is independent, so the result does not depend on the batching.
    """
    device = next(generator.parameters()).device
    classes = list(range(generator.num_classes)) if generator.num_classes and classes is None else classes
    per_image = starts * (len(classes) if classes else 1)
    all_starts = generator.sample_latent(len(targets) * starts, seed=seed).float().cpu()
    all_starts = all_starts.view(len(targets), starts, -1)
    chunk = max(1, batch_size // per_image)
    keep_at = frame_schedule(steps, frames)
    parts: list[Projection] = []
    with frozen(generator), eval_mode(generator), frozen(distance), eval_mode(distance):
        for first in range(0, len(targets), chunk):
            chunk_targets = targets[first : first + chunk].to(device)
            z0 = all_starts[first : first + chunk]
            if classes:  # (images, classes, starts, d): every class from the same starts
                z0 = z0[:, None].expand(-1, len(classes), -1, -1)
            labels = None
            if classes:
                labels = torch.tensor(classes).view(1, -1, 1).expand(len(z0), -1, starts).reshape(-1)
                labels = labels.to(device)
            parts.append(
                optimise(
                    generator,
                    distance,
                    chunk_targets,
                    z0.reshape(-1, z0.size(-1)).to(device),
                    labels,
                    steps=steps,
                    lr=lr,
                    z_reg=z_reg,
                    starts=starts,
                    keep_at=keep_at,
                    watched=frame_images if first == 0 and keep_at else 0,
                    progress=progress,
                    description=f"Projecting {first + len(chunk_targets)}/{len(targets)}",
                )
            )
    head = parts[0]
    return Projection(
        z=torch.cat([p.z for p in parts]),
        labels=torch.cat([p.labels for p in parts]) if classes else None,
        images=torch.cat([p.images for p in parts]),
        distance=torch.cat([p.distance for p in parts]),
        start_distance=torch.cat([p.start_distance for p in parts]),
        start=torch.cat([p.start for p in parts]),
        frames=head.frames,
        frame_steps=head.frame_steps,
    )


def optimise(
    generator: Generator,
    distance: Distance,
    targets: torch.Tensor,
    z0: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    steps: int,
    lr: float,
    z_reg: float,
    starts: int,
    keep_at: set[int],
    watched: int,
    progress: Progress | None,
    description: str,
) -> Projection:
    """One batch of targets, each with len(z0) / len(targets) candidates (classes x starts) starting at z0.

    ``watched``: how many of the first targets have their best image kept at the steps in ``keep_at``.
    """
    per_image = len(z0) // len(targets)
    references = repeat_references(distance.references(targets), per_image)
    z = z0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, steps))

    def objective() -> tuple[torch.Tensor, torch.Tensor]:
        images = generator(z, labels) if labels is not None else generator(z)
        value = distance(images, references)
        if z_reg:
            value = value + z_reg * (z.pow(2).mean(1) - 1).pow(2)
        return images, value

    def best(values: torch.Tensor) -> torch.Tensor:
        return values.detach().view(-1, per_image).argmin(1)

    frames, frame_steps = [], []
    loop: Callable = progress or (lambda items, *_: items)
    for step in loop(range(steps + 1), description, steps + 1):
        if step == steps:
            with torch.no_grad():
                images, values = objective()
        else:
            images, values = objective()
        if step == 0:
            start_distance = values.detach().view(-1, per_image).min(1).values
        if step in keep_at and watched:
            rows = (
                best(values)[:watched] + torch.arange(min(watched, len(targets)), device=z.device) * per_image
            )
            frames.append(images.detach()[rows].float().cpu())
            frame_steps.append(step)
        if step < steps:
            optimizer.zero_grad(set_to_none=True)
            values.sum().backward()  # a sum: each candidate's gradient is its own
            optimizer.step()
            schedule.step()
    chosen = best(values) + torch.arange(len(targets), device=z.device) * per_image
    return Projection(
        z=z.detach()[chosen].float().cpu(),
        labels=labels[chosen].cpu() if labels is not None else None,
        images=images.detach()[chosen].float().cpu(),
        distance=values.detach()[chosen].float().cpu(),
        start_distance=start_distance.float().cpu(),
        start=(best(values) % starts).cpu(),
        frames=frames,
        frame_steps=frame_steps,
    )


def reconstruction_errors(
    reconstructions: torch.Tensor, targets: torch.Tensor, features: DiscriminatorFeatures | None = None
) -> dict[str, torch.Tensor]:
    """Per-image errors of reconstructions against uint8 targets, both as saved PNGs would hold them.

    ``mse`` and ``psnr`` (dB) on [0, 1] pixels, ``ssim`` (11x11 Gaussian window), and ``feature`` (D-feature
    cosine distance) when D is given: no network download anywhere.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    fake = to_uint8(reconstructions).float() / 255
    real = targets.float() / 255
    mse = (fake - real).pow(2).flatten(1).mean(1)
    errors = {
        "mse": mse,
        "psnr": 10 * torch.log10(1 / mse.clamp_min(1e-10)),
        "ssim": structural_similarity_index_measure(fake, real, data_range=1.0, reduction="none"),
    }
    if features is not None:
        device = next(features.parameters()).device
        with torch.no_grad():
            errors["feature"] = cosine_distance(
                features.embed(from_uint8(to_uint8(reconstructions)).to(device)),
                features.embed(from_uint8(targets).to(device)),
            ).cpu()
    return errors
