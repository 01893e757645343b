"""The Python API: load_generator / load_discriminator, seeded sampling and truncation, to_pil, save_grid."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lit import load_discriminator, load_generator, save_grid, to_pil
from dcgan_lit.callbacks import samples
from dcgan_lit.errors import UserError
from dcgan_lit.model.module import DCGAN
from tests.helpers.config import ROOT


def save_like_lightning(model: DCGAN, path, extra_state: dict | None = None) -> None:
    state = {**model.state_dict(), **(extra_state or {})}
    torch.save({"state_dict": state, "hyper_parameters": dict(model.hparams)}, path)


@pytest.fixture
def model() -> DCGAN:
    torch.manual_seed(0)
    return DCGAN(image_size=32, channels=3, latent_dim=16, ngf=8, ndf=8)


def test_load_generator_is_eval_mode_with_readable_shape_and_prefers_ema(model, tmp_path):
    ema = {f"generator_ema.{k}": v + 0.01 for k, v in model.generator.state_dict().items()}
    save_like_lightning(model, tmp_path / "plain.ckpt")
    save_like_lightning(model, tmp_path / "ema.ckpt", ema)

    generator = load_generator(tmp_path / "plain.ckpt")
    assert not generator.training
    assert (generator.latent_dim, generator.image_size, generator.channels) == (16, 32, 3)
    model.generator.eval()
    z = torch.randn(3, 16)
    assert torch.equal(generator(z), model.generator(z))

    with_ema = load_generator(tmp_path / "ema.ckpt")
    weight = with_ema.main[0].weight
    assert torch.equal(weight, model.generator.main[0].weight + 0.01)
    assert torch.equal(
        load_generator(tmp_path / "ema.ckpt", ema=False).main[0].weight, model.generator.main[0].weight
    )


def test_sample_is_seeded_in_range_and_shaped(model):
    generator = model.generator.eval()
    images = generator.sample(5, seed=3)
    assert images.shape == (5, 3, 32, 32)
    assert images.min() >= -1 and images.max() <= 1
    assert not images.requires_grad
    assert torch.equal(images, generator.sample(5, seed=3))
    assert not torch.equal(images, generator.sample(5, seed=4))
    # the seeded stream is torch.randn(n, latent_dim) of a fresh generator: the same z in every tool
    z = torch.randn(5, 16, generator=torch.Generator().manual_seed(3))
    assert torch.equal(generator.sample_latent(5, seed=3), z)
    # no seed: torch's global generator, so torch.manual_seed makes it reproducible
    torch.manual_seed(11)
    first = generator.sample(2)
    torch.manual_seed(11)
    assert torch.equal(first, generator.sample(2))


def test_truncation_resamples_entries_outside_the_bound(model):
    generator = model.generator
    full = generator.sample_latent(200, seed=5)
    truncated = generator.sample_latent(200, seed=5, truncation=0.5)
    assert truncated.abs().max() <= 0.5
    inside = full.abs() <= 0.5
    assert torch.equal(truncated[inside], full[inside])  # entries already inside are kept
    outside_values = truncated[~inside]
    assert (
        outside_values.abs() < 0.5
    ).all() and outside_values.unique().numel() > 100  # redrawn, not clamped
    assert torch.equal(
        generator.sample(4, seed=5, truncation=0.5), generator.sample(4, seed=5, truncation=0.5)
    )
    with pytest.raises(ValueError, match="truncation"):
        generator.sample(1, seed=0, truncation=0.0)


def test_to_pil_maps_the_range_to_bytes_for_rgb_and_gray():
    images = torch.zeros(2, 3, 4, 5)
    images[0, :, 0, 0] = -1.0
    images[0, :, 0, 1] = 1.0
    pil = to_pil(images)
    assert len(pil) == 2 and pil[0].mode == "RGB" and pil[0].size == (5, 4)
    pixels = np.asarray(pil[0])
    assert pixels[0, 0].tolist() == [0, 0, 0] and pixels[0, 1].tolist() == [255, 255, 255]
    assert pixels[1, 1].tolist() == [128, 128, 128]
    gray = to_pil(torch.full((1, 6, 6), 1.0))
    assert len(gray) == 1 and gray[0].mode == "L" and np.asarray(gray[0]).max() == 255
    with pytest.raises(ValueError, match="to_pil"):
        to_pil(torch.zeros(2, 2, 4, 4))


def test_save_grid_writes_a_png_grid_read_back(tmp_path):
    images = torch.full((6, 3, 8, 8), -1.0)
    images[4] = 1.0  # the fifth tile, second row, second column with nrow=3
    path = save_grid(images, tmp_path / "nested" / "grid.png", nrow=3)
    grid = np.asarray(Image.open(path))
    assert grid.shape == (2 + 2 * (8 + 2), 2 + 3 * (8 + 2), 3)
    assert grid[12 + 4, 12 + 4].tolist() == [255, 255, 255]
    assert grid[2 + 4, 2 + 4].tolist() == [0, 0, 0]
    assert samples.save_grid is save_grid  # one implementation, shared by the sample-grid callback


def test_load_discriminator_gives_features_and_logits(model, tmp_path):
    save_like_lightning(model, tmp_path / "m.ckpt")
    discriminator = load_discriminator(tmp_path / "m.ckpt")
    assert not discriminator.training and discriminator.image_size == 32
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    features = discriminator.features(images)
    assert features.shape == (4, 8 * 4, 4, 4)
    model.discriminator.eval()
    assert torch.equal(discriminator.head(features).flatten(), model.discriminator(images))


class WritesMarker:
    """Unpickling this object opens (creates) the marker file: what a malicious checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_checkpoint_is_refused_and_its_payload_never_runs(model, tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    payload = {
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "x": WritesMarker(marker),
    }
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f)
    with pytest.raises(UserError, match="refused"):
        load_generator(path)
    with pytest.raises(UserError, match="refused"):
        load_discriminator(path)
    assert not marker.exists()
    with open(path, "rb") as f:  # the payload is real: unsafe loading would run it
        torch.load(f, weights_only=False) if writer == "torch.save" else pickle.load(f)
    assert marker.exists()


