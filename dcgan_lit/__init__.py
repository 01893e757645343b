"""dcgan-lit: DCGAN (Radford, Metz & Chintala, 2015) as a Lightning + Hydra experiment framework."""

from typing import Any

from dcgan_lit.api import load_discriminator, load_generator, save_grid, to_pil
from dcgan_lit.model.networks import Discriminator, Generator

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


def __getattr__(name: str) -> Any:
    # DCGAN imports Lightning (seconds): only when asked for, so that using a trained generator stays light
    if name == "DCGAN":
        from dcgan_lit.model.module import DCGAN

        return DCGAN
    raise AttributeError(f"module 'dcgan_lit' has no attribute {name!r}")
