"""Divergence guards: non-finite losses stop the run and keep the last good checkpoint; D-wins and collapse."""

import csv
import logging
import sys
import types
from pathlib import Path

import pytest
import torch

from dcgan_lit.callbacks.divergence import DivergenceGuard, feature_diversity
from dcgan_lit.callbacks.model_checkpoint import state_is_finite
from dcgan_lit.checkpoint.io import load_weights
from dcgan_lit.errors import TrainingDiverged
from dcgan_lit.model.module import DCGAN
from dcgan_lit.run.fit import train


def health_rows(run: Path, key: str) -> dict[int, float]:
    with open(run / "csv" / "metrics.csv") as f:
        return {int(r["step"]): float(r[key]) for r in csv.DictReader(f) if r.get(key)}


@pytest.mark.slow
@pytest.mark.parametrize("log_every", [1, 4])  # 4: iteration 6 is not a logged one (3, 7, ...)
def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tiny_cfg, tmp_path, log_every):
    run = tmp_path / "nan"
    cfg = tiny_cfg(
        "trainer.max_steps=40",
        f"trainer.log_every_n_steps={log_every}",
        "+callbacks.poison._target_=tests.helpers.callbacks.PoisonAt",
        "+callbacks.poison.iteration=6",
        "callbacks.model_checkpoint.every_n_steps=1",
        "callbacks.divergence.check_every_n_steps=5",
        output_dir=run,
    )
    with pytest.raises(TrainingDiverged) as error:
        train(cfg)
    message = str(error.value)
    first_bad = int(message.split("non-finite loss at iteration ")[1].split(";")[0])
    losses = [health_rows(run, "train/loss_d"), health_rows(run, "train/loss_g")]
    logged = [i for loss in losses for i, v in loss.items() if not torch.isfinite(torch.tensor(v))]
    assert first_bad == 6  # the first bad iteration, not the check (at 10) that noticed it
    assert min(logged) == (6 if log_every == 1 else 7)  # the logs show it at the next logged iteration
    checkpoint = load_weights(run / "checkpoints" / "last.ckpt")
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values())
    assert checkpoint["global_step"] == 6 * 2  # written after iterations 0-5; the diverged 6-9 were refused
    assert "last.ckpt (iteration 6), is kept" in message
    assert "\n" not in message


def spy_host_syncs(monkeypatch, filename: str) -> list[str]:
    """Records every .item()/.tolist()/bool()/float()/int() of a tensor made while ``filename`` is on the stack."""
    calls = []
    for name in ("item", "__bool__", "__float__", "__int__", "tolist"):
        original = getattr(torch.Tensor, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            frame = sys._getframe(1)
            while frame is not None and not frame.f_code.co_filename.endswith(filename):
                frame = frame.f_back
            if frame is not None:
                calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, spy)
    return calls


def test_d_wins_is_logged_and_stops_the_run_when_asked(tiny_cfg, tmp_path, caplog, monkeypatch):
    syncs = spy_host_syncs(monkeypatch, "callbacks/divergence.py")
    run = tmp_path / "dwins"
    cfg = tiny_cfg(
        "trainer.max_steps=12",
        "callbacks.divergence.action=stop",
        "callbacks.divergence.check_every_n_steps=2",
        "callbacks.divergence.d_wins_window=4",
        "callbacks.divergence.d_wins_loss_d_below=100",  # thresholds any run meets: the window logic decides
        "callbacks.divergence.d_wins_d_fake_below=1.0",
        output_dir=run,
    )
    with caplog.at_level(logging.ERROR):
        train(cfg)
    assert health_rows(run, "health/d_wins") == {1: 0.0, 3: 1.0}  # the window holds 2 checks of 2 iterations
    assert "the discriminator wins: over the last 4 iterations (to 4)" in caplog.text
    assert load_weights(run / "checkpoints" / "last.ckpt")["global_step"] == 4 * 2  # stopped, state saved
    assert syncs == ["tolist", "tolist"]  # one host read per check (iterations 2 and 4), none in between


def test_feature_diversity_is_zero_for_identical_images_and_positive_for_distinct():
    model = DCGAN(image_size=32, channels=3, ngf=8, ndf=8)
    same = torch.zeros(6, 3, 32, 32)
    distinct = torch.rand(6, 3, 32, 32) * 2 - 1
    assert feature_diversity(model.discriminator, same).item() == pytest.approx(0.0, abs=1e-6)
    assert feature_diversity(model.discriminator, distinct).item() > 0.01
    assert model.discriminator.training  # its mode is restored


