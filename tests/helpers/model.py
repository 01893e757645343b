"""A tiny DCGAN trained in-process by a bare Lightning Trainer, and parameter snapshots to compare."""

from __future__ import annotations

import lightning as L
import torch

from dcgan_lit.data.datamodule import UInt8ImageDataset
from dcgan_lit.model.module import DCGAN


def tiny_model(**kwargs) -> DCGAN:
    return DCGAN(**{"image_size": 32, "channels": 3, "ngf": 8, "ndf": 8, "num_fixed_samples": 4, **kwargs})


def fit(model: DCGAN, steps: int, batch_size: int = 8, **trainer_kwargs) -> L.Trainer:
    """``steps`` training iterations (batches) of ``model`` on 64 random 32x32 images (with random labels of
    its classes when it is conditional: batches ``(images, labels)``, as the data modules make them)."""
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    if model.class_names:
        labels = torch.randint(0, len(model.class_names), (64,))
        dataset = UInt8ImageDataset(images, labels=labels)
        collate = lambda b: (b[0].float() / 127.5 - 1, b[1])  # noqa: E731
    else:
        dataset = UInt8ImageDataset(images)
        collate = lambda b: b.float() / 127.5 - 1  # noqa: E731
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    trainer = L.Trainer(
        accelerator=trainer_kwargs.pop("accelerator", "cpu"),
        max_steps=steps * model.optimizer_steps_per_iteration,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_kwargs,
    )
    trainer.fit(model, loader)
    return trainer


def snapshot(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.named_parameters()}


def changed(before: dict, net: torch.nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in net.named_parameters())
