"""One figure: a real training batch beside samples of the untrained and of the trained generator.

python -m dcgan_lit.tools.real_vs_fake ckpt_path=last.ckpt num_images=64
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig
from PIL import Image

from dcgan_lit.api import grid, to_pil
from dcgan_lit.model.networks import reinitialised
from dcgan_lit.model.sampling import generate
from dcgan_lit.pixels import from_uint8
from dcgan_lit.tools.app import load_networks, progress, tool_main, wrote
from dcgan_lit.tools.drawing import save_image, side_by_side, titled
from dcgan_lit.tools.latent import class_labels, sample_z
from dcgan_lit.tools.training_data import training_images


def panel(images: torch.Tensor, title: str, nrow: int) -> Image.Image:
    """A titled grid of images in [-1, 1]."""
    return titled(to_pil(grid(images, nrow, pad_value=1.0))[0], title)


def run(cfg: DictConfig) -> Path:
    """Writes real_vs_fake.png: real | untrained G | trained G, the generators on the same z."""
    generator, _ = load_networks(cfg.ckpt_path, cfg.device)
    train = training_images(
        cfg.ckpt_path, cfg.data, generator.image_size, generator.channels, cfg.paths.cache_dir
    )
    count = min(cfg.num_images, len(train))
    picked = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed))[:count]
    z = sample_z(generator, count, cfg.seed)
    labels = class_labels(generator, cfg.get("class"), count)
    # Batch statistics, as in the first training step: in eval mode fresh BatchNorm statistics make it flat gray.
    untrained = reinitialised(generator, cfg.seed).train()
    nrow = max(1, int(count**0.5))
    figure = side_by_side(
        [
            panel(from_uint8(train[picked]), "real", nrow),
            panel(generate(untrained, z, cfg.batch_size, progress, labels=labels), "untrained G", nrow),
            panel(generate(generator, z, cfg.batch_size, progress, labels=labels), "trained G", nrow),
        ]
    )
    out = save_image(figure, cfg.out)
    wrote(out, f"{count} real images | untrained G | trained G")
    return out


main = tool_main("real_vs_fake", run)

if __name__ == "__main__":
    main()
