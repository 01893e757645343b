"""walk: one latent dimension moved per row."""

import pytest
import torch
from PIL import Image

from dcgan_lit.errors import UserError
from dcgan_lit.tools.latent import z_for_seeds
from tests.helpers.latent import TILE, g
from tests.helpers.runs import run_tool

pytestmark = pytest.mark.usefixtures("single_thread")


def test_walk_changes_only_the_chosen_dimension(tiny_run, tmp_path, generator):
    out = run_tool(
        "walk",
        tiny_run,
        tmp_path,
        "dim=[7,42]",
        "seeds=[0,1]",
        "steps=5",
        "delta=3",
        "gif=true",
        f"out={tmp_path / 'w.png'}",
    )
    z = out["z"]
    assert z.shape == (4, 5, 100)  # 2 dimensions x 2 starts
    for row, dim in zip(z, [7, 7, 42, 42], strict=True):
        changed = (row != row[2]).any(0).nonzero().flatten().tolist()
        assert changed == [dim]
        assert torch.allclose(row[:, dim] - row[2, dim], torch.linspace(-3, 3, 5))
    assert torch.allclose(out["images"][0, 2], g(generator, z_for_seeds(generator, [0]))[0], atol=1e-5)
    assert not torch.allclose(out["images"][0, 0], out["images"][0, -1])
    assert Image.open(tmp_path / "w.png").size == (2 + 5 * TILE, 2 + 4 * TILE)
    assert Image.open(tmp_path / "w.gif").n_frames == 2 * 5 - 2


def test_walk_all_dimensions_is_one_row_each(tiny_run, tmp_path):
    out = run_tool("walk", tiny_run, tmp_path, "dim=all", "steps=2", f"out={tmp_path / 'w.png'}")
    assert out["z"].shape == (100, 2, 100) and out["dims"] == list(range(100))


@pytest.mark.parametrize("dim", ["100", "[-1]", "x"])
def test_walk_rejects_dimensions_outside_z(tiny_run, tmp_path, dim):
    with pytest.raises(UserError, match="dim="):
        run_tool("walk", tiny_run, tmp_path, f"dim={dim}")
