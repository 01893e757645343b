"""The FID callback: best.ckpt when FID improves, logged FID, start-up checks of its counts and objective."""

import logging

import pytest
import torch

from dcgan_lit.callbacks.fid import FIDCallback, build_fid_callback
from dcgan_lit.errors import UserError
from dcgan_lit.metrics import MetricSuite, TinyFeatureExtractor
from dcgan_lit.run.fit import train
from tests.helpers.metrics import fid_metrics


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"num_fake": 1}, "metrics.fid.num_fake=1 must be an integer >= 2"),
        ({"batch_size": 0}, "metrics.fid.batch_size=0 must be an integer >= 1"),
        ({"num_real": 1}, r"metrics.fid.num_real=1 must be an integer >= 2 \(or null, auto\)"),
        ({"every_n_epochs": -1}, "metrics.fid.every_n_epochs=-1 must be an integer >= 0"),
    ],
)
def test_fid_counts_are_checked_at_start_up(tmp_path, override, message):
    with pytest.raises(UserError, match=message):
        build_fid_callback(fid_metrics(tmp_path, feature_extractor="tiny", **override), None)


class ScriptedFID(FIDCallback):
    """Real callback machinery with FIDs from a script, to check when best.ckpt is written."""

    def __init__(self, suite, script, cache_dir):
        super().__init__(suite, cache_dir, num_fake=8, batch_size=8)
        self.script = list(script)

    def score(self, pl_module):
        super().score(pl_module)  # the real pipeline runs too
        return {"fid": self.script[pl_module.current_epoch]}


@pytest.mark.slow
def test_best_checkpoint_is_written_when_fid_improves_and_only_then(tiny_cfg, tmp_path, monkeypatch, caplog):
    import dcgan_lit.callbacks.fid as fid_module

    script = [5.0, 3.0, 4.0, 2.0, 6.0]
    best_epochs = []

    class Recorder(FIDCallback):  # reads best.ckpt at each epoch start (written at the previous epoch's end)
        def on_train_epoch_start(self, trainer, pl_module):
            best = tmp_path / "run" / "checkpoints" / "best.ckpt"
            best_epochs.append(torch.load(best, weights_only=False)["epoch"] if best.exists() else None)

    def build(metrics, cache_dir):
        callback = ScriptedFID(MetricSuite(TinyFeatureExtractor()), script, cache_dir)
        callback.__class__ = type("ScriptedRecorder", (ScriptedFID, Recorder), {})
        return callback

    monkeypatch.setattr(fid_module, "build_fid_callback", build)  # conf/callbacks/fid.yaml's _target_
    cfg = tiny_cfg("metrics=tiny", "trainer.max_epochs=5", "dataset.batch_size=16")
    with caplog.at_level(logging.INFO):
        metrics = train(cfg)
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=False)
    best_epochs.append(best["epoch"])
    assert best_epochs == [None, 0, 1, 1, 3, 3]
    assert metrics["val/fid"] == 6.0 and metrics["val/fid_best"] == 2.0
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()
    # generator.pt is the best-FID generator (epoch 3's), not the last one, and the log says which it is
    exported = torch.load(tmp_path / "run" / "generator.pt", weights_only=True)["state_dict"]
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(v, best["state_dict"][k]) for k, v in exported.items())
    assert not all(torch.equal(v, last[k]) for k, v in exported.items())
    iteration = best["global_step"] // 2
    assert f"generator.pt: the best-FID generator, of iteration {iteration} (val/fid 2.00)" in caplog.text


@pytest.mark.slow
def test_training_logs_fid_and_a_second_run_uses_the_cached_statistics(tiny_cfg, tmp_path, caplog):
    cache = tmp_path / "shared_cache"
    overrides = ("metrics=tiny", "trainer.max_epochs=2", "dataset.batch_size=16", f"paths.cache_dir={cache}")
    with caplog.at_level(logging.INFO):
        metrics = train(tiny_cfg(*overrides, output_dir=tmp_path / "first"))
    assert "using cached reference statistics" not in caplog.text
    assert 0 < metrics["val/fid"] < 1e4 and metrics["val/fid_best"] <= metrics["val/fid"]
    rows = (tmp_path / "first" / "csv" / "metrics.csv").read_text()
    assert "val/fid" in rows.splitlines()[0] and "val/fid_best" in rows.splitlines()[0]
    best = torch.load(tmp_path / "first" / "checkpoints" / "best.ckpt", weights_only=False)
    [fid_checkpoint] = [v for k, v in best["callbacks"].items() if "val/fid" in k]
    assert float(fid_checkpoint["best_model_score"]) == pytest.approx(metrics["val/fid_best"])
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = train(tiny_cfg(*overrides, output_dir=tmp_path / "second"))
    assert "FID: using cached reference statistics (fid-tiny-16d-seed0-32-" in caplog.text
    assert again["val/fid"] == pytest.approx(metrics["val/fid"], rel=1e-6)  # same seed, same pipeline


def test_an_fid_objective_without_fid_stops_at_start_up(tiny_cfg, tmp_path):
    with pytest.raises(UserError, match=r"optimized_metric=val/fid_best needs FID, which is off"):
        train(tiny_cfg("metrics=none", "optimized_metric=val/fid_best"))
    assert not list((tmp_path / "run").rglob("*.ckpt"))  # nothing was trained
    assert (
        train(tiny_cfg("metrics=tiny", "optimized_metric=val/fid_best", "trainer.max_steps=2"))[
            "val/fid_best"
        ]
        > 0
    )
