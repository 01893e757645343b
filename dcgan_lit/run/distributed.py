"""Start-up checks for multi-process training (DDP): one clear line instead of a failure inside the ranks."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

from dcgan_lit.errors import UserError
from dcgan_lit.run.sweep import in_multirun


def check_distributed(trainer: L.Trainer) -> None:
    """Refuses the DDP set-ups that would fail once the processes are running."""
    strategy = trainer.strategy
    if (
        trainer.world_size > 1
        and getattr(strategy, "_layer_sync", None) is not None
        and strategy.root_device.type == "cpu"
    ):
        raise UserError(
            "trainer.sync_batchnorm=true needs GPUs: torch's SyncBatchNorm does not run on CPUs. "
            "Set trainer.sync_batchnorm=false or train on accelerator=gpu"
        )
    if in_multirun() and isinstance(getattr(strategy, "launcher", None), _SubprocessScriptLauncher):
        raise UserError(
            "trainer=ddp with several local devices cannot run inside a local multirun (-m): Lightning starts "
            "the other ranks by re-running the command line, which would start the sweep again. Use "
            "hydra/launcher=slurm (one SLURM task per device) or run the DDP configurations one at a time"
        )
