"""The EMA generator: the update math, BatchNorm buffers, start_step, sampling and checkpoints."""

import pytest
import torch

from dcgan_lit.checkpoint.load import generator_from_checkpoint
from dcgan_lit.model.ema import copy_into, make_ema, update_ema
from dcgan_lit.model.module import DCGAN
from dcgan_lit.model.networks import Generator
from dcgan_lit.model.sampling import sampling_generator
from tests.helpers.model import fit


def test_update_is_decay_weighted_average_of_weights_and_buffers():
    torch.manual_seed(0)
    generator = Generator(latent_dim=8, image_size=32, channels=3, ngf=4)
    ema = make_ema(generator)
    assert not any(p.requires_grad for p in ema.parameters()) and not ema.training
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    generator.train()
    generator(torch.randn(16, 8))  # moves BatchNorm running statistics
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(torch.randn_like(p))
    current = generator.state_dict()
    update_ema(ema, generator, decay=0.9)
    for key, value in ema.state_dict().items():
        if key.endswith("num_batches_tracked"):
            assert value == current[key] == 1  # integer buffers are copied
        else:
            expected = 0.9 * before[key] + 0.1 * current[key]
            torch.testing.assert_close(value, expected)
    assert not torch.equal(ema.state_dict()["main.1.running_mean"], before["main.1.running_mean"])
    copy_into(ema, generator)
    for key, value in ema.state_dict().items():
        assert torch.equal(value, current[key])


def test_training_keeps_the_ema_and_uses_it_for_samples(tmp_path):
    torch.manual_seed(0)
    model = DCGAN(
        image_size=32, channels=3, ngf=8, ndf=8, num_fixed_samples=4, ema={"decay": 0.5, "start_step": 3}
    )
    initial = {k: v.clone() for k, v in model.generator_ema.state_dict().items()}
    fit(model, steps=2)
    # Before start_step the average follows G exactly.
    for key, value in model.generator_ema.state_dict().items():
        assert torch.equal(value, model.generator.state_dict()[key])
    assert any(not torch.equal(v, initial[k]) for k, v in model.generator_ema.state_dict().items())
    keys = model.state_dict().keys()
    assert "generator_ema.main.0.weight" in keys and "generator_ema.main.1.running_var" in keys
    torch.save(
        {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, tmp_path / "m.ckpt"
    )
    loaded = generator_from_checkpoint(tmp_path / "m.ckpt")
    # sample_fixed: the EMA G in eval mode (trained channels_last, loaded contiguous: float round-off only)
    torch.testing.assert_close(loaded(model.fixed_noise).detach(), model.sample_fixed(), rtol=1e-5, atol=1e-6)


def test_ema_averages_after_start_step():
    torch.manual_seed(0)
    model = DCGAN(
        image_size=32, channels=3, ngf=8, ndf=8, num_fixed_samples=4, ema={"decay": 0.9, "start_step": 0}
    )
    fit(model, steps=3)
    g, ema = model.generator.state_dict(), model.generator_ema.state_dict()
    assert not torch.equal(g["main.0.weight"], ema["main.0.weight"])
    assert torch.equal(g["main.1.num_batches_tracked"], ema["main.1.num_batches_tracked"])
    samples = model.sample_fixed()
    model.generator.eval()
    model.generator_ema.eval()
    assert torch.equal(samples, model.generator_ema(model.fixed_noise))
    assert not torch.equal(samples, model.generator(model.fixed_noise))


def test_ema_state_dict_has_exactly_the_generators_key_layout():
    model = DCGAN(image_size=32, channels=3, ngf=8, ndf=8, ema={"decay": 0.999})
    state = model.state_dict()
    ema_keys = sorted(k.removeprefix("generator_ema.") for k in state if k.startswith("generator_ema."))
    assert ema_keys == sorted(model.generator.state_dict())  # no "module." or "n_averaged" entries
    assert isinstance(model.generator_ema, Generator)


def test_ema_is_off_by_default():
    model = DCGAN(image_size=32, channels=3, ngf=8, ndf=8, num_fixed_samples=4)
    assert not hasattr(model, "generator_ema") and sampling_generator(model) is model.generator
    assert not any(k.startswith("generator_ema.") for k in model.state_dict())


@pytest.mark.parametrize("decay", [-0.1, 1.5])
def test_bad_decay_is_refused(decay):
    with pytest.raises(ValueError, match="decay"):
        DCGAN(image_size=32, channels=3, ngf=8, ndf=8, ema={"decay": decay})
