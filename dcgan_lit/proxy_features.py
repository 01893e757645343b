"""Proxy FID: FID computed on the features of a small CNN trained in the repo, for comparisons offline.

The feature network is trained by self-supervised rotation prediction (0/90/180/270 degrees) on 32x32 cat
faces, with a fixed seed, by one command; its checkpoint holds only tensors (loaded with weights_only=True):

    python -m dcgan_lit.proxy_features train --out proxy_features.pt
    python -m dcgan_lit.proxy_features score --features proxy_features.pt RUN/checkpoints/last.ckpt ...

Its numbers are comparable only with each other (same feature network, same sample counts), not with
published Inception FIDs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from dcgan_lit.checkpoint import generator_from_checkpoint
from dcgan_lit.errors import UserError

IMAGE_SIZE = 32


class ProxyFeatures(nn.Module):
    """Images (N, 3, H, W) in [-1, 1] -> (N, 64) features (resized to 32x32); ``rotation_head`` predicts 4 angles."""

    num_features = 64

    def __init__(self) -> None:
        super().__init__()
        widths = (3, 16, 32, 64)
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths, widths[1:], strict=False):
            layers += [nn.Conv2d(c_in, c_out, 3, 1, 1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            layers += [nn.Conv2d(c_out, c_out, 3, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.rotation_head = nn.Linear(self.num_features, 4)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != IMAGE_SIZE:
            images = F.interpolate(
                images, size=IMAGE_SIZE, mode="bilinear", antialias=True, align_corners=False
            )
        return self.body(images).mean(dim=(2, 3))


def load_catfaces(data_dir: str | Path) -> torch.Tensor:
    """All cat faces at 32x32 as a uint8 (N, 3, 32, 32) tensor, through the project's cached datamodule."""
    from dcgan_lit.data import CatFacesDataModule

    cache_dir = os.environ.get("DCGAN_CACHE_DIR", str(Path.home() / ".cache" / "dcgan_lit"))
    datamodule = CatFacesDataModule(
        path=str(Path(data_dir) / "catfaces"), image_size=IMAGE_SIZE, cache_dir=cache_dir
    )
    datamodule.setup()
    return datamodule.train_set.images


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return images.float() / 127.5 - 1.0


def train_proxy(images: torch.Tensor, steps: int = 600, batch_size: int = 64, seed: int = 0) -> ProxyFeatures:
    """Trains :class:`ProxyFeatures` to predict which of 4 rotations was applied; deterministic given ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    network = ProxyFeatures()
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    network.train()
    for step in range(steps):
        index = torch.randint(0, images.size(0), (batch_size,), generator=generator)
        batch = to_unit_range(images[index])
        angles = torch.randint(0, 4, (batch_size,), generator=generator)
        rotated = torch.stack(
            [torch.rot90(x, int(k), dims=(1, 2)) for x, k in zip(batch, angles, strict=True)]
        )
        loss = F.cross_entropy(network.rotation_head(network(rotated)), angles)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step:5d}  rotation loss {loss.item():.4f}", flush=True)
    return network.eval()


def load_proxy(path: str | Path) -> ProxyFeatures:
    """The trained feature network from ``train``'s output, eval mode, loaded with weights_only=True."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"proxy features {path}: no such file; make it with `python -m dcgan_lit.proxy_features train --out {path}`"
        )
    network = ProxyFeatures()
    network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return network.eval()


@torch.no_grad()
def proxy_fid(
    network: ProxyFeatures,
    real: torch.Tensor,
    checkpoint: str | Path,
    num_fake: int = 5000,
    seed: int = 0,
    ema: bool = True,
) -> float:
    """Proxy FID between ``real`` (uint8) and ``num_fake`` samples of the checkpoint's generator (EMA if saved)."""
    generator = generator_from_checkpoint(checkpoint, prefer_ema=ema)
    metric = FrechetInceptionDistance(feature=network, reset_real_features=False).eval()
    for chunk in real.split(500):
        metric.update(to_unit_range(chunk), real=True)
    torch.manual_seed(seed)
    for start in range(0, num_fake, 500):
        z = torch.randn(min(500, num_fake - start), generator.latent_dim, 1, 1)
        metric.update(generator(z), real=False)
    return float(metric.compute())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m dcgan_lit.proxy_features", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train the rotation-prediction feature network on cat faces")
    train.add_argument("--data-dir", default=os.environ.get("DCGAN_DATA_DIR", "data"))
    train.add_argument("--out", default="proxy_features.pt")
    train.add_argument("--steps", type=int, default=600)
    train.add_argument("--seed", type=int, default=0)
    score = commands.add_parser("score", help="proxy FID of checkpoints against the cat faces")
    score.add_argument("checkpoints", nargs="+")
    score.add_argument("--features", default="proxy_features.pt")
    score.add_argument("--data-dir", default=os.environ.get("DCGAN_DATA_DIR", "data"))
    score.add_argument("--num-real", type=int, default=5000)
    score.add_argument("--num-fake", type=int, default=5000)
    score.add_argument(
        "--no-ema", action="store_true", help="score the raw generator even when an EMA one is saved"
    )
    args = parser.parse_args(argv)

    images = load_catfaces(args.data_dir)
    if args.command == "train":
        network = train_proxy(images, steps=args.steps, seed=args.seed)
        torch.save(network.state_dict(), args.out)
        print(f"wrote {args.out}")
        return
    network = load_proxy(args.features)
    real = images[torch.randperm(images.size(0), generator=torch.Generator().manual_seed(0))[: args.num_real]]
    for checkpoint in args.checkpoints:
        print(
            f"{proxy_fid(network, real, checkpoint, args.num_fake, ema=not args.no_ema):10.3f}  {checkpoint}",
            flush=True,
        )


if __name__ == "__main__":
    main()
