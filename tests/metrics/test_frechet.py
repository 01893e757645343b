"""The Fréchet distance (closed forms, scipy reference), feature statistics, extractors and their weights."""

import argparse
import logging
import subprocess
import sys

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from scipy import linalg

from dcgan_lit.callbacks.fid import build_fid_callback
from dcgan_lit.errors import UserError
from dcgan_lit.metrics import FeatureStats, TinyFeatureExtractor, build_feature_extractor, frechet_distance
from dcgan_lit.metrics.features import INCEPTION_FILE
from dcgan_lit.pixels import to_rgb, to_uint8

from .conftest import CONF_DIR, ROOT, write_images

FIDELITY_NAME = "inception-v3-tf-2015-12-05-torch-fidelity"  # torch-fidelity's .pth: the name in cache keys


def random_spd(d: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def test_frechet_distance_of_commuting_gaussians_matches_the_closed_form():
    mean1, mean2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, -1.0, 2.5])
    var1, var2 = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([9.0, 1.0, 1.0])
    expected = (mean1 - mean2).square().sum() + (var1 + var2 - 2 * (var1 * var2).sqrt()).sum()
    distance = frechet_distance(mean1, torch.diag(var1), mean2, torch.diag(var2))
    assert distance == pytest.approx(float(expected), rel=1e-12)  # 1.25 + 4 + 1 + 0.25 + 4 + 1.25 - 2 * ...


def test_frechet_distance_of_scaled_covariances_matches_the_closed_form():
    # S2 = c S1  =>  Tr(S1 + S2 - 2 sqrt(S1 S2)) = (1 - sqrt(c))^2 Tr(S1); a full, non-diagonal covariance
    cov = random_spd(32, seed=1)
    mean1 = torch.randn(32, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    mean2 = mean1 + 0.5
    distance = frechet_distance(mean1, cov, mean2, 4.0 * cov)
    assert distance == pytest.approx(32 * 0.25 + (1 - 2.0) ** 2 * float(cov.trace()), rel=1e-10)
    assert frechet_distance(mean1, cov, mean1, cov) == pytest.approx(0.0, abs=1e-9)


def scipy_fid(mean1, cov1, mean2, cov2) -> float:
    """The pytorch-fid formula in float64 with scipy's sqrtm."""
    covmean = linalg.sqrtm(cov1 @ cov2)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float(((mean1 - mean2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("dim", [16, 256])
def test_frechet_distance_matches_scipy_sqrtm_within_1e_6(dim):
    rng = np.random.default_rng(dim)
    real = rng.normal(size=(2 * dim + 50, dim))
    fake = 0.8 * rng.normal(size=(2 * dim + 50, dim)) @ rng.normal(size=(dim, dim)) / dim**0.5 + 0.3
    r, f = (
        FeatureStats.from_features(torch.from_numpy(real)),
        FeatureStats.from_features(torch.from_numpy(fake)),
    )
    ours = frechet_distance(r.mean, r.cov, f.mean, f.cov)
    reference = scipy_fid(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))
    assert abs(ours - reference) / reference < 1e-6


def test_feature_stats_from_sums_equal_numpy_mean_and_covariance():
    features = torch.randn(300, 12, generator=torch.Generator().manual_seed(0)) * 3 + 5
    stats = FeatureStats.from_features(features)
    assert stats.mean.dtype == torch.float64 and stats.num == 300
    np.testing.assert_allclose(stats.mean.numpy(), features.double().mean(0).numpy(), rtol=1e-12)
    np.testing.assert_allclose(stats.cov.numpy(), np.cov(features.double().numpy(), rowvar=False), rtol=1e-9)
    back = FeatureStats.from_dict(stats.to_dict())
    assert torch.equal(back.cov, stats.cov)
    with pytest.raises(ValueError, match="at least 2"):
        FeatureStats.from_features(features[:1])


def test_generator_output_becomes_uint8_rgb_as_a_saved_png_would():
    images = torch.tensor([-1.0, -0.5, 0.0, 0.999, 1.0]).view(1, 1, 1, 5)
    out = to_rgb(to_uint8(images))
    assert out.dtype == torch.uint8 and out.shape == (1, 3, 1, 5)
    assert out[0, 0, 0].tolist() == [0, 64, 128, 255, 255] and torch.equal(out[0, 0], out[0, 2])


def test_tiny_extractor_is_deterministic_and_named():
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    a, b = TinyFeatureExtractor(num_features=8, seed=3), TinyFeatureExtractor(num_features=8, seed=3)
    assert a(images).shape == (5, 8) and torch.equal(a(images), b(images))
    assert not torch.equal(a(images), TinyFeatureExtractor(num_features=8, seed=4)(images))
    assert a.name == "tiny-8d-seed3"


def test_extractors_come_from_the_registry_or_a_target(caplog):
    assert build_feature_extractor("tiny").name == "tiny-16d-seed0"
    with caplog.at_level(logging.WARNING):
        build_feature_extractor("tiny", weights_path="/some/inception.pth")
    assert (
        "weights_path=/some/inception.pth is not used: feature extractor tiny loads no weights" in caplog.text
    )
    custom = build_feature_extractor(
        OmegaConf.create({"_target_": "torch.nn.Flatten", "start_dim": 1}), weights_path="/ignored"
    )
    assert (
        isinstance(custom, torch.nn.Flatten)
        and custom.name == "torch.nn.modules.flatten.Flatten{'start_dim': 1}"
    )
    with pytest.raises(UserError, match="unknown; use one of"):
        build_feature_extractor("resnet")


def fid_metrics(tmp_path, **fid) -> OmegaConf:
    cfg = OmegaConf.load(CONF_DIR / "metrics" / "default.yaml")
    # an unreachable "standard download" (no network is ever touched in tests)
    cfg.fid.weights_url = (tmp_path / "nowhere" / INCEPTION_FILE).as_uri()
    cfg.fid.update(fid)
    return cfg


def test_missing_weights_warn_in_one_line_and_fid_is_off(tmp_path, empty_torch_hub, caplog):
    with caplog.at_level(logging.WARNING):
        assert build_fid_callback(fid_metrics(tmp_path), str(tmp_path)) is None
    [record] = [r for r in caplog.records if "Inception weights" in r.getMessage()]
    message = record.getMessage()
    assert "\n" not in message and str(empty_torch_hub) in message  # where to put them
    assert "metrics.fid.weights_path=" in message and "Training continues without FID" in message


def test_missing_weights_are_fatal_when_required(tmp_path, empty_torch_hub):
    with pytest.raises(UserError, match=r"not in .*weights-inception.*required=true") as error:
        build_fid_callback(fid_metrics(tmp_path, required=True), str(tmp_path))
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match=r"weights_path=.*missing.pth is not a file"):
        build_fid_callback(
            fid_metrics(tmp_path, required=True, weights_path=str(tmp_path / "missing.pth")), None
        )


def test_weights_holding_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"conv.weight": torch.zeros(1), "extra": argparse.Namespace(evil=True)}, path)
    with pytest.raises(UserError, match="was refused"):
        build_feature_extractor("inception", weights_path=str(path))


