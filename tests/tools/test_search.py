"""search: the top k samples by D's realism or by a user classifier."""

import pytest
import torch
from torch import nn

from dcgan_lit.checkpoint.load import generator_from_checkpoint
from dcgan_lit.errors import UserError
from dcgan_lit.tools.latent import sample_z
from tests.helpers.latent import g
from tests.helpers.runs import run_tool

pytestmark = pytest.mark.usefixtures("single_thread")


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


def test_search_says_when_the_classifier_cannot_be_built(tiny_run, tmp_path):
    torch.save(Brightness().state_dict(), tmp_path / "clf.pt")
    common = ["criterion=classifier", f"classifier.weights={tmp_path / 'clf.pt'}", "classifier.classes=[1]"]
    with pytest.raises(UserError, match="could not be built"):
        run_tool("search", tiny_run, tmp_path, "classifier.target=no_such_pkg.Net", *common)
    with pytest.raises(UserError, match="not a torch nn.Module"):
        run_tool("search", tiny_run, tmp_path, "classifier.target=builtins.dict", *common)
