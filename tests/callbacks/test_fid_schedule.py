"""FID's cost at start-up and its schedule: counts by device, evaluations every N epochs within a budget."""

from __future__ import annotations

import logging

import pytest
import torch
from omegaconf import OmegaConf

import dcgan_lit.callbacks.fid as fid_module
from dcgan_lit.callbacks.fid import build_fid_callback
from dcgan_lit.errors import UserError
from dcgan_lit.metrics import cost
from dcgan_lit.run.fit import train


def test_evaluations_are_spaced_to_fit_the_budget():
    assert cost.evaluations_every(eval_seconds=60, epoch_seconds=100, budget=0.1) == 6
    assert cost.evaluations_every(eval_seconds=10, epoch_seconds=100, budget=0.1) == 1
    assert cost.evaluations_every(eval_seconds=61, epoch_seconds=100, budget=0.1) == 7
    assert cost.evaluations_every(eval_seconds=60, epoch_seconds=100, budget=0.5) == 2
    assert cost.evaluations_every(eval_seconds=60, epoch_seconds=0, budget=0.1) == 1


def test_a_known_run_length_counts_the_evaluation_after_the_last_epoch():
    """An evaluation 150 s, an epoch 174 s, 25 epochs (cat faces on 2 CPU cores): every 9th epoch alone fits
    10%, but with the always-scored last epoch it is 9, 18, 25 = 450 s > 435 s; the run-aware N fits."""
    assert cost.evaluations_every(150, 174, 0.1) == 9
    every = cost.evaluations_every(150, 174, 0.1, total_epochs=25)
    assert every == 13  # 13 and 25: 300 s of 4,350 s
    assert cost.evaluations_every(60, 100, 0.1, total_epochs=12) == 6  # 6 and 12: the last is already due
    assert cost.evaluations_every(500, 100, 0.1, total_epochs=10) == 10  # over budget: only the last epoch
    assert cost.evaluations_every(60, 100, 0.1, total_epochs=None) == 6


def test_auto_counts_follow_the_device():
    assert cost.resolve_counts("auto", "auto", "cpu") == (2_000, 5_000)
    assert cost.resolve_counts("auto", "auto", torch.device("cuda")) == (50_000, 50_000)
    assert cost.resolve_counts(300, None, "cpu") == (300, None)
    assert cost.resolve_counts("auto", 1_000, "cuda") == (50_000, 1_000)


def test_seconds_per_image_warms_up_then_times(monkeypatch):
    calls = []
    clock = iter([10.0, 16.0])  # start, end of the timed passes
    monkeypatch.setattr(cost.time, "perf_counter", lambda: next(clock))
    seconds = cost.seconds_per_image(lambda images: calls.append(len(images)), torch.zeros(3, 3, 8, 8), 2)
    assert calls == [3, 3, 3]  # one warm-up pass, then two timed ones
    assert seconds == pytest.approx(6.0 / (2 * 3))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"num_fake": "some"}, "metrics.fid.num_fake=some must be an integer >= 2 (or auto)"),
        ({"every_n_epochs": "often"}, "metrics.fid.every_n_epochs=often must be an integer >= 0 (or auto)"),
        (
            {"num_real": "all"},
            "metrics.fid.num_real=all must be an integer >= 2 (or null, auto); null: all images",
        ),
        ({"num_fake": True}, "metrics.fid.num_fake=true must be an integer >= 2 (or auto)"),
        ({"budget": 0}, "metrics.fid.budget=0 must be a fraction of training time in (0, 1]"),
        ({"batch_size": "auto"}, "metrics.fid.batch_size=auto must be an integer >= 1"),
    ],
)
def test_bad_fid_settings_are_one_line(override, message):
    settings = {"num_fake": "auto", "num_real": "auto", "every_n_epochs": "auto", "budget": 0.1, **override}
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        cost.check_fid_settings(OmegaConf.create(settings))
    cost.check_fid_settings(OmegaConf.create({"num_fake": "auto", "num_real": None, "every_n_epochs": 0}))


def train_with_cost(tiny_cfg, monkeypatch, seconds_per_image: float, *overrides: str):
    """A tiny 3-epoch run with FID on ``every_n_epochs=auto``; the measured cost is replaced by a fixed one."""
    monkeypatch.setattr(fid_module, "seconds_per_image", lambda extractor, images: seconds_per_image)
    built = []

    def build(metrics, cache_dir):
        built.append(build_fid_callback(metrics, cache_dir))
        return built[-1]

    monkeypatch.setattr(fid_module, "build_fid_callback", build)  # conf/callbacks/fid.yaml's _target_
    cfg = tiny_cfg("metrics=tiny", "metrics.fid.every_n_epochs=auto", "trainer.max_epochs=3", *overrides)
    metrics = train(cfg)
    return built[0], metrics


def test_an_expensive_fid_is_only_scored_after_the_last_epoch(tiny_cfg, tmp_path, monkeypatch, caplog):
    with caplog.at_level(logging.INFO):
        callback, metrics = train_with_cost(tiny_cfg, monkeypatch, 10.0)  # 256 fakes: ~43 min an evaluation
    assert (
        callback.schedule.every_n_epochs == 3
    )  # over any budget in a 3-epoch run: N = the run, only the last scored
    assert [epoch for epoch, _ in callback.history] == [2]  # the last epoch is always scored
    assert "val/fid" in metrics and (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()
    assert "FID cost on cpu: 10.000 s per image, so ~43 min per evaluation (256 fakes)" in caplog.text
    assert f"FID every {callback.schedule.every_n_epochs} epoch(s) and after the last" in caplog.text
    assert (
        "256 fakes vs <= 1,000 training images, tiny-16d-seed0" in caplog.text
    )  # the protocol, with the value


def test_a_cheap_fid_is_scored_every_epoch(tiny_cfg, monkeypatch):
    callback, _ = train_with_cost(tiny_cfg, monkeypatch, 0.0)
    assert callback.schedule.every_n_epochs == 1
    assert [epoch for epoch, _ in callback.history] == [0, 1, 2]


def test_a_fixed_schedule_is_kept_and_the_last_epoch_still_scored(tiny_cfg, monkeypatch):
    callback, _ = train_with_cost(tiny_cfg, monkeypatch, 10.0, "metrics.fid.every_n_epochs=2")
    assert callback.schedule.every_n_epochs == 2
    assert [epoch for epoch, _ in callback.history] == [1, 2]


def test_every_n_epochs_zero_never_scores(tiny_cfg, monkeypatch):
    callback, metrics = train_with_cost(tiny_cfg, monkeypatch, 0.0, "metrics.fid.every_n_epochs=0")
    assert callback.history == [] and "val/fid" not in metrics
