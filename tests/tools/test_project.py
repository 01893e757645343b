"""project: fitting z (and class) to real images, the files other tools read, and the memorization score."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from dcgan_lit.checkpoint.load import save_generator
from dcgan_lit.errors import UserError
from dcgan_lit.model.networks import Generator
from dcgan_lit.pixels import from_uint8, to_uint8
from dcgan_lit.tools import project as project_tool
from dcgan_lit.tools.latent import load_z, sample_z
from dcgan_lit.tools.projection import Distance, project, untrained_generator
from tests.helpers.config import compose_tool
from tests.helpers.images import write_images
from tests.helpers.latent import g
from tests.helpers.runs import run_tool

pytestmark = pytest.mark.usefixtures("single_thread")

QUICK = ["starts=2", "gif=false", "perceptual_weight=0"]


def write_pngs(folder, images: torch.Tensor) -> None:
    """Writes uint8 (N, 3, H, W) images as numbered PNGs."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{index:02d}.png")


def smooth_images(count: int, seed: int, size: tuple[int, int] = (32, 32)) -> torch.Tensor:
    """uint8 (count, 3, height, width): random 4x4 colour fields upsampled, one 'source' of images."""
    coarse = torch.rand(count, 3, 4, 4, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return to_uint8(F.interpolate(coarse, size=size, mode="bicubic", align_corners=False).clamp(-1, 1))


def overfit_generator(images: torch.Tensor, steps: int = 400) -> Generator:
    """A small G whose weights are fitted to map 8 fixed z's to ``images``: a generator that memorised them."""
    torch.manual_seed(0)
    generator = untrained_generator(Generator(image_size=32, ngf=16), seed=0)
    z = generator.sample_latent(len(images), seed=9)
    optimizer = torch.optim.Adam(generator.parameters(), lr=3e-3)
    for _ in range(steps):
        optimizer.zero_grad()
        (generator(z) - from_uint8(images)).pow(2).mean().backward()
        optimizer.step()
    return generator.eval()


@pytest.fixture(scope="module")
def memorised(single_thread):
    """A generator that memorised 8 smooth images (train), and 8 more of the same kind it never saw (heldout)."""
    train, heldout = smooth_images(8, seed=1), smooth_images(8, seed=2)
    with torch.enable_grad():
        return overfit_generator(train), train, heldout


def test_projection_lowers_the_distance_and_is_deterministic_for_a_seed(memorised):
    generator, _, heldout = memorised
    targets = from_uint8(heldout[:3])
    result = project(generator, targets, Distance("mse"), steps=40, starts=2, seed=0)
    assert result.images.shape == (3, 3, 32, 32) and result.z.shape == (3, 100)
    assert (result.distance < 0.9 * result.start_distance).all()
    assert torch.allclose(generator(result.z), result.images, atol=1e-5)
    # The same seed gives the same z, whatever the batching (candidates per forward pass).
    again = project(generator, targets, Distance("mse"), steps=40, starts=2, seed=0, batch_size=2)
    assert torch.allclose(again.z, result.z, atol=1e-4)
    other = project(generator, targets, Distance("mse"), steps=40, starts=2, seed=1)
    assert not torch.allclose(other.z, result.z)


def test_an_image_of_g_itself_is_reconstructed_to_near_zero_error(tiny_run, tmp_path, generator):
    made = tmp_path / "made"
    write_pngs(made, to_uint8(g(generator, sample_z(generator, 2, 77))))
    args = [f"target={made}", "steps=150", *QUICK, "feature_weight=0"]
    trained = run_tool("project", tiny_run, tmp_path, *args, f"out_dir={tmp_path / 'trained'}")
    assert all(row["mse"] < 2e-4 and row["psnr"] > 37 for row in trained["images"])
    assert all(row["ssim"] > 0.95 for row in trained["images"])
    # The paper's random init cannot make these images: its error is far larger.
    untrained = run_tool(
        "project", tiny_run, tmp_path, *args, "untrained=true", f"out_dir={tmp_path / 'untrained'}"
    )
    assert untrained["mean"]["mse"] > 10 * trained["mean"]["mse"]
    assert untrained["generator"] == "untrained"


def test_projected_z_feed_interpolate_walk_arithmetic_and_search(tiny_run, tmp_path, generator):
    photos = tmp_path / "photos"
    write_images(photos, 3, size=(32, 32), seed=6)
    report = run_tool(
        "project", tiny_run, tmp_path, f"target={photos}", "steps=10", *QUICK, f"out_dir={tmp_path}"
    )
    saved = tmp_path / "projected.pt"
    z = load_z(saved, 100)
    recon = report["projection"].images
    assert torch.allclose(g(generator, z), recon, atol=1e-5)
    extras = torch.load(saved, weights_only=True)
    assert torch.allclose(extras["mse"], torch.tensor([row["mse"] for row in report["images"]]), atol=1e-6)

    inter = run_tool("interpolate", tiny_run, tmp_path, f"z_path={saved}", "indices=[0,2]", "steps=3")
    assert torch.allclose(inter["images"][0, 0], recon[0], atol=1e-5)
    assert torch.allclose(inter["images"][0, -1], recon[2], atol=1e-5)
    walk = run_tool("walk", tiny_run, tmp_path, f"z_path={saved}", "indices=[1]", "dim=[5]", "steps=3")
    assert torch.allclose(walk["images"][0, 1], recon[1], atol=1e-5)  # the middle step is z itself
    arithmetic = run_tool("arithmetic", tiny_run, tmp_path, f"z_path={saved}", f"out_dir={tmp_path}")
    assert torch.equal(arithmetic["sheet"], z)
    search = run_tool(
        "search", tiny_run, tmp_path, f"z_path={saved}", "num_samples=9", "top_k=9", f"out_dir={tmp_path}"
    )
    by_sample = search["z"][search["indices"].argsort()]  # candidate order
    assert torch.equal(by_sample[:3], z)  # the projected z's themselves, then z's around them
    offsets = (by_sample[3:] - z.repeat(2, 1)).norm(dim=1)
    assert (offsets > 0.5 * 0.5 * 10).all() and (offsets < 2 * 0.5 * 10).all()  # spread 0.5 of |N(0, I_100)|


def test_the_gif_grid_and_json_are_written_and_read_back(tiny_run, tmp_path):
    photos = tmp_path / "photos"
    write_images(photos, 5, size=(40, 48), seed=8)  # not the model's 32x32: resized and centre-cropped
    report = run_tool(
        "project",
        tiny_run,
        tmp_path,
        f"target={photos}",
        "num_images=4",
        "steps=8",
        "starts=1",
        "gif_images=3",
        "gif_frames=5",
        "gif_colors=32",
        "perceptual_weight=0",
        f"out_dir={tmp_path}",
    )
    gif = Image.open(tmp_path / "projection.gif")
    assert gif.n_frames == 5
    frames = []
    for index in range(gif.n_frames):
        gif.seek(index)
        frames.append(np.asarray(gif.convert("RGB"), dtype=np.int16))
    assert np.abs(frames[0] - frames[-1]).max() > 0  # the reconstructions change over the optimisation
    assert report["projection"].frame_steps == [0, 2, 4, 6, 8]
    saved = json.loads((tmp_path / "projection.json").read_text())
    assert saved["num_images"] == len(saved["images"]) == 4  # a seeded pick of 4 of the 5
    assert saved["mean"]["mse"] == pytest.approx(np.mean([row["mse"] for row in saved["images"]]), rel=1e-4)
    assert set(saved["images"][0]) >= {"name", "mse", "psnr", "ssim", "feature", "distance", "start"}
    assert saved["settings"]["terms"] == {"feature": 0.1}
    assert Image.open(tmp_path / "projection.png").size[0] == 2 + 4 * 66  # 2 pairs of 64-pixel tiles a row


def test_a_conditional_generator_picks_the_class_of_its_target(tmp_path):
    torch.manual_seed(0)
    generator = untrained_generator(Generator(image_size=32, ngf=8, num_classes=3), seed=0)
    classes = torch.tensor([2, 0, 1, 2])
    with torch.no_grad():
        targets = generator(generator.sample_latent(4, seed=5), classes)
    result = project(generator, targets, Distance("mse"), steps=120, starts=2, seed=1)
    assert result.labels.tolist() == classes.tolist()
    assert (result.distance < 0.15 * result.start_distance).all()
    only = project(generator, targets, Distance("mse"), steps=120, starts=2, seed=1, classes=[0, 1])
    assert set(only.labels.tolist()) <= {0, 1}
    assert only.distance[0] > 3 * result.distance[0]  # class 2's image made without class 2
    # The tool's outputs name the class: captions, JSON and the z file's labels.
    cfg = compose_tool("project", ["ckpt_path=x.ckpt", "steps=20", *QUICK, "classes=[0,2]"], tmp_path)
    generator.class_names = ["cat", "dog", "owl"]
    report = project_tool.write_projection(
        cfg, tmp_path, generator, Distance("mse"), None, to_uint8(targets), list("abcd"), "made"
    )
    saved = json.loads((tmp_path / "projection.json").read_text())
    assert [row["class"] for row in saved["images"]] == report["projection"].labels.tolist()
    assert {row["class_name"] for row in saved["images"]} <= {"cat", "owl"}
    assert torch.equal(
        torch.load(tmp_path / "projected.pt", weights_only=True)["labels"], report["projection"].labels
    )


def test_the_memorization_score_of_a_generator_that_memorised_is_well_below_one(memorised, tmp_path):
    generator, train, heldout = memorised
    write_pngs(tmp_path / "train", train)
    write_pngs(tmp_path / "heldout", heldout)
    ckpt = save_generator(generator, tmp_path / "overfit.pt")  # no D: pixels only
    cfg = compose_tool(
        "project",
        [
            f"ckpt_path={ckpt}",
            "mode=memorization",
            f"data={tmp_path / 'train'}",
            f"heldout={tmp_path / 'heldout'}",
            "num_images=8",
            "steps=100",
            *QUICK,
            f"out_dir={tmp_path / 'out'}",
            f"paths.cache_dir={tmp_path / 'cache'}",
        ],
        tmp_path,
    )
    report = project_tool.run(cfg)
    saved = json.loads((tmp_path / "out" / "memorization.json").read_text())
    assert saved["score"] == pytest.approx(saved["mean"]["train"]["mse"] / saved["mean"]["heldout"]["mse"])
    assert saved["score"] < 0.3 and report["score"] == saved["score"]
    assert saved["num_images"] == {"train": 8, "heldout": 8}
    assert 0 < saved["sem"]["heldout"]["mse"] < saved["mean"]["heldout"]["mse"]
    for side in ("train", "heldout"):
        assert (tmp_path / "out" / side / "projected.pt").is_file()
        assert json.loads((tmp_path / "out" / side / "projection.json").read_text())["num_images"] == 8


def test_the_perceptual_term_is_used_only_when_vgg16_weights_are_on_disk(tiny_run, tmp_path, monkeypatch):
    from torchvision.models.vgg import cfgs, make_layers

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    photos = tmp_path / "photos"
    write_images(photos, 1, size=(32, 32), seed=2)
    args = [f"target={photos}", "steps=2", "starts=1", "gif=false", f"out_dir={tmp_path}"]
    absent = run_tool("project", tiny_run, tmp_path, *args)
    assert "perceptual" not in absent["settings"]["terms"]
    layers = make_layers(cfgs["D"])[:16]
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    weights = {f"features.{k}": v for k, v in layers.state_dict().items()}
    torch.save(weights, tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth")
    present = run_tool("project", tiny_run, tmp_path, *args)
    assert present["settings"]["terms"] == {"feature": 0.1, "perceptual": 1.0}
    assert present["projection"].distance[0] > absent["projection"].distance[0]  # one more term in the sum
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(UserError, match="not torchvision's VGG16"):
        run_tool("project", tiny_run, tmp_path, *args, f"perceptual_weights={tmp_path / 'other.pth'}")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["target=/no/such/folder"], r"target=/no/such/folder: no such file or folder"),
        (["target={empty}"], r"no image files"),
        (["target={broken}"], r"none of the 1 files could be read"),
        ([], r"target= is missing"),
        (["mode=invert", "target={photos}"], r"mode='invert' is unknown"),
        (["mode=memorization"], r"needs heldout="),
        (["target={photos}", "classes=[1]"], r"not class-conditional"),
        (["target={photos}", "pixel_loss=l2"], r"pixel_loss='l2' is unknown"),
        (["target={photos}", "steps=0"], r"steps=0"),
        (["target={photos}", "perceptual_weights=/no/vgg.pth"], r"perceptual_weights=/no/vgg.pth: no such"),
    ],
)
def test_bad_inputs_are_one_line(tiny_run, tmp_path, overrides, message):
    write_images(tmp_path / "photos", 1, size=(32, 32))
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.png").write_bytes(b"not a png")
    folders = {name: tmp_path / name for name in ("photos", "empty", "broken")}
    with pytest.raises(UserError, match=message):
        run_tool("project", tiny_run, tmp_path, *[o.format(**folders) for o in overrides])
