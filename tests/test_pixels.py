"""dcgan_lit.pixels: one rounding rule from [-1, 1] floats to uint8, for tensors, PIL images and PNG files."""

import numpy as np
import torch
from PIL import Image

import dcgan_lit
from dcgan_lit.pixels import from_uint8, to_rgb, to_uint8


def every_rounding_case() -> torch.Tensor:
    """(1, 3, 16, 16) floats: every uint8's exact value, values half-way between two, and out-of-range ones."""
    exact = torch.arange(256, dtype=torch.float32) / 127.5 - 1
    halfway = (torch.arange(255, dtype=torch.float32) + 0.5) / 127.5 - 1
    outside = torch.tensor([-1.5, -1.0001, 1.0001, 2.0])
    noise = torch.rand(768 - 256 - 255 - 4, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return torch.cat([exact, halfway, outside, noise]).view(1, 3, 16, 16)


def test_the_png_of_save_grid_and_to_pil_hold_exactly_to_uint8s_pixels(tmp_path):
    images = every_rounding_case()
    expected = to_uint8(images)[0].permute(1, 2, 0).numpy()
    two = torch.cat([images, -images])  # (a single image would be written without the grid's padding)
    grid = np.asarray(Image.open(dcgan_lit.save_grid(two, tmp_path / "grid.png", nrow=1)))
    assert grid.shape == (2 + 2 * 18, 2 + 18, 3)
    np.testing.assert_array_equal(grid[2:18, 2:18], expected)  # 2 pixels of padding around each image
    np.testing.assert_array_equal(grid[20:36, 2:18], to_uint8(-images)[0].permute(1, 2, 0).numpy())
    np.testing.assert_array_equal(np.asarray(dcgan_lit.to_pil(images)[0]), expected)
    dcgan_lit.to_pil(images)[0].save(tmp_path / "one.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "one.png")), expected)


def test_to_uint8_rounds_half_up_and_clamps():
    values = torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0, 0.5 / 127.5 - 1, 0.49 / 127.5 - 1])
    assert to_uint8(values).tolist() == [0, 0, 128, 255, 255, 1, 0]
    already = torch.tensor([7], dtype=torch.uint8)
    assert to_uint8(already) is already


def test_uint8_round_trips_exactly_through_from_uint8():
    pixels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    floats = from_uint8(pixels)
    assert floats.dtype == torch.float32 and floats.min() == -1 and floats.max() == 1
    assert torch.equal(to_uint8(floats), pixels)


def test_to_rgb_replicates_gray_as_a_view_and_keeps_rgb():
    gray = torch.rand(2, 1, 4, 4)
    rgb = to_rgb(gray)
    assert rgb.shape == (2, 3, 4, 4) and all(torch.equal(rgb[:, c], gray[:, 0]) for c in range(3))
    assert rgb.data_ptr() == gray.data_ptr()  # no copy
    colour = torch.rand(2, 3, 4, 4)
    assert to_rgb(colour) is colour
