"""MetricSuite and score_generator: cached reference statistics, FID/KID/IS/MiFID, DDP shares, EMA."""

import logging
import types

import pytest
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from dcgan_lit.callbacks.fid import sigterm_check
from dcgan_lit.metrics import MetricSuite, TinyFeatureExtractor, score_generator
from dcgan_lit.metrics import suite as suite_module
from dcgan_lit.model.sampling import sampling_generator
from tests.helpers.metrics import CountingExtractor


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
    # the key is the pixels: the same images under another dataset label (a re-copied folder, new file times)
    # reuse the statistics; other pixels, another count or another extractor are another key
    relabelled = MetricSuite(CountingExtractor())
    assert relabelled.prepare_reference(images.clone(), "dataset-a-copied", str(cache), num_real=100) is True
    assert relabelled.extractor.images_seen == 0 and relabelled.reference_key == first.reference_key
    third = MetricSuite(CountingExtractor())
    assert third.prepare_reference(real_images(seed=1), "dataset-a", str(cache), num_real=100) is False
    fourth = MetricSuite(CountingExtractor())
    fourth.prepare_reference(images, "dataset-a", str(cache), num_real=50)
    fifth = MetricSuite(TinyFeatureExtractor(num_features=8, seed=1))
    fifth.prepare_reference(images, "dataset-a", str(cache), num_real=100)
    assert len({first.reference_key, third.reference_key, fourth.reference_key, fifth.reference_key}) == 4
    assert third.extractor.images_seen == 100 and fourth.extractor.images_seen == 50


def test_one_changed_pixel_or_another_subset_is_another_reference(tmp_path):
    images = real_images()
    suite = MetricSuite(CountingExtractor())
    assert suite.reference_is_cached(images, str(tmp_path), num_real=None) is False
    suite.prepare_reference(images, "set", str(tmp_path))
    assert suite.reference_is_cached(images, str(tmp_path), num_real=None) is True
    edited = images.clone()
    edited[7, 1, 3, 3] ^= 1
    assert suite.reference_is_cached(edited, str(tmp_path), num_real=None) is False
    # a training subset (e.g. dataset.subset with another subset_seed) holds other pixels: not the full set's file
    assert suite.reference_is_cached(images[:60], str(tmp_path), num_real=None) is False
    assert suite.reference_is_cached(images[60:], str(tmp_path), num_real=None) is False


def test_the_images_are_hashed_once_for_both_questions_at_start_up(tmp_path, monkeypatch):
    images, hashed = real_images(), []
    monkeypatch.setattr(
        suite_module, "fingerprint_pixels", lambda pixels: hashed.append(pixels.shape) or "digest"
    )
    suite = MetricSuite(CountingExtractor())
    suite.reference_is_cached(images, str(tmp_path), num_real=100)
    suite.prepare_reference(images, "set", str(tmp_path), num_real=100)
    assert hashed == [(100, 3, 16, 16)]
    suite.reference_is_cached(images, str(tmp_path), num_real=50)  # another count: other pixels
    suite.reference_is_cached(images.clone(), str(tmp_path), num_real=50)  # another tensor: hashed again
    assert len(hashed) == 3


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


def test_a_conditional_generator_draws_its_classes_uniformly_or_one_class(monkeypatch):
    """Overall FID: image i of num_fake has class i mod K, across DDP ranks too; per class: all of one class."""

    def labelled(z, labels):  # "images" that are the labels they were drawn with
        return labels[:, None].float().expand(-1, 3)

    seen = []
    for rank in range(2):
        monkeypatch.setattr(suite_module, "world", lambda rank=rank: (rank, 2))
        recorder = LatentRecorder(TinyFeatureExtractor())
        recorder.seen = []
        score_generator(recorder, labelled, 4, 9, 2, "cpu", seed=0, num_classes=3)
        seen.append(torch.cat(recorder.seen)[:, 0])
    assert torch.cat(seen).tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2]  # rank 0: images 0-4, rank 1: 5-8
    recorder.seen = []
    score_generator(recorder, labelled, 4, 4, 3, "cpu", seed=0, num_classes=3, class_index=2)
    assert torch.cat(recorder.seen)[:, 0].tolist() == [2, 2]  # rank 1's share of 4


