"""The tools on a class-conditional generator: a class by name or index, class interpolation at fixed z, walks
within a class, exports that take the class, and one line for a class an unconditional G cannot take."""

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lit.checkpoint.load import generator_from_checkpoint
from dcgan_lit.errors import UserError
from dcgan_lit.pixels import to_uint8
from dcgan_lit.tools.export import export
from dcgan_lit.tools.latent import sample_z, save_z, z_for_seeds
from tests.helpers.runs import run_isolated, run_tool

pytestmark = pytest.mark.usefixtures("single_thread")

HORSE, BIRD = 0, 1  # the tiny conditional run's dataset.classes=[horse,bird]


@pytest.fixture(scope="module")
def conditional_generator(tiny_conditional_run):
    return generator_from_checkpoint(tiny_conditional_run / "checkpoints/last.ckpt")


def g(generator, z, labels):
    with torch.no_grad():
        return generator(z, labels)


@pytest.mark.parametrize("value", ["horse", "0"])
def test_generate_draws_the_named_or_numbered_class(
    tiny_conditional_run, conditional_generator, tmp_path, value
):
    run_tool(
        "generate", tiny_conditional_run, tmp_path, f"class={value}", "num_images=3", f"out={tmp_path / 'x'}"
    )
    z = sample_z(conditional_generator, 3, seed=0)
    expected = to_uint8(g(conditional_generator, z, torch.full((3,), HORSE)))
    written = [np.asarray(Image.open(tmp_path / "x" / f"{i:05d}.png")) for i in range(3)]
    assert torch.equal(torch.from_numpy(np.stack(written)).permute(0, 3, 1, 2), expected)
    birds = to_uint8(g(conditional_generator, z, torch.full((3,), BIRD)))
    assert not torch.equal(birds, expected)


def test_without_a_class_the_classes_take_turns(tiny_conditional_run, conditional_generator, tmp_path):
    run_tool("generate", tiny_conditional_run, tmp_path, "grid=2x2", f"out={tmp_path / 'g.png'}")
    z = sample_z(conditional_generator, 4, seed=0)
    expected = g(conditional_generator, z, torch.tensor([HORSE, BIRD, HORSE, BIRD]))
    grid = np.array(Image.open(tmp_path / "g.png"))
    tile = grid[2 + 34 : 2 + 34 + 32, 2 : 2 + 32]  # row 1, column 0: image 2, a horse
    assert torch.equal(torch.from_numpy(tile).permute(2, 0, 1), to_uint8(expected[2]))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("zebra", "class='zebra' is not one of this generator's classes: horse, bird"),
        ("7", r"class=7 is out of range; this generator's classes are 0-1: \['horse', 'bird'\]"),
    ],
)
def test_an_unknown_class_is_one_line(tiny_conditional_run, tmp_path, value, message):
    with pytest.raises(UserError, match=message):
        run_tool("generate", tiny_conditional_run, tmp_path, f"class={value}", "num_images=1")


def test_an_unconditional_generator_refuses_a_class(tiny_run, tmp_path):
    with pytest.raises(UserError, match="class=horse: this generator is unconditional"):
        run_tool("generate", tiny_run, tmp_path, "class=horse", "num_images=1")


def test_interpolate_goes_from_horse_to_bird_at_fixed_z(
    tiny_conditional_run, conditional_generator, tmp_path
):
    out = run_tool(
        "interpolate",
        tiny_conditional_run,
        tmp_path,
        "classes=[horse,bird]",
        "seeds=[3,4]",
        "steps=5",
        "gif=true",
        f"out={tmp_path / 'pegasus.png'}",
    )
    images = out["images"]
    assert images.shape == (2, 5, 3, 32, 32)  # one row per fixed z, horse to bird
    z = z_for_seeds(conditional_generator, [3, 4])
    torch.testing.assert_close(images[:, 0], g(conditional_generator, z, torch.tensor([HORSE, HORSE])))
    torch.testing.assert_close(images[:, -1], g(conditional_generator, z, torch.tensor([BIRD, BIRD])))
    halfway = g(conditional_generator, z, torch.tensor([[0.5, 0.5], [0.5, 0.5]]))
    torch.testing.assert_close(images[:, 2], halfway)
    assert Image.open(tmp_path / "pegasus.png").size == (2 + 5 * 34, 2 + 2 * 34)
    assert Image.open(tmp_path / "pegasus.gif").n_frames == 2 * 5 - 2


