"""Networks rebuilt from checkpoints: round trips, refused pickles, corrupt and missing files."""

import os
import pickle

import pytest
import torch

from dcgan_lit.checkpoint.io import load_weights
from dcgan_lit.checkpoint.load import discriminator_from_checkpoint, generator_from_checkpoint
from dcgan_lit.errors import UserError
from dcgan_lit.model.module import DCGAN


def save_like_lightning(model: DCGAN, path):
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)


def test_generator_and_discriminator_round_trip(tmp_path):
    model = DCGAN(image_size=32, channels=1, ngf=8, ndf=8, g_activation="leaky_relu")
    save_like_lightning(model, tmp_path / "m.ckpt")
    generator = generator_from_checkpoint(tmp_path / "m.ckpt")
    assert not generator.training
    z = torch.randn(2, 100, 1, 1)
    model.generator.eval()
    assert torch.equal(generator(z), model.generator(z))
    discriminator = discriminator_from_checkpoint(tmp_path / "m.ckpt")
    images = torch.rand(2, 1, 32, 32)
    model.discriminator.eval()
    assert torch.equal(discriminator(images), model.discriminator(images))


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": Exploit()}, path)
    with pytest.raises(UserError, match="refused"):
        load_weights(path)


def test_corrupt_and_missing_files_are_clear_errors(tmp_path):
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="corrupt"):
        load_weights(tmp_path / "bad.ckpt")
    with pytest.raises(UserError, match="no such file"):
        load_weights(tmp_path / "absent.ckpt")
    with open(tmp_path / "plain.pkl", "wb") as f:
        pickle.dump([1, 2], f)
    with pytest.raises(UserError):
        load_weights(tmp_path / "plain.pkl")


def test_a_conditional_checkpoint_and_generator_file_keep_the_classes(tmp_path):
    from dcgan_lit.api import load_generator
    from dcgan_lit.checkpoint.load import save_generator

    torch.manual_seed(0)
    model = DCGAN(image_size=32, channels=3, ngf=8, ndf=8, conditional=True, class_names=["horse", "bird"])
    model.generator.class_embedding.weight.data.add_(1.0)  # not the init: the loaded weights must be these
    save_like_lightning(model, tmp_path / "m.ckpt")
    assert load_weights(tmp_path / "m.ckpt")["hyper_parameters"]["class_names"] == ["horse", "bird"]
    generator = generator_from_checkpoint(tmp_path / "m.ckpt")
    assert generator.class_names == ["horse", "bird"] and generator.num_classes == 2
    z, labels = torch.randn(4, 100), torch.tensor([0, 1, 1, 0])
    model.generator.eval()
    with torch.no_grad():
        expected = model.generator(z, labels)
        torch.testing.assert_close(generator(z, labels), expected, rtol=0, atol=0)
    discriminator = discriminator_from_checkpoint(tmp_path / "m.ckpt")
    images = torch.rand(4, 3, 32, 32)
    model.discriminator.eval()
    with torch.no_grad():
        assert torch.equal(discriminator(images, labels), model.discriminator(images, labels))
    exported = save_generator(generator, tmp_path / "g.pt")
    reloaded = load_generator(exported)
    assert load_weights(exported)["hyper_parameters"]["class_names"] == ["horse", "bird"]
    assert reloaded.class_names == ["horse", "bird"] and reloaded.class_index("bird") == 1
    with torch.no_grad():
        assert torch.equal(reloaded(z, labels), expected)


def test_an_unconditional_generator_file_has_no_class_entries(tmp_path):
    from dcgan_lit.checkpoint.load import generator_hyperparameters

    model = DCGAN(image_size=32, channels=3, ngf=8, ndf=8)
    assert set(generator_hyperparameters(model.generator)) == {
        "latent_dim",
        "image_size",
        "channels",
        "ngf",
        "g_activation",
    }


def test_a_generator_file_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """A crash while ``generator.pt`` is rewritten (a full disk) leaves the previous file whole and no partial one."""
    import dcgan_lit.checkpoint.io as io
    from dcgan_lit.checkpoint.load import save_generator
    from dcgan_lit.model.networks import Generator

    path = tmp_path / "generator.pt"
    first = Generator(image_size=32, ngf=8)
    save_generator(first, path)
    save = io.torch.save

    def full_disk(obj, f, *args, **kwargs):
        save(obj, f, *args, **kwargs)  # written, then the write fails before the rename
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io.torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_generator(Generator(image_size=32, ngf=8), path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["generator.pt"]  # no temporary file left behind
    loaded = generator_from_checkpoint(path)
    assert all(
        torch.equal(a, b)
        for a, b in zip(loaded.state_dict().values(), first.state_dict().values(), strict=True)
    )
