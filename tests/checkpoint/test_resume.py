"""Exact resume, atomic checkpoints, corrupt-checkpoint fallback and recovery from a killed training process."""

import csv
import logging
import os
import signal
import time
import types
from pathlib import Path

import lightning as L
import pytest
import torch

from dcgan_lit.checkpoint.io import load_weights
from dcgan_lit.checkpoint.resume import AtomicCheckpointIO, resolve_ckpt_path
from dcgan_lit.data import ImageFolderDataModule
from dcgan_lit.errors import UserError, exit_on_user_error
from dcgan_lit.model.module import DCGAN
from dcgan_lit.run.fit import train
from tests.helpers.config import TINY, compose_config
from tests.helpers.forked import start_train

DETERMINISTIC = ["trainer.deterministic=true", "seed=7", "callbacks.samples.every_n_steps=0"]


def losses(run_dir: Path) -> dict[int, tuple[str, str]]:
    """Iteration -> (loss_d, loss_g) exactly as logged (CSV text: no float rounding in the comparison)."""
    with open(run_dir / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/loss_d")]
    return {int(r["step"]): (r["train/loss_d"], r["train/loss_g"]) for r in rows}


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        [],
        ["model.lecam.weight=0.3"],
        ["augment=diffaugment", "model.ada.target=0.1", "model.ada.interval=2", "model.ada.speed_images=64"],
    ],
    ids=["paper", "lecam", "ada"],
)
def test_interrupted_then_resumed_run_reproduces_the_uninterrupted_losses(tiny_cfg, tmp_path, options):
    # 32 images / batch 8 = 4 iterations per epoch: the interruption at 6 is mid-epoch, after one epoch
    ema = "+callbacks.ema._target_=tests.helpers.callbacks.AveragedGenerator"
    straight = tmp_path / "straight"
    train(tiny_cfg(*DETERMINISTIC, *options, ema, "trainer.max_steps=11", output_dir=straight))
    first = tmp_path / "first"
    train(tiny_cfg(*DETERMINISTIC, *options, ema, "trainer.max_steps=6", output_dir=first))
    second = tmp_path / "second"
    resume = f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}"
    train(
        tiny_cfg(*DETERMINISTIC, *options, ema, "trainer.max_steps=11", resume, "seed=999", output_dir=second)
    )

    saved = load_weights(first / "checkpoints" / "last.ckpt")["ImageFolderDataModule"]["sampler"]
    assert saved["batches_consumed"] == 6  # the data order's position: 6 batches trained, none prefetched
    expected = losses(straight)
    assert sorted(expected) == list(range(11))
    assert losses(first) == {i: expected[i] for i in range(6)}
    assert losses(second) == {i: expected[i] for i in range(6, 11)}

    # and the end states are bitwise equal: G, D, the EMA, the fixed z, both Adam states, the counters
    ends = [load_weights(run / "checkpoints" / "last.ckpt") for run in (straight, second)]
    assert ends[0]["global_step"] == ends[1]["global_step"] == 11 * 2
    state, resumed = ends[0]["state_dict"], ends[1]["state_dict"]
    assert any(k.startswith("generator_ema.") for k in state) and state.keys() == resumed.keys()
    # LeCam's moving averages and ADA's probability travel in the checkpoint
    assert ("lecam.real_anchor" in state) == ("model.lecam.weight=0.3" in options)
    assert ("augment.p" in state) == ("model.ada.target=0.1" in options)
    assert all(torch.equal(state[k], resumed[k]) for k in state), "state dicts differ"
    for adam, adam_resumed in zip(*(end["optimizer_states"] for end in ends), strict=True):
        for key, values in adam["state"].items():
            assert all(torch.equal(v, adam_resumed["state"][key][n]) for n, v in values.items())