def test_a_latent_interpolation_keeps_its_class(tiny_conditional_run, conditional_generator, tmp_path):
    out = run_tool(
        "interpolate", tiny_conditional_run, tmp_path, "seeds=[3,4]", "steps=3", "class=bird", "mode=lerp"
    )
    ends = g(conditional_generator, z_for_seeds(conditional_generator, [3, 4]), torch.tensor([BIRD, BIRD]))
    torch.testing.assert_close(out["images"][0, 0], ends[0])
    torch.testing.assert_close(out["images"][0, -1], ends[1])


def test_walk_stays_within_the_class(tiny_conditional_run, conditional_generator, tmp_path):
    out = run_tool("walk", tiny_conditional_run, tmp_path, "class=bird", "dim=[5]", "seeds=[1,2]", "steps=3")
    rows = out["z"]
    assert out["images"].shape == (2, 3, 3, 32, 32)
    for row in range(2):
        expected = g(conditional_generator, rows[row], torch.full((3,), BIRD))
        torch.testing.assert_close(out["images"][row], expected)


def test_a_search_file_keeps_each_z_s_class_for_interpolate_and_walk(
    tiny_conditional_run, conditional_generator, tmp_path
):
    """search (classes in turn) records the class it scored each z with; the tools that start from the file
    draw every point in that class, unless class= says otherwise."""
    found = run_tool(
        "search", tiny_conditional_run, tmp_path, "num_samples=6", "top_k=6", f"out_dir={tmp_path}"
    )
    saved = torch.load(tmp_path / "top_k.pt", weights_only=True)
    classes = found["indices"] % 2  # sample i was scored as class i mod 2
    assert torch.equal(saved["labels"], classes) and classes.tolist().count(0) == 3
    indices = [int(classes.argmax()), int(classes.argmin()), 0]  # a bird, a horse, the best
    z_file = f"z_path={tmp_path / 'top_k.pt'}"
    inter = run_tool(
        "interpolate", tiny_conditional_run, tmp_path, z_file, f"indices={indices}", "steps=3", "mode=lerp"
    )
    starts = indices[:2]  # each pair is drawn in its start point's class
    ends = g(conditional_generator, saved["z"][starts], classes[starts])
    torch.testing.assert_close(inter["images"][0, 0], ends[0])
    torch.testing.assert_close(inter["images"][1, 0], ends[1])
    walk = run_tool(
        "walk", tiny_conditional_run, tmp_path, z_file, f"indices={indices[:2]}", "dim=[5]", "steps=3"
    )
    for row, index in enumerate(indices[:2]):
        expected = g(conditional_generator, walk["z"][row], classes[index].repeat(3))
        torch.testing.assert_close(walk["images"][row], expected)
    forced = run_tool(
        "walk", tiny_conditional_run, tmp_path, z_file, "indices=[1,2]", "dim=[5]", "class=bird"
    )
    torch.testing.assert_close(
        forced["images"][0, 0], g(conditional_generator, forced["z"][0, :1], torch.tensor([BIRD]))[0]
    )


def test_a_z_file_recording_classes_the_generator_lacks_is_one_line_unless_class_is_given(
    tiny_conditional_run, conditional_generator, tmp_path
):
    z_file = save_z(
        tmp_path / "other.pt", z_for_seeds(conditional_generator, [0, 1]), labels=torch.tensor([0, 5])
    )
    with pytest.raises(
        UserError, match="records classes up to 5, but this generator has 2; .* or pass class="
    ):
        run_tool("walk", tiny_conditional_run, tmp_path, f"z_path={z_file}", "dim=[5]", "steps=3")
    forced = run_tool("walk", tiny_conditional_run, tmp_path, f"z_path={z_file}", "dim=[5]", "class=bird")
    torch.testing.assert_close(
        forced["images"][1, 0], g(conditional_generator, forced["z"][1, :1], torch.tensor([BIRD]))[0]
    )