@pytest.mark.parametrize("conditional", [False, True])
def test_mode_collapse_is_measured_and_warned_about(conditional, tiny_cfg, tmp_path, caplog):
    """Also for a conditional model, whose batches are (images, labels): the check measures the images."""
    run = tmp_path / "collapse"
    cfg = tiny_cfg(
        f"model.conditional={str(conditional).lower()}",
        "trainer.max_steps=6",
        "model.optimizer_g.lr=1e-12",  # G stays collapsed
        "callbacks.divergence.collapse_every_n_steps=2",
        "callbacks.divergence.collapse_patience=2",
        "+callbacks.collapse._target_=tests.helpers.callbacks.CollapseGenerator",
        output_dir=run,
    )
    with caplog.at_level(logging.WARNING):
        train(cfg)
    ratios = health_rows(run, "health/diversity_ratio")
    assert sorted(ratios) == [1, 3, 5] and all(r < 0.05 for r in ratios.values())
    assert all(v > 0 for v in health_rows(run, "health/diversity_real").values())
    assert caplog.text.count("mode collapse: at iteration 4") == 1  # after 2 low checks; warned once
    assert load_weights(run / "checkpoints" / "last.ckpt")["global_step"] == 6 * 2  # action=warn: ran on


def test_the_guard_state_survives_a_weights_only_checkpoint_round_trip(tmp_path):
    guard = DivergenceGuard(check_every_n_steps=10, d_wins_window=30, d_ahead_window=50)
    guard.window.extend([(0.01, 0.02, 0.9), (0.03, 0.04, 0.8)])
    guard.collapsed_checks = 1
    torch.save({"callbacks": {"DivergenceGuard": guard.state_dict()}}, tmp_path / "c.ckpt")
    restored = DivergenceGuard(check_every_n_steps=10, d_wins_window=30, d_ahead_window=50)
    restored.load_state_dict(
        torch.load(tmp_path / "c.ckpt", weights_only=True)["callbacks"]["DivergenceGuard"]
    )
    assert list(restored.window) == [(0.01, 0.02, 0.9), (0.03, 0.04, 0.8)] and restored.window.maxlen == 5
    assert restored.collapsed_checks == 1
    older = DivergenceGuard(check_every_n_steps=10)  # a checkpoint of before D(x) was kept: no gap assumed
    older.load_state_dict({"window": [[0.01, 0.02]], "collapsed_checks": 0})
    assert list(older.window) == [(0.01, 0.02, 0.02)]


def test_a_discriminator_that_stays_ahead_is_logged_and_named_with_the_small_data_recipe(
    tiny_cfg, tmp_path, caplog
):
    run = tmp_path / "ahead"
    cfg = tiny_cfg(
        "trainer.max_steps=8",
        "callbacks.divergence.check_every_n_steps=2",
        "callbacks.divergence.d_ahead_window=4",
        "callbacks.divergence.d_ahead_gap_above=-1",  # a threshold any run meets: the window logic decides
        output_dir=run,
    )
    with caplog.at_level(logging.WARNING):
        train(cfg)
    gaps = health_rows(run, "health/d_gap")
    assert sorted(gaps) == [1, 3, 5, 7] and all(-1 <= g <= 1 for g in gaps.values())
    warned = [r.getMessage() for r in caplog.records if "stays ahead" in r.getMessage()]
    assert len(warned) == 1  # once, when the window first fills (iteration 4); action=warn: it ran on
    assert "over the last 4 iterations (to 4)" in warned[0]
    assert "try recipe=small_ada (DiffAugment at an adaptive probability)" in warned[0]
    assert load_weights(run / "checkpoints" / "last.ckpt")["global_step"] == 8 * 2


class TwoRanks:
    """Rank 0's view of a 2-process strategy whose other rank hit a NaN at iteration 3 and votes ``other``."""

    other = True

    def reduce(self, tensor: torch.Tensor, reduce_op: str) -> torch.Tensor:
        assert reduce_op == "min"
        return torch.minimum(tensor, torch.tensor([3.0]))

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
        return (decision and self.other) if all else (decision or self.other)


def test_under_ddp_a_decision_of_any_rank_counts_for_all():
    """A rank that stopped alone would leave the others waiting forever in DDP's next all-reduce."""
    trainer = types.SimpleNamespace(
        world_size=2, strategy=TwoRanks(), callbacks=[], loggers=[], should_stop=False
    )
    model = DCGAN(image_size=32, channels=3, ngf=8, ndf=8)
    guard = DivergenceGuard(action="stop", check_every_n_steps=5, d_wins_window=5)
    # this rank: 5 finite iterations, D not winning
    guard._sums, guard._first_bad = torch.tensor([2.5, 2.5, 2.5]), torch.tensor(float("inf"))
    with pytest.raises(TrainingDiverged, match="non-finite loss at iteration 3"):
        guard.check(trainer, types.SimpleNamespace(iteration=5))

    trainer.strategy.reduce = lambda tensor, reduce_op: tensor  # no NaN anywhere; the other rank sees D win
    guard._sums, guard._since = torch.tensor([2.5, 2.5, 2.5]), 5
    guard.check(trainer, types.SimpleNamespace(iteration=10))
    assert trainer.should_stop

    trainer.callback_metrics = {"train/loss_d": torch.tensor(0.7)}
    trainer.strategy.other = False  # the other rank's state is not finite
    assert not state_is_finite(trainer, model)  # finite here, but not on every rank: nobody saves
    trainer.strategy.other = True
    assert state_is_finite(trainer, model)
