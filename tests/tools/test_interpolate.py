"""interpolate: rows of images between latent points."""

import pytest
import torch
from PIL import Image

from dcgan_lit.errors import UserError
from dcgan_lit.tools.latent import z_for_seeds
from tests.helpers.latent import TILE, g
from tests.helpers.runs import run_tool

pytestmark = pytest.mark.usefixtures("single_thread")


def test_interpolation_rows_start_and_end_at_g_of_the_points(tiny_run, tmp_path, generator):
    out = run_tool(
        "interpolate",
        tiny_run,
        tmp_path,
        "seeds=[4,5,6]",
        "steps=5",
        "mode=both",
        "gif=true",
        f"out={tmp_path / 'i.png'}",
    )
    images, points = out["images"], z_for_seeds(generator, [4, 5, 6])
    assert images.shape == (4, 5, 3, 32, 32)  # 2 pairs x (lerp, slerp), 5 steps each
    ends = g(generator, points)
    for row, (start, end) in enumerate([(0, 1), (0, 1), (1, 2), (1, 2)]):
        assert torch.allclose(images[row, 0], ends[start], atol=1e-5)
        assert torch.allclose(images[row, -1], ends[end], atol=1e-5)
    assert not torch.allclose(images[0, 2], images[1, 2])  # lerp and slerp differ in the middle
    assert Image.open(tmp_path / "i.png").size == (2 + 5 * TILE, 2 + 4 * TILE)
    gif = Image.open(tmp_path / "i.gif")
    assert gif.n_frames == 2 * (2 * 4 + 1) - 2  # 9 frames through the 3 points, then back without repeats


def test_interpolation_needs_two_points(tiny_run, tmp_path):
    with pytest.raises(UserError, match="at least 2"):
        run_tool("interpolate", tiny_run, tmp_path, "seeds=[1]")
