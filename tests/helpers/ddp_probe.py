"""A test-only callback that records what each DDP rank saw and ended with, for tests/run/test_distributed.py
(loaded by train.py from ``+callbacks.probe={_target_:tests.helpers.ddp_probe.RecordRanks,...}``)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from dcgan_lit.callbacks import SampleGrids


def freeze_batch_statistics(module: torch.nn.Module) -> None:
    """Puts every BatchNorm layer in eval mode: each sample is normalized alone, by the fixed running stats."""
    for layer in module.modules():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            layer.eval()


class FrozenBatchNorm(L.Callback):
    """BatchNorm layers in eval mode at every batch, so a batch's result doesn't depend on how it is split."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        freeze_batch_statistics(pl_module)


class RecordRanks(FrozenBatchNorm):
    """Saves ``rank<r>.pt`` per rank: initial and final weights, every real batch and every latent batch."""

    def __init__(self, dirpath: str, freeze_batchnorm: bool = True) -> None:
        self.dirpath = Path(dirpath)
        self.freeze_batchnorm = freeze_batchnorm
        self.batches: list[torch.Tensor] = []
        self.noises: list[torch.Tensor] = []

    def on_train_start(self, trainer, pl_module) -> None:
        self.initial = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        draw = pl_module.sample_noise

        def recording_sample_noise(n: int) -> torch.Tensor:
            noise = draw(n)
            self.noises.append(noise.detach().clone())
            return noise

        pl_module.sample_noise = recording_sample_noise

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.freeze_batchnorm:
            super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
        images, _ = batch._replace(batch_size=None, hflip=False).batch(0)  # the block's images (unflipped)
        self.batches.append(images.detach().clone())

    def on_train_end(self, trainer, pl_module) -> None:
        samples = next(c for c in trainer.callbacks if isinstance(c, SampleGrids))
        self.dirpath.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "rank": trainer.global_rank,
                "world_size": trainer.world_size,
                "initial": self.initial,
                "final": {k: v.detach().clone() for k, v in pl_module.state_dict().items()},
                "batches": self.batches,
                "noises": self.noises,
                "wrote_samples": samples.last_written is not None,
            },
            self.dirpath / f"rank{trainer.global_rank}.pt",
        )