def test_a_sigterm_stops_the_fid_loops_between_two_batches_and_the_reference_resumes(tmp_path):
    """Lightning acts on SIGTERM between training batches; the FID loops ask between theirs (sigterm_check).
    A stopped reference computation keeps its running sums, and the same call resumes from them."""
    trainer = types.SimpleNamespace(received_sigterm=False)
    check, calls = sigterm_check(trainer), []

    def sigterm_after_three_batches() -> None:
        calls.append(len(calls))
        trainer.received_sigterm = len(calls) > 3
        check()

    suite, cache = MetricSuite(CountingExtractor()), tmp_path / "cache"
    with pytest.raises(SIGTERMException):
        suite.prepare_reference(real_images(), "d", str(cache), 100, 10, check=sigterm_after_three_batches)
    assert suite.extractor.images_seen == 30
    partial_only = [p.name.endswith(".partial.pt") for p in (cache / "fid_stats").iterdir()]
    assert partial_only == [True]  # running sums, no statistics
    resumed = MetricSuite(CountingExtractor())
    resumed.prepare_reference(real_images(), "d", str(cache), 100, 10)
    assert resumed.extractor.images_seen == 70  # only the images the stopped call had not seen
    assert [p.stem for p in (cache / "fid_stats").iterdir()] == [resumed.reference_key]  # partial sums gone
    whole = MetricSuite(CountingExtractor())
    whole.prepare_reference(real_images(), "d", None, 100, 10)
    assert torch.equal(resumed.reference.mean, whole.reference.mean)
    assert torch.equal(resumed.reference.cov, whole.reference.cov) and resumed.reference.num == 100
    calls.clear()
    with pytest.raises(SIGTERMException):
        score_generator(
            suite, lambda z: z.expand(-1, 3, 16, 16), 3, 50, 10, "cpu", check=sigterm_after_three_batches
        )
    assert suite.extractor.images_seen == 30 + 30  # 3 of the 5 batches of fakes


def test_a_long_reference_computation_saves_its_sums_as_it_goes(tmp_path, monkeypatch):
    """A process killed outright (no chance to save on the way out) resumes from the last periodic save."""
    saved = []
    monkeypatch.setattr(suite_module, "PARTIAL_EVERY_SECONDS", 0.0)
    real_save = suite_module.save_partial
    monkeypatch.setattr(
        suite_module,
        "save_partial",
        lambda cache, key, state: (
            saved.append(int(state["real_features_num_samples"])) or real_save(cache, key, state)
        ),
    )
    kept = {}
    monkeypatch.setattr(  # the partial file as it was before the finished computation removed it
        suite_module, "drop_partial", lambda cache, key: kept.update(key=key)
    )
    suite = MetricSuite(CountingExtractor())
    suite.prepare_reference(real_images(), "d", str(tmp_path), 100, 10)
    assert saved == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    # a partial holding every image (or none, or another key's) is not resumed: the work is recomputed whole
    (tmp_path / "fid_stats" / f"{kept['key']}.pt").unlink()
    again = MetricSuite(CountingExtractor())
    again.prepare_reference(real_images(), "d", str(tmp_path), 100, 10)
    assert again.extractor.images_seen == 100


def test_the_fakes_scored_once_give_their_fid_against_another_reference():
    """The quality benchmark's fid_subset: the same fakes against a subset's statistics, features computed once."""
    images, fake = real_images(), lambda z: z.expand(-1, 3, 16, 16)
    full, subset = MetricSuite(CountingExtractor()), MetricSuite(CountingExtractor())
    full.prepare_reference(images, "all", None)
    subset.prepare_reference(images[:40] // 4, "darker", None)  # another set: another FID
    score_generator(full, fake, 3, 50, 10, "cpu")
    seen = full.extractor.images_seen
    expected = score_generator(subset, fake, 3, 50, 10, "cpu")["fid"]
    assert full.fid_against(subset.reference) == pytest.approx(expected, rel=1e-9)
    assert full.fid_against(subset.reference) != pytest.approx(full.compute()["fid"], rel=1e-3)
    assert full.extractor.images_seen == seen  # no fake scored again