def test_wrong_files_are_one_clear_line(model, tmp_path):
    save_like_lightning(model, tmp_path / "m.ckpt")
    checkpoint = torch.load(tmp_path / "m.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["ngf"] = 16
    torch.save(checkpoint, tmp_path / "mismatch.ckpt")
    with pytest.raises(UserError, match="don't fit.*size mismatch"):
        load_generator(tmp_path / "mismatch.ckpt")
    torch.save({"state_dict": {"other.weight": torch.zeros(1)}}, tmp_path / "empty.ckpt")
    with pytest.raises(UserError, match="holds no generator weights"):
        load_generator(tmp_path / "empty.ckpt")
    (tmp_path / "g.onnx").write_bytes(b"\x08\x07")
    with pytest.raises(UserError, match="onnxruntime"):
        load_generator(tmp_path / "g.onnx")


@pytest.mark.slow
def test_import_dcgan_lit_does_not_import_lightning():
    code = "import sys, dcgan_lit; assert dcgan_lit.load_generator; print(sorted({m.split('.')[0] for m in sys.modules}))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        "'torch'" in result.stdout and "lightning" not in result.stdout and "torchvision" not in result.stdout
    )


def test_pick_device_names_auto_and_devices(monkeypatch):
    from dcgan_lit.api import pick_device

    assert pick_device("cpu") == torch.device("cpu")
    for cuda, expected in ((True, "cuda"), (False, "cpu")):  # auto: CUDA when there is one
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        assert pick_device("auto") == torch.device(expected)
    monkeypatch.undo()
    device = torch.device("cpu")
    assert pick_device(device) is device
    with pytest.raises(UserError) as error:
        pick_device("gpu0")
    assert str(error.value) == "device='gpu0' is not a torch device; use auto, cpu, cuda or cuda:N"