def test_sampling_tools_take_a_class_and_arithmetic_needs_one(
    tiny_conditional_run, conditional_generator, tmp_path
):
    found = run_tool("search", tiny_conditional_run, tmp_path, "class=bird", "num_samples=6", "top_k=2")
    assert found["all_scores"].shape == (6,)
    run_tool(
        "real_vs_fake",
        tiny_conditional_run,
        tmp_path,
        "class=horse",
        "num_images=4",
        f"out={tmp_path / 'rf.png'}",
    )
    assert (tmp_path / "rf.png").is_file()
    with pytest.raises(UserError, match="arithmetic on a conditional generator works within one class"):
        run_tool("arithmetic", tiny_conditional_run, tmp_path, "sheet_size=4")
    out = run_tool("arithmetic", tiny_conditional_run, tmp_path, "sheet_size=4", "class=horse")
    assert out["sheet"].shape == (4, 100)


def test_search_scores_with_the_projection_discriminator_s_class(tiny_conditional_run, tmp_path):
    from dcgan_lit.checkpoint.load import discriminator_from_checkpoint
    from dcgan_lit.tools.search import realism_scorer, score_samples

    checkpoint = tiny_conditional_run / "checkpoints/last.ckpt"
    generator, discriminator = (
        generator_from_checkpoint(checkpoint),
        discriminator_from_checkpoint(checkpoint),
    )
    z = sample_z(generator, 4, seed=0)
    labels = torch.tensor([BIRD, BIRD, HORSE, HORSE])
    scores = score_samples(generator, realism_scorer(discriminator), z, 3, labels)
    with torch.no_grad():
        expected = discriminator(generator(z, labels), labels)
    torch.testing.assert_close(scores, expected)


# Loads the conditional TorchScript file without dcgan_lit, samples horses and a class by name.
STANDALONE = """
import sys
sys.modules["dcgan_lit"] = None
import torch
generator = torch.jit.load(sys.argv[1])
bird = generator.class_index("bird")
torch.save({"bird": bird, "names": list(generator.class_names),
            "birds": generator.sample(3, 7, None, torch.full([3], bird))}, sys.argv[2])
"""


@pytest.mark.slow  # a second process loads the TorchScript file without dcgan_lit
def test_torchscript_and_state_dict_exports_take_the_class(
    tiny_conditional_run, conditional_generator, tmp_path
):
    checkpoint = tiny_conditional_run / "checkpoints/last.ckpt"
    _, difference = export(checkpoint, "state_dict", tmp_path / "g.pt")
    assert difference == 0.0
    scripted, difference = export(checkpoint, "torchscript", tmp_path / "g.torchscript.pt")
    assert difference == 0.0
    out = tmp_path / "standalone.pt"
    result = run_isolated(STANDALONE, str(scripted), str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    standalone = torch.load(out, weights_only=True)
    assert standalone["bird"] == BIRD and standalone["names"] == ["horse", "bird"]
    expected = conditional_generator.sample(3, seed=7, labels=torch.full((3,), BIRD))
    # another process, maybe another thread count: float round-off only
    torch.testing.assert_close(standalone["birds"], expected, rtol=1e-5, atol=1e-6)


def test_onnx_takes_class_weights(tiny_conditional_run, conditional_generator, tmp_path):
    onnxruntime = pytest.importorskip(
        "onnxruntime", reason="onnxruntime is not installed (pip install '.[onnx]')"
    )
    pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install '.[onnx]')")
    path, difference = export(tiny_conditional_run / "checkpoints/last.ckpt", "onnx", tmp_path / "g.onnx")
    assert difference is not None and difference <= 1e-4
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z", "class_weights"]
    z = conditional_generator.sample_latent(3, seed=1)
    weights = torch.tensor([[1.0, 0.0], [0.3, 0.7], [0.0, 1.0]])
    images = session.run(None, {"z": z.numpy(), "class_weights": weights.numpy()})[0]
    assert (torch.from_numpy(images) - g(conditional_generator, z, weights)).abs().max().item() <= 1e-4
