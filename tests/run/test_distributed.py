"""DDP: start-up checks, and a real 2-process run on CPU (gloo) that shows gradients are averaged."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import DataLoader

from dcgan_lit.errors import UserError
from dcgan_lit.model.module import DCGAN
from dcgan_lit.run.distributed import check_distributed
from tests.helpers.config import ROOT, compose_config
from tests.helpers.ddp_probe import FrozenBatchNorm
from tests.helpers.runs import as_multirun_job, run_cli, tiny_args


def cpu_ddp_trainer(**kwargs) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy=DDPStrategy(find_unused_parameters=True),
        logger=False,
        **kwargs,
    )


def test_sync_batchnorm_on_cpu_is_refused_at_start_up():
    with pytest.raises(UserError, match="trainer.sync_batchnorm=true needs GPUs"):
        check_distributed(cpu_ddp_trainer(sync_batchnorm=True))
    check_distributed(cpu_ddp_trainer())  # without it, fine


def test_local_ddp_inside_a_multirun_is_refused(tmp_path):
    as_multirun_job(compose_config([], tmp_path / "0"), tmp_path, num=0)
    try:
        with pytest.raises(UserError, match="cannot run inside a local multirun"):
            check_distributed(cpu_ddp_trainer())
    finally:
        HydraConfig.instance().cfg = None


def replay_union_of_ranks(ranks: list[dict], iterations: int) -> dict[str, torch.Tensor]:
    """One process, batch = the union of the ranks' batches and latents, from the ranks' common start."""
    model = DCGAN(image_size=32, channels=3, latent_dim=100, ngf=8, ndf=8, num_fixed_samples=16)
    model.load_state_dict(ranks[0]["initial"])
    batches = [torch.cat(step) for step in zip(*(r["batches"] for r in ranks), strict=True)]
    noises = iter([torch.cat(step) for step in zip(*(r["noises"] for r in ranks), strict=True)])
    model.sample_noise = lambda n: next(noises)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=iterations * model.optimizer_steps_per_iteration,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[FrozenBatchNorm()],
    )
    trainer.fit(model, DataLoader(batches, batch_size=None))
    return model.state_dict()


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_averages_gradients(image_folder, tmp_path):
    """``train.py trainer=ddp trainer.devices=2`` on CPU (gloo), 3 iterations of batch 8 per rank.

    Compared: the weights of both ranks after training (identical), and the weights of a single process
    trained from the same start on the union of both ranks' batches (16 images, 16 latents per iteration):
    equal within 1e-5. BatchNorm is put in eval mode (fixed running statistics) in both runs, because with
    batch statistics a split batch is normalized differently from the whole one; torch's SyncBatchNorm, which
    would make them agree, runs on GPUs only. Also checked: each rank drew different latents and saw
    different images, that only rank 0 wrote sample grids, and that the tolerance tells averaged from
    unaveraged gradients (rank 0's batches alone end up far from the DDP weights).
    """
    run = tmp_path / "ddp"
    probe = f"+callbacks.probe={{_target_:tests.helpers.ddp_probe.RecordRanks,dirpath:{run / 'ranks'}}}"
    result = run_cli(
        *tiny_args(image_folder, "trainer=ddp", "trainer.devices=2", "trainer.max_steps=3", probe),
        "dataset.hflip=false",
        # every check each iteration: the guards' and the checkpoint's decisions are reduced over the ranks
        "callbacks.divergence.check_every_n_steps=1",
        "callbacks.divergence.collapse_every_n_steps=1",
        "callbacks.model_checkpoint.every_n_steps=1",
        f"hydra.run.dir={run}",
        cwd=tmp_path,
        env_extra={"PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(run / "ranks" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and ranks[0]["world_size"] == 2
    assert [len(r["batches"]) for r in ranks] == [3, 3]
    assert all(b.shape == (8, 3, 32, 32) for r in ranks for b in r["batches"])
    # one pass is 2 batches per rank: together the ranks' shares are all 32 images, each once (the data
    # module's resumable sampler shards one permutation, with rank 0's seed)
    first_pass = torch.cat([*ranks[0]["batches"][:2], *ranks[1]["batches"][:2]]).flatten(1)
    assert torch.unique(first_pass, dim=0).size(0) == 32

    for key, value in ranks[0]["final"].items():
        assert torch.equal(value, ranks[1]["final"][key]), key
    assert not torch.equal(
        ranks[0]["final"]["generator.main.0.weight"], ranks[0]["initial"]["generator.main.0.weight"]
    )
    for noise0, noise1 in zip(ranks[0]["noises"], ranks[1]["noises"], strict=True):
        assert not torch.allclose(noise0, noise1)
    assert not any(
        torch.equal(b0, b1) for b0, b1 in zip(ranks[0]["batches"], ranks[1]["batches"], strict=True)
    )
    assert [r["wrote_samples"] for r in ranks] == [True, False]
    assert (run / "checkpoints" / "last.ckpt").is_file()

    single = replay_union_of_ranks(ranks, iterations=3)
    for key, value in single.items():
        assert torch.allclose(value, ranks[0]["final"][key], atol=1e-5, rtol=0), key
    rank0_alone = replay_union_of_ranks(ranks[:1], iterations=3)
    assert max((rank0_alone[k] - v).abs().max() for k, v in ranks[0]["final"].items()) > 1e-4