@pytest.mark.slow
def test_a_run_stopped_by_sigterm_saves_where_it_was_and_resumes_exactly(tiny_cfg, tmp_path, caplog):
    """Pre-emption: SIGTERM after 6 of 11 iterations, mid-epoch, with no periodic checkpoint to cover it."""
    quiet = [*DETERMINISTIC, "callbacks.model_checkpoint.every_n_steps=0"]  # 4 iterations per epoch
    straight = tmp_path / "straight"
    train(tiny_cfg(*quiet, "trainer.max_steps=11", output_dir=straight))
    stopped = tmp_path / "stopped"
    sigterm = ["+callbacks.stop._target_=tests.helpers.callbacks.SigtermAt", "+callbacks.stop.iteration=6"]
    cfg = tiny_cfg(*quiet, *sigterm, "trainer.max_steps=11", output_dir=stopped)
    with caplog.at_level(logging.WARNING), pytest.raises(SystemExit) as stop:
        exit_on_user_error(lambda: train(cfg))  # as train.py runs it
    assert stop.value.code == 128 + signal.SIGTERM  # a scheduler sees a stop, not a finished run
    last = stopped / "checkpoints" / "last.ckpt"
    assert load_weights(last)["global_step"] == 6 * 2  # 6 iterations done, then the stop
    assert f"Stopped by SIGTERM at iteration 6: {last} holds it" in caplog.text
    expected = losses(straight)
    assert losses(stopped) == {i: expected[i] for i in range(6)}
    resumed = tmp_path / "resumed"
    train(tiny_cfg(*quiet, "trainer.max_steps=11", f"ckpt_path={last}", output_dir=resumed))
    assert losses(resumed) == {i: expected[i] for i in range(6, 11)}  # nothing lost, nothing repeated


def test_after_a_ddp_resume_rank_0_continues_its_random_stream_and_the_others_draw_their_own():
    """The checkpoint holds rank 0's RNG states; restored on every rank, the ranks would draw the same z."""
    torch.manual_seed(3)
    checkpoint = {}
    DCGAN(image_size=32, ngf=8, ndf=8).on_save_checkpoint(checkpoint)
    uninterrupted = torch.randn(4, 100, 1, 1)
    noises = []
    for rank in (0, 1, 2):
        model = DCGAN(image_size=32, ngf=8, ndf=8)
        model.trainer = types.SimpleNamespace(global_rank=rank, global_step=0)  # what on_train_start reads
        model.on_load_checkpoint(checkpoint)
        torch.manual_seed(100 + rank)  # whatever each rank's RNG held before training starts
        model.on_train_start()
        noises.append(model.sample_noise(4))
    assert torch.equal(noises[0], uninterrupted)
    assert not torch.allclose(noises[1], noises[0]) and not torch.allclose(noises[2], noises[1])


@pytest.mark.slow
def test_periodic_checkpoints_count_iterations_and_survive_a_crash(tiny_cfg, tmp_path):
    """Resuming after a crash is the SIGKILL test's; here: what was saved when the crash came."""
    run = tmp_path / "crashing"
    crash = ["+callbacks.crash._target_=tests.helpers.callbacks.CrashAt", "+callbacks.crash.iteration=7"]
    every = ["model.d_steps=2", "callbacks.model_checkpoint.every_n_steps=3"]
    with pytest.raises(RuntimeError, match="simulated crash at iteration 7"):
        train(tiny_cfg("trainer.max_steps=20", *every, *crash, output_dir=run))
    # saves after iterations 3 and 6 (every_n_steps) and 4 (epoch end): the last is 6 iterations of
    # d_steps + 1 = 3 optimizer steps (Lightning's every_n_train_steps=3 would have saved after 7)
    assert load_weights(run / "checkpoints" / "last.ckpt")["global_step"] == 6 * 3


