"""neighbors, real_vs_fake, probe and evolution: the tools that read training data or a run folder."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from dcgan_lit.checkpoint.load import discriminator_from_checkpoint, generator_from_checkpoint
from dcgan_lit.errors import UserError
from dcgan_lit.pixels import to_uint8
from dcgan_lit.tools.evolution import read_metrics
from dcgan_lit.tools.latent import sample_z
from dcgan_lit.tools.probe import discriminator_features, probe_once

from .conftest import compose_tool, run_tool, write_images
from .wandb_records import finished_run_files

pytestmark = pytest.mark.usefixtures("single_thread")


def test_neighbors_finds_a_planted_copy_of_a_sample_first(tiny_run, tmp_path):
    folder = tmp_path / "train"
    write_images(folder, 9, size=(32, 32), seed=5)
    with torch.no_grad():
        generator = generator_from_checkpoint(tiny_run / "checkpoints/last.ckpt")
        sample = generator(sample_z(generator, 2, 11))[1]
    Image.fromarray(to_uint8(sample).permute(1, 2, 0).numpy()).save(folder / "zz_planted.png")  # index 9
    report = run_tool(
        "neighbors",
        tiny_run,
        tmp_path,
        f"data={folder}",
        "num_samples=2",
        "seed=11",
        "k=3",
        f"out_dir={tmp_path}",
    )
    for name in ("pixel", "feature"):
        assert report[name]["indices"][1][0] == 9
        assert report[name]["distances"][1][0] == pytest.approx(0, abs=1e-4)
        assert report[name]["distances"][1][1] > 1e-3
        assert report[name]["distances"][0] == sorted(report[name]["distances"][0])
        assert Image.open(tmp_path / f"neighbors_{name}.png").size[0] > 4 * 64  # sample + 3 neighbours
    assert json.loads((tmp_path / "neighbors.json").read_text())["num_train"] == 10


def test_neighbors_reads_the_training_set_from_the_run_config(tiny_run, tmp_path):
    report = run_tool("neighbors", tiny_run, tmp_path, "num_samples=1", "k=16", f"out_dir={tmp_path}")
    assert sorted(report["pixel"]["indices"][0]) == list(range(16))  # all 16 training images, ranked
    with pytest.raises(UserError, match="k=17"):
        run_tool("neighbors", tiny_run, tmp_path, "k=17")


def test_real_vs_fake_is_three_panels(tiny_run, tmp_path):
    out = run_tool("real_vs_fake", tiny_run, tmp_path, "num_images=9", f"out={tmp_path / 'rf.png'}")
    image = np.asarray(Image.open(out))
    panel = 2 + 3 * 34  # 3x3 grid of 32-pixel images
    assert image.shape == (16 + panel, 3 * panel + 2 * 8, 3)
    untrained, trained = (image[16:, x : x + panel] for x in (panel + 8, 2 * panel + 16))
    assert not np.array_equal(untrained, trained)


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
    assert len(report["random"]["accuracies"]) == 2 and 0 <= report["random"]["mean"] <= 1
    assert json.loads((tmp_path / "probe.json").read_text())["random"] == report["random"]


def write_cifar10(root, monkeypatch, per_batch=12, seed=0):
    """A CIFAR-10 folder in torchvision's format (python pickles): three colour classes, 5 + 1 batches."""
    import pickle

    import torchvision.datasets.cifar

    rng, folder = np.random.default_rng(seed), root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = [i % 3 for i in range(per_batch)]
        pixels = rng.integers(0, 120, (per_batch, 3, 32, 32), dtype=np.uint8)
        for image, label in zip(pixels, labels, strict=True):
            image[label] += 120
        with open(folder / name, "wb") as handle:
            pickle.dump({"data": pixels.reshape(per_batch, -1), "labels": labels}, handle)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": ["red", "green", "blue"]}, handle)
    # torchvision checks the real files' md5 sums
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)


def test_probe_reads_cifar10(tiny_run, tmp_path, monkeypatch):
    write_cifar10(tmp_path / "data", monkeypatch)
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


def test_evolution_writes_a_gif_of_the_sample_grids_and_the_loss_curves(tiny_run, tmp_path):
    cfg = compose_tool(
        "evolution", [f"run_dir={tiny_run}", f"out_dir={tmp_path}", "last_frame_ms=900"], tmp_path
    )
    from dcgan_lit.tools.evolution import run

    written = run(cfg)
    steps = len(list((tiny_run / "samples").glob("step_*.png")))
    assert steps == 4
    gif = Image.open(written["gif"])
    assert gif.n_frames == steps + 1  # every step grid, then the final grid
    gif.seek(steps)
    assert gif.info["duration"] == 900
    assert gif.size == (2 + 8 * 34, 16 + 2 + 2 * 34)  # a captioned grid of 16 images, 8 per row
    assert Image.open(written["curves"]).size == (1000, 360)  # loss and D-output panels, no FID
    cfg.gif_colors = 8
    small = Image.open(run(cfg)["gif"])
    for frame in range(small.n_frames):
        small.seek(frame)
        assert len(small.convert("RGB").getcolors(maxcolors=4096)) <= 8
    series = read_metrics(tiny_run)
    assert [step for step, _ in series["train/loss_d"]] == [0, 1, 2, 3]  # CSV "step": the iteration


def test_evolution_reads_tensorboard_logs_and_says_when_there_is_none(tmp_path):
    with SummaryWriter(tmp_path / "tensorboard" / "version_0") as writer:
        for step in range(3):
            writer.add_scalar("train/loss_g", 1.0 + step, step)
    series = read_metrics(tmp_path)
    assert [value for _, value in series["train/loss_g"]] == [1.0, 2.0, 3.0]
    with pytest.raises(UserError, match="no csv/metrics.csv, tensorboard/ or wandb/"):
        read_metrics(tmp_path / "tensorboard")


def test_evolution_plots_the_curves_of_a_default_w_and_b_run(tiny_cfg, tmp_path, monkeypatch):
    for variable in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_ARTIFACT_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    import wandb

    from dcgan_lit.run.fit import train

    wandb.finish()  # a run left open elsewhere would swallow this one
    run = tmp_path / "run"
    train(tiny_cfg("logger=wandb", "logger.wandb.log_model=false", "trainer.max_steps=3", output_dir=run))
    wandb.finish()
    finished_run_files(run)  # W&B's service may still be writing the history
    assert not (run / "csv").exists() and not (run / "tensorboard").exists()
    series = read_metrics(run)
    assert [step for step, _ in series["train/loss_d"]] == [0, 1, 2]  # trainer/global_step: the iteration
    assert all(0 <= value <= 1 for _, value in series["train/d_real"])
    cfg = compose_tool("evolution", [f"run_dir={run}", f"out_dir={tmp_path / 'evo'}"], tmp_path)
    from dcgan_lit.tools.evolution import run as evolution

    written = evolution(cfg)
    assert Image.open(written["curves"]).size == (1000, 360)  # loss and D-output panels
    assert Image.open(written["gif"]).n_frames == 2  # step 2's grid (every_n_steps=2) and the final one


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
