"""The classic loop of the PyTorch DCGAN example (pytorch/examples dcgan/main.py), for the benchmarks.

Its data path (torchvision ImageFolder decoding files every step, a DataLoader with workers) and its step (D on
real then on fake, then G, BCE, Adam 2e-4 / 0.5) as the example writes them, on dcgan-lit's G and D (the same
architecture and N(0, 0.02) initialisation), so that timings and FIDs compare the loop, not the networks.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision.transforms as T
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import default_loader

from dcgan_lit.data.images import find_images
from dcgan_lit.model.networks import Discriminator, Generator, init_weights


class FlatImageFolder(Dataset):
    """ImageFolder's decoding (PIL loader + transform per item) over a folder without class subfolders."""

    def __init__(self, root: Path, transform, files: list[Path] | None = None) -> None:
        self.files, self.transform = files if files is not None else find_images(root), transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(default_loader(str(self.files[index]))), 0


def image_folder(root: str | Path, size: int, indices: list[int] | None = None) -> Dataset:
    """The example's dataset: Resize, CenterCrop, ToTensor, Normalize to [-1, 1], decoded at every access.

    ``indices``: only these of the folder's images, in dcgan-lit's file order (``find_images``), so that a
    subset is the same images as the datamodule's ``subset``.
    """
    transform = T.Compose(
        [T.Resize(size), T.CenterCrop(size), T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
    )
    root = Path(root).expanduser()
    if indices is not None:
        files = find_images(root)
        return FlatImageFolder(root, transform, [files[i] for i in indices])
    if any(p.is_dir() for p in root.iterdir()):
        return ImageFolder(str(root), transform=transform)
    return FlatImageFolder(root, transform)  # the images straight in the folder (a flat unzip)


def synthetic(count: int, size: int) -> Dataset:
    """Random float images in [-1, 1] (for timing without data)."""
    return TensorDataset(torch.rand(count, 3, size, size) * 2 - 1, torch.zeros(count))


def loader(dataset: Dataset, batch_size: int, workers: int, seed: int | None = None) -> DataLoader:
    """The example's DataLoader: shuffled, ``workers`` processes; ``seed`` fixes the order."""
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True, generator=generator
    )


class ClassicDCGAN:
    """netG, netD, their Adam optimizers and BCE, as the example builds them; :meth:`step` is its loop body."""

    def __init__(self, image_size: int, device: torch.device, latent_dim: int = 100) -> None:
        self.device, self.latent_dim = device, latent_dim
        self.netG = Generator(image_size=image_size, latent_dim=latent_dim).to(device)
        self.netD = Discriminator(image_size=image_size).to(device)
        self.netG.apply(init_weights)
        self.netD.apply(init_weights)
        self.optimizerD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optimizerG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.criterion = torch.nn.BCEWithLogitsLoss()

    def step(self, real: torch.Tensor) -> tuple[float, float]:
        """One iteration of the example: D on real and fake, then G; returns (errD, errG)."""
        netD, netG, criterion, device = self.netD, self.netG, self.criterion, self.device
        real = real.to(device)
        b = real.size(0)
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        errD_real = criterion(netD(real), torch.ones(b, device=device))
        errD_real.backward()
        fake = netG(torch.randn(b, self.latent_dim, 1, 1, device=device))
        errD_fake = criterion(netD(fake.detach()), torch.zeros(b, device=device))
        errD_fake.backward()
        self.optimizerD.step()
        # (2) Update G network: maximize log(D(G(z)))
        netG.zero_grad()
        errG = criterion(netD(fake), torch.ones(b, device=device))
        errG.backward()
        self.optimizerG.step()
        return (errD_real + errD_fake).item(), errG.item()

    def state_dict(self) -> dict:
        return {
            "netG": self.netG.state_dict(),
            "netD": self.netD.state_dict(),
            "optimizerG": self.optimizerG.state_dict(),
            "optimizerD": self.optimizerD.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.netG.load_state_dict(state["netG"])
        self.netD.load_state_dict(state["netD"])
        self.optimizerG.load_state_dict(state["optimizerG"])
        self.optimizerD.load_state_dict(state["optimizerD"])
