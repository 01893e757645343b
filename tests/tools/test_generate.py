"""generate: files in a folder or a zip, resized, seeded, or one grid; run as a module in a subprocess."""

import os
import subprocess
import sys
import zipfile
from io import BytesIO

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lit.checkpoint.load import generator_from_checkpoint
from dcgan_lit.errors import UserError
from dcgan_lit.pixels import to_uint8
from dcgan_lit.tools import generate
from dcgan_lit.tools.latent import sample_z
from tests.helpers.config import ROOT, compose_tool

pytestmark = pytest.mark.usefixtures("single_thread")


def run_generate(tiny_run, tmp_path, *overrides):
    cfg = compose_tool("generate", [f"ckpt_path={tiny_run / 'checkpoints/last.ckpt'}", *overrides], tmp_path)
    return generate.run(cfg)


def test_folder_of_pngs_holds_exactly_g_of_the_seeded_z(tiny_run, tmp_path):
    out = run_generate(
        tiny_run, tmp_path, "num_images=10", "batch_size=4", "seed=7", f"out={tmp_path / 'imgs'}"
    )
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"{i:05d}.png" for i in range(10)]
    generator = generator_from_checkpoint(tiny_run / "checkpoints/last.ckpt")
    with torch.no_grad():
        expected = to_uint8(generator(sample_z(generator, 10, 7)))
    for index, path in enumerate(files):
        image = torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1)
        assert image.shape == (3, 32, 32)
        assert (image.int() - expected[index].int()).abs().max() <= 1  # lossless PNG of G(z)


def test_zip_of_resized_jpgs_is_a_valid_archive(tiny_run, tmp_path):
    out = run_generate(
        tiny_run,
        tmp_path,
        "num_images=7",
        "format=jpg",
        "image_size=64",
        "batch_size=3",
        f"out={tmp_path / 'x.zip'}",
    )
    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert names == [f"{i:05d}.jpg" for i in range(7)]
        for name in names:
            image = Image.open(BytesIO(archive.read(name)))
            assert image.format == "JPEG" and image.size == (64, 64)


def test_same_seed_same_images_other_seed_other_images(tiny_run, tmp_path):
    a = run_generate(tiny_run, tmp_path, "num_images=3", "seed=1", f"out={tmp_path / 'a'}")
    b = run_generate(tiny_run, tmp_path, "num_images=3", "seed=1", "batch_size=1", f"out={tmp_path / 'b'}")
    c = run_generate(tiny_run, tmp_path, "num_images=3", "seed=2", f"out={tmp_path / 'c'}")
    assert (a / "00000.png").read_bytes() == (b / "00000.png").read_bytes()
    assert (a / "00000.png").read_bytes() != (c / "00000.png").read_bytes()


def test_grid_is_one_png_of_rows_by_columns(tiny_run, tmp_path):
    out = run_generate(tiny_run, tmp_path, "grid=2x3", f"out={tmp_path / 'grid.png'}")
    assert Image.open(out).size == (2 + 3 * 34, 2 + 2 * 34)  # torchvision's 2-pixel padding


@pytest.mark.parametrize("override", ["format=gif", "grid=5by5", "num_images=0"])
def test_bad_options_are_one_line_errors(tiny_run, tmp_path, override):
    with pytest.raises(UserError):
        run_generate(tiny_run, tmp_path, override)


@pytest.mark.slow
def test_module_entry_point_writes_a_zip(tiny_run, tmp_path):
    ckpt = tiny_run / "checkpoints/last.ckpt"
    command = [sys.executable, "-m", "dcgan_lit.tools.generate", f"hydra.run.dir={tmp_path / 'run'}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's dcgan_lit, wherever pytest runs from
    ok = [*command, f"ckpt_path={ckpt}", "num_images=5", f"out={tmp_path / 'g.zip'}"]
    done = subprocess.run(ok, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "5 PNG images" in done.stderr and len(zipfile.ZipFile(tmp_path / "g.zip").namelist()) == 5


def test_a_bad_checkpoint_is_one_error_line_and_exit_1(tmp_path, monkeypatch, capsys):
    argv = ["generate", f"ckpt_path={tmp_path / 'absent.ckpt'}", f"hydra.run.dir={tmp_path / 'run'}"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as stopped:
        generate.main()
    assert stopped.value.code == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: checkpoint")
