"""Exact resume, atomic checkpoints, corrupt-checkpoint fallback and recovery from a killed training process."""

import csv
from pathlib import Path

import pytest
import torch

from dcgan_lit.errors import UserError
from dcgan_lit.train import train

DETERMINISTIC = ["trainer.deterministic=true", "seed=7", "callbacks.samples.every_n_steps=0"]


def losses(run_dir: Path) -> dict[int, tuple[str, str]]:
    """Iteration -> (loss_d, loss_g) exactly as logged (CSV text: no float rounding in the comparison)."""
    with open(run_dir / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/loss_d")]
    return {int(r["step"]): (r["train/loss_d"], r["train/loss_g"]) for r in rows}


def test_interrupted_then_resumed_run_reproduces_the_uninterrupted_losses(tiny_cfg, tmp_path):
    # 32 images / batch 8 = 4 iterations per epoch: the interruption at 6 is mid-epoch, after one epoch
    straight = tmp_path / "straight"
    train(tiny_cfg(*DETERMINISTIC, "trainer.max_steps=11", output_dir=straight))
    first = tmp_path / "first"
    train(tiny_cfg(*DETERMINISTIC, "trainer.max_steps=6", output_dir=first))
    second = tmp_path / "second"
    resume = f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}"
    train(tiny_cfg(*DETERMINISTIC, "trainer.max_steps=11", resume, "seed=999", output_dir=second))

    expected = losses(straight)
    assert sorted(expected) == list(range(11))
    assert losses(first) == {i: expected[i] for i in range(6)}
    assert losses(second) == {i: expected[i] for i in range(6, 11)}
