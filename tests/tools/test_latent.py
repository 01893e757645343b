"""interpolate, walk, arithmetic and search on the session's tiny checkpoint, and the latent helpers."""

import pytest
import torch
from PIL import Image
from torch import nn

from dcgan_lit.checkpoint.load import generator_from_checkpoint, submodule_state
from dcgan_lit.errors import UserError
from dcgan_lit.tools.latent import lerp, load_z, sample_z, slerp, z_for_seeds

from .conftest import run_tool

pytestmark = pytest.mark.usefixtures("single_thread")
TILE = 34  # a 32-pixel image plus torchvision's 2-pixel grid padding


@pytest.fixture(scope="module")
def generator(tiny_run):
    return generator_from_checkpoint(tiny_run / "checkpoints/last.ckpt")


def g(generator, z):
    with torch.no_grad():
        return generator(z)


def test_slerp_and_lerp_end_at_their_inputs_and_slerp_keeps_the_norm():
    z0, z1 = torch.zeros(100), torch.zeros(100)
    z0[0], z1[1] = 10.0, 10.0  # orthogonal, equal norms
    t = torch.linspace(0, 1, 5)
    for path in (slerp(z0, z1, t), lerp(z0, z1, t)):
        assert torch.allclose(path[0], z0, atol=1e-5) and torch.allclose(path[-1], z1, atol=1e-5)
    assert torch.allclose(slerp(z0, z1, t).norm(dim=1), torch.full((5,), 10.0), atol=1e-4)
    assert lerp(z0, z1, t)[2].norm() == pytest.approx(10 / 2**0.5, rel=1e-5)  # the chord dips inwards


def test_seeds_name_the_same_z_everywhere(generator):
    assert torch.equal(z_for_seeds(generator, [3, 5])[1], sample_z(generator, 1, 5)[0])
    assert torch.equal(
        sample_z(generator, 4, 7), generator.sample_latent(4, seed=7)
    )  # the Python API's stream


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


def test_search_keeps_the_top_k_by_d_realism(tiny_run, tmp_path, generator):
    out = run_tool(
        "search", tiny_run, tmp_path, "num_samples=40", "top_k=5", "batch_size=16", f"out_dir={tmp_path}"
    )
    all_scores = out["all_scores"]
    assert out["scores"].tolist() == sorted(all_scores.tolist(), reverse=True)[:5]
    assert torch.equal(out["z"], sample_z(generator, 40, 0)[out["indices"]])
    saved = torch.load(tmp_path / "top_k.pt", weights_only=True)
    assert torch.equal(saved["z"], out["z"]) and torch.equal(saved["scores"], out["scores"])
    # top_k.pt feeds interpolate: its first two rows are the end points.
    inter = run_tool(
        "interpolate", tiny_run, tmp_path, f"z_path={tmp_path / 'top_k.pt'}", "indices=[0,1]", "steps=3"
    )
    assert torch.allclose(inter["images"][0, -1], g(generator, out["z"][1:2])[0], atol=1e-5)


class Brightness(nn.Module):
    """A two-class 'classifier': class 1's logit grows with the image's mean brightness."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, images):
        mean = images.mean((1, 2, 3))
        return torch.stack([-mean, mean], 1) * self.scale


def test_search_by_a_user_classifier_keeps_the_most_probable(tiny_run, tmp_path):
    torch.save(Brightness().state_dict(), tmp_path / "clf.pt")
    out = run_tool(
        "search",
        tiny_run,
        tmp_path,
        "num_samples=30",
        "top_k=4",
        "criterion=classifier",
        f"classifier.target={__name__}.Brightness",
        f"classifier.weights={tmp_path / 'clf.pt'}",
        "classifier.classes=[1]",
        f"out_dir={tmp_path}",
    )
    generator = generator_from_checkpoint(tiny_run / "checkpoints/last.ckpt")
    brightness = g(generator, sample_z(generator, 30, 0)).mean((1, 2, 3))
    assert set(out["indices"].tolist()) == set(brightness.topk(4).indices.tolist())


class Exploit:
    """A pickle that, if ever unpickled, runs a shell command creating ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("tool", ["generate", "walk", "search", "neighbors", "probe"])
def test_a_checkpoint_with_a_malicious_pickle_is_refused(tmp_path, tool, tiny_run):
    marker, evil = tmp_path / "pwned", tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": Exploit(marker)}, evil)
    with pytest.raises(UserError, match="refused"):
        run_tool(tool, tiny_run, tmp_path, f"ckpt_path={evil}")
    assert not marker.exists()  # never unpickled


def test_tools_use_the_ema_generator_when_the_checkpoint_has_one(tiny_run, tmp_path, generator):
    checkpoint = torch.load(tiny_run / "checkpoints/last.ckpt", weights_only=True)
    weights = submodule_state(checkpoint["state_dict"], "generator")
    for name, value in weights.items():  # EMA weights: G's, moved a little
        noise = 0.05 * torch.randn_like(value) if value.is_floating_point() else 0
        checkpoint["state_dict"][f"generator_ema.{name}"] = value + noise
    torch.save(checkpoint, tmp_path / "ema.ckpt")
    ema_generator = generator_from_checkpoint(tmp_path / "ema.ckpt")
    out = run_tool("walk", tiny_run, tmp_path, f"ckpt_path={tmp_path / 'ema.ckpt'}", "dim=3", "steps=3")
    z = z_for_seeds(generator, [0])
    assert torch.allclose(out["images"][0, 1], g(ema_generator, z)[0], atol=1e-5)
    assert not torch.allclose(out["images"][0, 1], g(generator, z)[0], atol=1e-3)


def test_search_says_when_the_classifier_cannot_be_built(tiny_run, tmp_path):
    torch.save(Brightness().state_dict(), tmp_path / "clf.pt")
    common = ["criterion=classifier", f"classifier.weights={tmp_path / 'clf.pt'}", "classifier.classes=[1]"]
    with pytest.raises(UserError, match="could not be built"):
        run_tool("search", tiny_run, tmp_path, "classifier.target=no_such_pkg.Net", *common)
    with pytest.raises(UserError, match="not a torch nn.Module"):
        run_tool("search", tiny_run, tmp_path, "classifier.target=builtins.dict", *common)
