"""One LightningDataModule per data source, all over one decoded-once uint8 pipeline."""

from dcgan_lit.data.celeba import CelebADataModule
from dcgan_lit.data.cifar import CIFAR10DataModule
from dcgan_lit.data.datamodule import ImageDataModule, UInt8ImageDataset
from dcgan_lit.data.folder import (
    CatFacesDataModule,
    ImageFolderDataModule,
    MonetDataModule,
    PokemonDataModule,
)
from dcgan_lit.data.lsun import LSUNDataModule
from dcgan_lit.data.mnist import MNISTDataModule
from dcgan_lit.data.video import VideoDataModule

__all__ = [
    "CIFAR10DataModule",
    "CelebADataModule",
    "CatFacesDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "LSUNDataModule",
    "MNISTDataModule",
    "MonetDataModule",
    "PokemonDataModule",
    "UInt8ImageDataset",
    "VideoDataModule",
]
