"""The latent helpers shared by the tools (slerp, lerp, seeds), refused checkpoints, the EMA generator."""

import pytest
import torch

from dcgan_lit.checkpoint.load import generator_from_checkpoint, submodule_state
from dcgan_lit.errors import UserError
from dcgan_lit.tools.latent import lerp, load_z, sample_z, save_z, slerp, z_for_seeds
from tests.helpers.latent import g
from tests.helpers.runs import run_tool

pytestmark = pytest.mark.usefixtures("single_thread")


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


def test_a_z_file_round_trips_and_a_damaged_one_is_one_line(tmp_path):
    z = torch.randn(3, 100)
    path = save_z(tmp_path / "top_k.pt", z, scores=torch.arange(3.0))
    assert torch.equal(load_z(path, 100), z) and torch.equal(load_z(path, 100, [2, 0]), z[[2, 0]])
    assert [p.name for p in tmp_path.iterdir()] == ["top_k.pt"]  # written atomically: no temporary left
    path.write_bytes(path.read_bytes()[:40])  # a copy cut short
    with pytest.raises(UserError, match=r"^z file .*top_k.pt is corrupt or not a PyTorch file \(\w+\)$"):
        load_z(path, 100)
    with pytest.raises(UserError, match=r"does not hold an \(N, 64\) tensor 'z'"):
        load_z(save_z(tmp_path / "small.pt", z), 64)