def save_tiny_checkpoint(path: Path, global_step: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {"generator.w": torch.ones(2)}, "global_step": global_step}, path)
    return path


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_ckpt_path_last_skips_damaged_and_unsafe_checkpoints(tmp_path, caplog):
    runs = tmp_path / "runs"
    good = save_tiny_checkpoint(runs / "2026-01-01_00-00-00" / "checkpoints" / "last.ckpt", 4)
    own = save_tiny_checkpoint(runs / "2026-01-03_00-00-00" / "checkpoints" / "last.ckpt", 8)
    own.write_bytes(own.read_bytes()[:100])  # a partial write
    evil = runs / "2026-01-02_00-00-00" / "checkpoints" / "last.ckpt"
    torch.save({"state_dict": {}, "payload": Exploit()}, save_tiny_checkpoint(evil, 6))
    os.utime(good, (1, 1))  # the oldest: the fallback must still reach it past the newer, unsafe one

    with caplog.at_level(logging.WARNING):
        assert resolve_ckpt_path("last", own.parents[1]).path == str(good)
    assert "is corrupt or not a PyTorch checkpoint" in caplog.text and str(own) in caplog.text
    assert "was refused" in caplog.text and str(evil) in caplog.text
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_an_explicit_damaged_or_malicious_checkpoint_is_one_clear_line(tiny_cfg, tmp_path):
    partial = save_tiny_checkpoint(tmp_path / "partial.ckpt", 3)
    partial.write_bytes(partial.read_bytes()[:-200])
    with pytest.raises(UserError, match=r"partial.ckpt is corrupt or not a PyTorch checkpoint"):
        train(tiny_cfg(f"ckpt_path={partial}"))
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": Exploit()}, evil)
    with pytest.raises(
        UserError, match=r"evil.ckpt was refused: .* \(Trying to load unsupported GLOBAL posix.system"
    ):
        train(tiny_cfg(f"ckpt_path={evil}"))
    assert not Path("pwned").exists()


def test_a_checkpoint_of_another_architecture_is_refused_or_skipped(tiny_cfg, tmp_path, caplog):
    run = tmp_path / "runs" / "first"
    train(tiny_cfg("trainer.max_steps=1", output_dir=run))
    with pytest.raises(UserError, match=r"was trained with model.ngf=8, but the config has model.ngf=16"):
        train(tiny_cfg("model.ngf=16", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"))
    with caplog.at_level(logging.WARNING):
        assert resolve_ckpt_path("last", tmp_path / "runs" / "second", {"ngf": 16}) is None
    assert "was trained with model.ngf=8" in caplog.text


def test_lightning_resume_reads_through_weights_only(image_folder, tmp_path):
    """Even a file handed straight to Trainer.fit reaches Lightning only through weights_only loading."""
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": Exploit()}, evil)
    trainer = L.Trainer(plugins=[AtomicCheckpointIO()], max_steps=1, logger=False, enable_checkpointing=False)
    datamodule = ImageFolderDataModule(path=str(image_folder), image_size=32, batch_size=8)
    with pytest.raises(UserError, match="was refused"):
        trainer.fit(DCGAN(image_size=32, ngf=8, ndf=8), datamodule=datamodule, ckpt_path=str(evil))
    assert not Path("pwned").exists()


@pytest.mark.slow
def test_training_killed_with_sigkill_resumes_from_its_last_checkpoint(image_folder, tmp_path):
    run = tmp_path / "killed"
    overrides = [
        "dataset=imagefolder",
        f"dataset.path={image_folder}",
        *TINY,
        "callbacks.model_checkpoint.every_n_steps=1",  # a write every iteration: the kill may land mid-write
        f"hydra.run.dir={run}",
    ]
    process = start_train([*overrides, "trainer.max_steps=100000"], tmp_path, tmp_path / "killed.log")
    last = run / "checkpoints" / "last.ckpt"
    try:
        deadline = time.monotonic() + 120
        while not (last.exists() and load_weights(last)["global_step"] >= 3 * 2) and process.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.05)
        time.sleep(0.3)  # somewhere in the next iterations and checkpoint writes
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL

    saved = load_weights(last)  # still a whole checkpoint, whatever the kill interrupted
    iteration = saved["global_step"] // 2
    assert iteration >= 3
    resumed = compose_config(
        [o for o in overrides if not o.startswith("hydra.")]
        + [f"trainer.max_steps={iteration + 2}", "ckpt_path=last"],
        run,
    )
    train(resumed)
    assert load_weights(last)["global_step"] == (iteration + 2) * 2
    assert sorted(losses(run)) == [iteration, iteration + 1]  # picked up exactly where the checkpoint was
