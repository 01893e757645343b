"""dcgan-lit: DCGAN (Radford, Metz & Chintala, 2015) as a Lightning + Hydra experiment framework."""

from dcgan_lit.api import load_discriminator, load_generator, save_grid, to_pil
from dcgan_lit.module import DCGAN
from dcgan_lit.networks import Discriminator, Generator

__all__ = [
    "DCGAN",
    "Discriminator",
    "Generator",
    "load_discriminator",
    "load_generator",
    "save_grid",
    "to_pil",
]
__version__ = "0.1.0"