@pytest.fixture(scope="module")
def stand_in_inception_weights(tmp_path_factory):
    """A weights file of the FID Inception's exact shape, randomly initialised: the loading path, offline."""
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    with pytest.MonkeyPatch.context() as patch:  # build the architecture once without any weights to read
        patch.setattr(fidelity, "load_state_dict_from_url", lambda *args, **kwargs: {})
        patch.setattr(fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        network = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    weights = tmp_path_factory.mktemp("inception") / INCEPTION_FILE
    torch.save(network.state_dict(), weights)
    return weights


@pytest.mark.slow
def test_training_fid_loads_the_inception_from_weights_path(stand_in_inception_weights, tmp_path):
    metrics = fid_metrics(tmp_path, weights_path=str(stand_in_inception_weights))
    extractor = build_fid_callback(metrics, None).suite.extractor  # what the training run scores with
    assert extractor.name == FIDELITY_NAME and extractor.resize == "tf1-bilinear-299-noantialias"
    assert extractor.network.use_antialias is False
    images = torch.randint(
        0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    features = extractor(images)
    assert features.shape == (2, 2048) and torch.isfinite(features).all()
    assert extractor.logits(images).shape == (2, 1008)


@pytest.mark.slow
def test_evaluator_runs_the_inception_given_by_weights_path(
    stand_in_inception_weights, image_folder, tmp_path
):
    fakes = tmp_path / "fakes"
    write_images(fakes, 2, size=(32, 32), seed=1)
    result = run_evaluate(
        fakes,
        image_folder,
        tmp_path,
        "metrics=default",
        f"metrics.fid.weights_path={stand_in_inception_weights}",
        "metrics.fid.num_real=2",
        "metrics.fid.batch_size=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    header, _, row = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    cells = dict(zip(header.strip("| ").split(" | "), row.strip("| ").split(" | "), strict=True))
    assert cells["features"] == f"{FIDELITY_NAME} (tf1-bilinear-299-noantialias)"
    assert (cells["real"], cells["fake"], cells["reference"]) == ("2", "2", "computed")
    assert float(cells["fid"]) >= 0
    [stats] = (tmp_path / "cache" / "fid_stats").glob("*.pt")
    assert stats.name.startswith(f"fid-{FIDELITY_NAME}-2-")


def test_wrongly_formatted_weights_files_are_one_line(tmp_path, caplog):
    text = tmp_path / "weights.txt"
    text.write_text("not a tensor file")
    wrong_keys = tmp_path / "other_network.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, wrong_keys)
    for path, reason in ((text, "corrupt or not a PyTorch file"), (wrong_keys, "is not the FID Inception's")):
        with pytest.raises(UserError, match=reason) as error:
            build_fid_callback(fid_metrics(tmp_path, required=True, weights_path=str(path)), None)
        assert "\n" not in str(error.value) and "required=true" in str(error.value)
        assert "metrics.fid.weights_path" in str(error.value)  # the fix
        caplog.clear()
        with caplog.at_level(logging.WARNING):  # not required: one warning, and no FID
            assert build_fid_callback(fid_metrics(tmp_path, weights_path=str(path)), None) is None
        [record] = [r for r in caplog.records if reason in r.getMessage()]
        assert "\n" not in record.getMessage() and "Training continues without FID" in record.getMessage()


@pytest.mark.slow
def test_evaluator_reports_a_bad_weights_file_in_one_line(image_folder, tmp_path):
    bad = tmp_path / "weights.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, bad)
    result = run_evaluate(
        image_folder, image_folder, tmp_path, "metrics=default", f"metrics.fid.weights_path={bad}"
    )
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: FID: {bad} is not the FID Inception's state_dict (")


def run_evaluate(fake_dir, image_folder, tmp_path, *overrides: str) -> subprocess.CompletedProcess:
    """``python -m dcgan_lit.tools.evaluate`` scoring the images in ``fake_dir`` against ``image_folder``."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "dcgan_lit.tools.evaluate",
            f"fake_dir={fake_dir}",
            "dataset=imagefolder",
            f"dataset.path={image_folder}",
            "device=cpu",
            f"paths.cache_dir={tmp_path / 'cache'}",
            f"hydra.run.dir={tmp_path / 'eval'}",
            f"metrics.fid.weights_url={(tmp_path / 'nowhere' / INCEPTION_FILE).as_uri()}",
            *overrides,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


class MeanColour(torch.nn.Module):
    """A custom feature extractor with no name of its own: the mean of each colour channel."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.float().mean(dim=(2, 3))


def test_a_custom_feature_extractor_is_named_in_logs_and_cache_keys(tmp_path, caplog):
    metrics = fid_metrics(tmp_path, num_fake=8)
    metrics.fid.feature_extractor = {"_target_": "tests.test_metrics.MeanColour"}
    with caplog.at_level(logging.INFO):
        callback = build_fid_callback(metrics, str(tmp_path / "cache"))
    assert "features tests.test_metrics.MeanColour (own)" in caplog.text
    images = torch.randint(
        0, 256, (20, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    with caplog.at_level(logging.INFO):
        callback.suite.prepare_reference(images, "some-dataset", str(tmp_path / "cache"))
    [stats] = (tmp_path / "cache" / "fid_stats").glob("*.pt")
    assert stats.stem == callback.suite.reference_key and stats.name.startswith("fid-MeanColour-20-")
    assert "with tests.test_metrics.MeanColour (own)" in caplog.text
    assert torch.load(stats, weights_only=True)["mean"].shape == (3,)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"num_fake": 1}, "metrics.fid.num_fake=1 must be an integer >= 2"),
        ({"batch_size": 0}, "metrics.fid.batch_size=0 must be an integer >= 1"),
        ({"num_real": 1}, "metrics.fid.num_real=1 must be an integer >= 2, or null"),
        ({"every_n_epochs": -1}, "metrics.fid.every_n_epochs=-1 must be an integer >= 0"),
    ],
)
def test_fid_counts_are_checked_at_start_up(tmp_path, override, message):
    with pytest.raises(UserError, match=message):
        build_fid_callback(fid_metrics(tmp_path, feature_extractor="tiny", **override), None)
