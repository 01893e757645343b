"""neighbors: nearest training images of samples, by pixels and by D's features."""

import json

import pytest
import torch
from PIL import Image

from dcgan_lit.checkpoint.load import generator_from_checkpoint
from dcgan_lit.errors import UserError
from dcgan_lit.pixels import to_uint8
from dcgan_lit.tools.latent import sample_z
from tests.helpers.images import write_images
from tests.helpers.runs import run_tool

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
