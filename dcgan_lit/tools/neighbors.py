"""Memorization check: for generated samples, the nearest training images by pixel L2 and by D-feature cosine.

python -m dcgan_lit.tools.neighbors ckpt_path=last.ckpt num_samples=8 k=5
python -m dcgan_lit.tools.neighbors ckpt_path=last.ckpt data=~/my_images     # training images from a folder
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from PIL import Image

from dcgan_lit.errors import UserError
from dcgan_lit.model.networks import Discriminator
from dcgan_lit.model.sampling import generate
from dcgan_lit.pixels import from_uint8, to_uint8
from dcgan_lit.tools.app import load_networks, progress, tool_main, wrote
from dcgan_lit.tools.drawing import labelled_grid, save_image
from dcgan_lit.tools.latent import class_labels, sample_z
from dcgan_lit.tools.training_data import training_images

CHUNK = 1024  # training images compared per step: bounds memory at any dataset size


def pixel_distances(samples: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """(S, N) L2 distances in [-1, 1] pixel space between samples and the uint8 training images."""
    flat = samples.flatten(1)
    parts = [
        torch.cdist(flat, from_uint8(chunk).flatten(1))
        for chunk in progress(train.split(CHUNK), "Pixel distances", -(-len(train) // CHUNK))
    ]
    return torch.cat(parts, 1)


@torch.no_grad()
def feature_distances(
    discriminator: Discriminator, samples: torch.Tensor, train: torch.Tensor
) -> torch.Tensor:
    """(S, N) cosine distances (1 - cos) between D's last convolutional features of samples and training images."""
    device = next(discriminator.parameters()).device

    def features(images: torch.Tensor) -> torch.Tensor:
        return F.normalize(discriminator.features(images.to(device)).flatten(1).float(), dim=1).cpu()

    reference = features(samples)
    parts = [
        1 - reference @ features(from_uint8(chunk)).T
        for chunk in progress(train.split(CHUNK), "Feature distances", -(-len(train) // CHUNK))
    ]
    return torch.cat(parts, 1)


def neighbour_grid(
    samples: torch.Tensor, train: torch.Tensor, distances: torch.Tensor, k: int
) -> tuple[Image.Image, torch.return_types.topk]:
    """One row per sample: the sample, then its k nearest training images captioned '#index d=distance'."""
    nearest = distances.topk(k, dim=1, largest=False)
    tiles, labels = [], []
    for sample, values, indices in zip(samples, nearest.values, nearest.indices, strict=True):
        tiles += [sample[None], from_uint8(train[indices])]
        labels += ["sample"] + [
            f"#{i} d={d:.3g}" for i, d in zip(indices.tolist(), values.tolist(), strict=True)
        ]
    return labelled_grid(torch.cat(tiles), k + 1, labels, min_tile=72), nearest


def run(cfg: DictConfig) -> dict:
    """Writes neighbors_pixel.png, neighbors_feature.png and neighbors.json; returns the nearest indices."""
    generator, discriminator = load_networks(cfg.ckpt_path, cfg.device, discriminator=True)
    train = training_images(
        cfg.ckpt_path, cfg.data, generator.image_size, generator.channels, cfg.paths.cache_dir
    )
    if not 1 <= cfg.k <= len(train):
        raise UserError(f"k={cfg.k} must be between 1 and the {len(train)} training images")
    z = sample_z(generator, cfg.num_samples, cfg.seed)
    labels = class_labels(generator, cfg.get("class"), len(z))
    # Quantized as a saved PNG would be, so an exact copy of a training image is at distance 0.
    samples = from_uint8(to_uint8(generate(generator, z, cfg.batch_size, progress, labels=labels)))
    out, report = Path(cfg.out_dir), {}
    for name, distances in (
        ("pixel", pixel_distances(samples, train)),
        ("feature", feature_distances(discriminator, samples, train)),
    ):
        grid, nearest = neighbour_grid(samples, train, distances, cfg.k)
        wrote(save_image(grid, out / f"neighbors_{name}.png"), f"samples and their {cfg.k} nearest by {name}")
        report[name] = {"indices": nearest.indices.tolist(), "distances": nearest.values.tolist()}
    (out / "neighbors.json").write_text(
        json.dumps({"seed": cfg.seed, "num_train": len(train), **report}, indent=1)
    )
    wrote(out / "neighbors.json", "training-set indices and distances")
    return report


main = tool_main("neighbors", run)

if __name__ == "__main__":
    main()
