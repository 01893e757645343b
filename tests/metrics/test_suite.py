"""FID in use: cached reference statistics, the optional metrics, DDP shards, best.ckpt, the evaluator."""

import logging

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from dcgan_lit.callbacks.fid import FIDCallback
from dcgan_lit.errors import UserError
from dcgan_lit.metrics import MetricSuite, TinyFeatureExtractor, score_generator
from dcgan_lit.metrics import suite as suite_module
from dcgan_lit.model.sampling import sampling_generator
from dcgan_lit.run.fit import train
from dcgan_lit.tools.evaluate import evaluate

from .conftest import CONF_DIR, write_images


class CountingExtractor(TinyFeatureExtractor):
    """The tiny extractor, counting the images it has seen."""

    def __init__(self) -> None:
        super().__init__(num_features=8)
        self.images_seen = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.images_seen += images.size(0)
        return super().forward(images)


def real_images(count: int = 120, seed: int = 0) -> torch.Tensor:
    return torch.randint(
        0, 256, (count, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


def test_second_evaluation_uses_cached_reference_statistics(tmp_path, caplog):
    images, cache = real_images(), tmp_path / "cache"
    first = MetricSuite(CountingExtractor())
    with caplog.at_level(logging.INFO):
        assert first.prepare_reference(images, "dataset-a", str(cache), num_real=100, batch_size=32) is False
    assert first.extractor.images_seen == 100 and first.reference.num == 100
    [stats_file] = (cache / "fid_stats").glob("*.pt")
    assert stats_file.stem == first.reference_key and not list((cache / "fid_stats").glob("*.tmp*"))

    second = MetricSuite(CountingExtractor())
    with caplog.at_level(logging.INFO):
        assert second.prepare_reference(images, "dataset-a", str(cache), num_real=100, batch_size=32) is True
    assert second.extractor.images_seen == 0  # no real features recomputed
    assert f"using cached reference statistics ({first.reference_key})" in caplog.text
    assert torch.equal(second.reference.cov, first.reference.cov)
    # a different dataset, count or extractor is another key
    third = MetricSuite(CountingExtractor())
    third.prepare_reference(images, "dataset-b", str(cache), num_real=100)
    fourth = MetricSuite(CountingExtractor())
    fourth.prepare_reference(images, "dataset-a", str(cache), num_real=50)
    fifth = MetricSuite(TinyFeatureExtractor(num_features=8, seed=1))
    fifth.prepare_reference(images, "dataset-a", str(cache), num_real=100)
    assert len({first.reference_key, third.reference_key, fourth.reference_key, fifth.reference_key}) == 4
    assert third.extractor.images_seen == 100 and fourth.extractor.images_seen == 50


def test_fid_is_near_zero_for_the_same_images_and_grows_with_a_shift(tmp_path):
    images = real_images(400)
    suite = MetricSuite(TinyFeatureExtractor(num_features=8))
    suite.prepare_reference(images, "same", None)
    suite.update(images)
    same = suite.compute()["fid"]
    suite.reset()
    suite.update((images // 2).to(torch.uint8))  # darker: a different distribution
    darker = suite.compute()["fid"]
    assert abs(same) < 1e-6 and darker > 1.0


def test_kid_inception_score_and_mifid_on_a_tiny_extractor(tmp_path):
    options = {
        "kid": {"enabled": True, "subsets": 5, "subset_size": 20},
        "inception_score": {"enabled": True, "splits": 2},
        "mifid": {"enabled": True},
    }
    images = real_images(100)
    suite = MetricSuite(TinyFeatureExtractor(num_features=8), options)
    suite.prepare_reference(images, "kid", str(tmp_path))
    suite.update(images)
    torch.manual_seed(0)  # KID draws random subsets
    same = suite.compute()
    assert set(same) == {"fid", "kid_mean", "kid_std", "is_mean", "is_std", "mifid"}
    suite.reset()
    suite.update((images // 3).to(torch.uint8))
    darker = suite.compute()
    assert darker["kid_mean"] > 10 * abs(same["kid_mean"])  # unbiased: about 0 for the same images
    assert darker["mifid"] > darker["fid"] * 0.99 and same["is_mean"] >= 1.0
    # with the reference cached, KID and MiFID still see the real features (they need them, not just stats)
    cached = MetricSuite(TinyFeatureExtractor(num_features=8), options)
    assert cached.prepare_reference(images, "kid", str(tmp_path)) is True
    cached.update(images)
    torch.manual_seed(0)
    assert cached.compute()["kid_mean"] == pytest.approx(same["kid_mean"], abs=1e-6)


class LatentRecorder(MetricSuite):
    """Keeps what it is given instead of scoring it."""

    def update(self, fake_images):
        self.seen.append(fake_images)

    def compute(self):
        return {"fid": 0.0}


def test_each_ddp_rank_scores_its_own_share_of_different_fakes(monkeypatch):
    seen = {}
    for rank in range(3):
        monkeypatch.setattr(suite_module, "world", lambda rank=rank: (rank, 3))
        assert suite_module.shard(10)[1] == (4, 3, 3)[rank]
        recorder = LatentRecorder(TinyFeatureExtractor())
        recorder.seen = []
        score_generator(recorder, lambda z: z, 4, 10, 2, "cpu", seed=0)
        seen[rank] = torch.cat(recorder.seen)
    assert [len(z) for z in seen.values()] == [4, 3, 3]  # 10 fakes in all
    assert not torch.equal(seen[0][:3], seen[1]) and not torch.equal(seen[1], seen[2])


def test_the_ema_generator_is_scored_when_the_module_has_one():
    module = torch.nn.Module()
    module.generator = torch.nn.Linear(1, 1)
    assert sampling_generator(module) is module.generator
    module.generator_ema = torch.nn.Linear(1, 1)
    assert sampling_generator(module) is module.generator_ema


class ScriptedFID(FIDCallback):
    """Real callback machinery with FIDs from a script, to check when best.ckpt is written."""

    def __init__(self, suite, script, cache_dir):
        super().__init__(suite, cache_dir, num_fake=8, batch_size=8)
        self.script = list(script)

    def score(self, pl_module):
        super().score(pl_module)  # the real pipeline runs too
        return {"fid": self.script[pl_module.current_epoch]}


def test_best_checkpoint_is_written_when_fid_improves_and_only_then(tiny_cfg, tmp_path, monkeypatch):
    import dcgan_lit.run.fit as train_module

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

    monkeypatch.setattr(train_module, "build_fid_callback", build)
    cfg = tiny_cfg("metrics=tiny", "trainer.max_epochs=5", "dataset.batch_size=16")
    metrics = train(cfg)
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=False)
    best_epochs.append(best["epoch"])
    assert best_epochs == [None, 0, 1, 1, 3, 3]
    assert metrics["val/fid"] == 6.0 and metrics["val/fid_best"] == 2.0
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


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


@pytest.fixture
def evaluate_cfg(image_folder, tmp_path):
    def make(*overrides):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                config_name="tools/evaluate",
                overrides=[
                    "dataset=imagefolder",
                    f"dataset.path={image_folder}",
                    "metrics=tiny",
                    "device=cpu",
                    f"paths.cache_dir={tmp_path / 'cache'}",
                    *overrides,
                ],
            )
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "eval")
        return cfg

    yield make
    GlobalHydra.instance().clear()


def test_evaluator_prints_a_fid_row_for_a_checkpoint_and_for_a_folder(
    tiny_cfg, evaluate_cfg, tmp_path, capsys
):
    train(tiny_cfg("trainer.max_steps=2"))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    capsys.readouterr()
    row = evaluate(
        evaluate_cfg(
            f"ckpt_path={ckpt}",
            "metrics.fid.num_fake=64",
            "metrics.kid.enabled=true",
            "metrics.kid.subset_size=16",
        )
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("| source | dataset | real | fake | features | fid |") and str(ckpt) in out[2]
    assert row["real"] == 32 and row["fake"] == 64 and row["fid"] > 0 and "kid_mean" in row
    assert row["reference"].startswith("computed") and row["real_seconds"] >= 0 and row["fake_seconds"] > 0
    again = evaluate(evaluate_cfg(f"ckpt_path={ckpt}", "metrics.fid.num_fake=64"))
    assert again["reference"].startswith("cached") and again["fid"] == pytest.approx(row["fid"], rel=1e-9)

    fakes = tmp_path / "fakes"
    write_images(fakes, 10, size=(32, 32), seed=5)
    folder_row = evaluate(evaluate_cfg(f"fake_dir={fakes}", "model=dcgan32"))
    assert folder_row["fake"] == 10 and folder_row["reference"].startswith("cached") and folder_row["fid"] > 0


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
