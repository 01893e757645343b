"""The training images of a run, for the tools that compare samples with them (neighbors, real_vs_fake, ...)."""

from __future__ import annotations

from pathlib import Path

import torch

from dcgan_lit.errors import UserError


def training_images(
    ckpt_path: str | Path, data: str | None, image_size: int, channels: int, cache_dir: str | None = None
) -> torch.Tensor:
    """The training set as (N, C, H, W) uint8: the folder ``data`` if given, else the dataset in the run's config.

    The run's config is ``<run>/.hydra/config.yaml`` next to ``<run>/checkpoints/<file>.ckpt``; decoding goes
    through the dataset's own cache, so this is instant after training.
    """
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from dcgan_lit.data import ImageFolderDataModule

    if data:
        datamodule = ImageFolderDataModule(
            path=str(data), image_size=image_size, channels=channels, cache_dir=cache_dir
        )
    else:
        run_config = Path(ckpt_path).expanduser().resolve().parent.parent / ".hydra" / "config.yaml"
        if not run_config.is_file():
            raise UserError(
                f"no run config at {run_config} to find the training images; pass data=<folder of images>"
            )
        datamodule = instantiate(OmegaConf.load(run_config).dataset)
    datamodule.batch_size, datamodule.drop_last = 1, False
    datamodule.setup("fit")
    images = datamodule.train_set.images
    if tuple(images.shape[1:]) != (channels, image_size, image_size):
        raise UserError(
            f"the training images are {tuple(images.shape[1:])} but the model makes "
            f"{(channels, image_size, image_size)}; pass data=<folder> with images for this model"
        )
    return images
