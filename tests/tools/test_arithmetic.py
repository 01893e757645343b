"""arithmetic: A - B + C of averaged concept latents."""

import pytest
import torch
from PIL import Image

from dcgan_lit.errors import UserError
from dcgan_lit.tools.latent import load_z, sample_z
from tests.helpers.runs import run_tool

pytestmark = pytest.mark.usefixtures("single_thread")


def test_arithmetic_is_a_minus_b_plus_c_of_concept_means(tiny_run, tmp_path, generator):
    picks = {"a": [0, 1, 2], "b": [3, 4, 5, 6], "c": [7, 8, 9]}
    overrides = [f"{k}=[{','.join(map(str, v))}]" for k, v in picks.items()]
    out = run_tool(
        "arithmetic",
        tiny_run,
        tmp_path,
        "sheet_size=16",
        "seed=3",
        "num_results=4",
        f"out_dir={tmp_path}",
        *overrides,
    )
    sheet = sample_z(generator, 16, 3)
    assert torch.equal(out["sheet"], sheet)
    for name, indices in picks.items():
        assert torch.allclose(out["means"][name], sheet[indices].mean(0))
    expected = sheet[picks["a"]].mean(0) - sheet[picks["b"]].mean(0) + sheet[picks["c"]].mean(0)
    assert torch.allclose(out["results"][0], expected)
    assert 0 < (out["results"][1:] - expected).norm(dim=1).max() < 0.25 * 100**0.5 * 2  # small noise
    assert torch.equal(load_z(tmp_path / "arithmetic.pt", 100), out["results"])
    rows = Image.open(tmp_path / "arithmetic.png").size[1]
    assert rows > 4 * 64  # 3 concept rows + 1 result row of 64-pixel tiles with captions
    assert Image.open(tmp_path / "sheet.png").size[0] >= 4 * 64


def test_arithmetic_needs_three_z_per_concept(tiny_run, tmp_path):
    with pytest.raises(UserError, match="at least 3"):
        run_tool("arithmetic", tiny_run, tmp_path, "a=[0,1]", "b=[2,3,4]", "c=[5,6,7]")
