"""real_vs_fake: a real batch beside the untrained and the trained generator's samples."""

import numpy as np
import pytest
from PIL import Image

from tests.helpers.runs import run_tool

pytestmark = pytest.mark.usefixtures("single_thread")


def test_real_vs_fake_is_three_panels(tiny_run, tmp_path):
    out = run_tool("real_vs_fake", tiny_run, tmp_path, "num_images=9", f"out={tmp_path / 'rf.png'}")
    image = np.asarray(Image.open(out))
    panel = 2 + 3 * 34  # 3x3 grid of 32-pixel images
    assert image.shape == (16 + panel, 3 * panel + 2 * 8, 3)
    untrained, trained = (image[16:, x : x + panel] for x in (panel + 8, 2 * panel + 16))
    assert not np.array_equal(untrained, trained)
