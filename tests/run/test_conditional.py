"""train.py with model.conditional=true: classes from the data, one grid row per class, resumable, one-line errors."""

import pytest
import torch
from PIL import Image

from dcgan_lit.api import load_discriminator, load_generator
from dcgan_lit.checkpoint.io import load_weights
from dcgan_lit.errors import UserError
from dcgan_lit.run.fit import train


def test_a_conditional_run_trains_on_the_class_folders(tiny_conditional_run):
    checkpoint = load_weights(tiny_conditional_run / "checkpoints" / "last.ckpt")  # weights_only
    hparams = checkpoint["hyper_parameters"]
    assert hparams["conditional"] is True and hparams["class_names"] == ["horse", "bird"]
    assert type(hparams["class_names"]) is list
    generator = load_generator(tiny_conditional_run / "checkpoints" / "last.ckpt")
    assert generator.class_names == ["horse", "bird"]
    discriminator = load_discriminator(tiny_conditional_run / "checkpoints" / "last.ckpt")
    assert discriminator(torch.zeros(2, 3, 32, 32), torch.tensor([0, 1])).shape == (2,)
    # the fixed grid: one row per class (2 rows) of nrow=8 columns, 32-pixel images with 2-pixel padding
    assert Image.open(tiny_conditional_run / "samples" / "final.png").size == (8 * 34 + 2, 2 * 34 + 2)
    assert Image.open(tiny_conditional_run / "real_samples.png").size[0] > 32 * 4


def test_a_conditional_run_resumes_with_its_labels(tiny_cfg, tmp_path):
    run = tmp_path / "resumable"
    train(tiny_cfg("model.conditional=true", "trainer.max_steps=2", output_dir=run))
    resumed = tiny_cfg("model.conditional=true", "trainer.max_steps=5", "ckpt_path=last", output_dir=run)
    train(resumed)
    checkpoint = load_weights(run / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 10 and checkpoint["hyper_parameters"]["class_names"] == ["a", "b"]


def test_resuming_an_unconditional_checkpoint_as_conditional_is_refused(tiny_cfg, tmp_path):
    run = tmp_path / "plain"
    train(tiny_cfg("trainer.max_steps=1", output_dir=run))
    cfg = tiny_cfg("model.conditional=true", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", output_dir=run)
    with pytest.raises(UserError, match="model.conditional=False, but the config has model.conditional=True"):
        train(cfg)


def test_a_source_without_classes_is_one_line(tiny_cfg, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (32, 32)).save(flat / "one.png")
    with pytest.raises(UserError, match="has no subfolders, so it has no classes") as error:
        train(tiny_cfg("model.conditional=true", f"dataset.path={flat}"))
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="model.conditional=yes must be true or false"):
        train(tiny_cfg("model.conditional=yes"))


def test_fid_during_conditional_training_is_scored_against_the_whole_set(tiny_cfg, tmp_path, monkeypatch):
    from dcgan_lit.metrics import suite

    drawn = []
    generate_batches = suite.generate_batches

    def spy(generator, z, batch_size, **kwargs):
        drawn.append(kwargs.get("labels"))
        return generate_batches(generator, z, batch_size, **kwargs)

    monkeypatch.setattr(suite, "generate_batches", spy)
    metrics = train(
        tiny_cfg("model.conditional=true", "metrics=tiny", "metrics.fid.num_fake=6", "trainer.max_epochs=1")
    )
    assert metrics["val/fid"] >= 0
    assert drawn and drawn[-1].tolist() == [0, 1, 0, 1, 0, 1]  # the classes a and b in turn
