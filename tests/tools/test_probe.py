"""probe: a linear classifier on D's features, trained D vs random D, on folders, CIFAR-10 and MNIST."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lit.checkpoint.load import discriminator_from_checkpoint
from dcgan_lit.errors import UserError
from dcgan_lit.tools.probe import discriminator_features, probe_once
from tests.helpers.fake_data import write_cifar10
from tests.helpers.runs import run_tool

pytestmark = pytest.mark.usefixtures("single_thread")


def separable_classes(root, per_class=24):
    """Three colour classes (mostly red, green or blue noise): linearly separable in any sensible features."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(["red", "green", "blue"]):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 120, (32, 32, 3), dtype=np.uint8)
            pixels[..., label] += 120
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def test_probe_beats_chance_and_reports_the_random_d_baseline(tiny_run, tmp_path):
    separable_classes(tmp_path / "labelled")
    report = run_tool(
        "probe",
        tiny_run,
        tmp_path,
        "labelled=imagefolder",
        f"path={tmp_path / 'labelled'}",
        "labels_per_class=8",
        "val_per_class=4",
        "resamples=2",
        "C=[0.01,1.0]",
        "test_fraction=0.25",
        f"out={tmp_path / 'probe.json'}",
    )
    assert report["classes"] == 3 and report["test_images"] == 18
    assert report["feature_dim"] == (8 + 16 + 32) * 16  # every D block max-pooled to 4x4
    assert report["trained"]["mean"] > 0.8  # chance is 1/3
    random = report["random"]["accuracies"]
    assert len(random) == 2 and report["random"]["mean"] == pytest.approx(sum(random) / 2)
    assert all(accuracy * 18 == pytest.approx(round(accuracy * 18)) for accuracy in random)  # of 18 images
    assert json.loads((tmp_path / "probe.json").read_text())["random"] == report["random"]


def test_probe_reads_cifar10(tiny_run, tmp_path, monkeypatch):
    write_cifar10(
        tmp_path / "data", monkeypatch, per_batch=12, label_names=["red", "green", "blue"], colours=True
    )
    report = run_tool(
        "probe",
        tiny_run,
        tmp_path,
        "labelled=cifar10",
        f"root={tmp_path / 'data'}",
        "labels_per_class=8",
        "val_per_class=4",
        "resamples=2",
        "C=[0.1]",
        f"out={tmp_path / 'probe.json'}",
    )
    assert report["labelled"] == "cifar10" and report["classes"] == 3 and report["test_images"] == 12
    assert report["trained"]["mean"] > 0.8 and len(report["trained"]["accuracies"]) == 2


def test_probe_features_and_linear_classifiers_on_known_inputs(tiny_run):
    discriminator = discriminator_from_checkpoint(tiny_run / "checkpoints/last.ckpt")
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    features = discriminator_features(discriminator, images, batch_size=2)
    assert features.shape == (5, 896)
    assert torch.allclose(features, discriminator_features(discriminator, images, batch_size=5), atol=1e-5)
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 20, generator=generator) * 3
    labels = torch.arange(4).repeat_interleave(30)
    points = centres[labels] + torch.randn(120, 20, generator=generator) * 0.3
    split = [(points[i::3], labels[i::3]) for i in range(3)]
    for kind in ("svm", "logistic"):
        accuracy, chosen = probe_once(*split, classes=4, grid=[0.1, 1.0], kind=kind)
        assert accuracy == 1.0 and chosen in (0.1, 1.0)


def test_probe_rejects_unknown_datasets_and_missing_mnist(tiny_run, tmp_path):
    with pytest.raises(UserError, match="not supported"):
        run_tool("probe", tiny_run, tmp_path, "labelled=svhn")
    with pytest.raises(UserError, match="not found"):
        run_tool("probe", tiny_run, tmp_path, "labelled=mnist", f"root={tmp_path}")


@pytest.mark.data
def test_probe_on_real_mnist_digits(tiny_run, tmp_path, data_dir):
    report = run_tool(
        "probe",
        tiny_run,
        tmp_path,
        f"root={data_dir}",
        "labels_per_class=10",
        "val_per_class=5",
        "resamples=1",
        "max_test=300",
        "C=[0.1]",
        f"out={tmp_path / 'probe.json'}",
    )
    assert report["classes"] == 10 and report["test_images"] == 300
    assert report["trained"]["mean"] > 0.3 and report["random"]["mean"] > 0.3  # chance is 0.1
