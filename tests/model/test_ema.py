"""The EMA generator: the update math, BatchNorm buffers, start_step, sampling and checkpoints."""

import copy

import pytest
import torch

from dcgan_lit.checkpoint.load import generator_from_checkpoint
from dcgan_lit.model.ema import (
    BATCH_NORM_SAMPLES,
    decay_at,
    make_ema,
    recompute_batch_norm,
    update_ema,
)
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
    update_ema(ema, generator, decay_at(0.99, 4, warmup=False, start_step=5))  # before start_step: decay 0
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


def test_warmup_decay_follows_tensorflows_schedule():
    assert float(decay_at(0.999, 0, warmup=True)) == pytest.approx(0.1)
    assert float(decay_at(0.999, 90, warmup=True)) == pytest.approx(0.91)
    assert float(decay_at(0.999, 100_000, warmup=True)) == pytest.approx(0.999)
    assert float(decay_at(0.999, 0, warmup=False)) == pytest.approx(0.999)
    # before start_step the average follows G (decay 0); the warm-up counts from start_step
    assert float(decay_at(0.999, 4, warmup=True, start_step=5)) == 0.0
    assert float(decay_at(0.999, 5, warmup=True, start_step=5)) == pytest.approx(0.1)
    assert float(decay_at(0.99, 4, warmup=False, start_step=5)) == 0.0


def test_warmup_average_starts_close_to_g():
    torch.manual_seed(0)
    plain = DCGAN(image_size=32, channels=3, ngf=8, ndf=8, num_fixed_samples=4, ema={"decay": 0.999})
    torch.manual_seed(0)
    warm = DCGAN(
        image_size=32, channels=3, ngf=8, ndf=8, num_fixed_samples=4, ema={"decay": 0.999, "warmup": True}
    )
    torch.manual_seed(1)
    fit(plain, steps=3)
    torch.manual_seed(1)
    fit(warm, steps=3)
    assert torch.equal(plain.generator.main[0].weight, warm.generator.main[0].weight)  # same training

    def gap(model):
        return (model.generator_ema.main[0].weight - model.generator.main[0].weight).abs().mean()

    # decays 0.1, 0.18, 0.25 follow G closely; 0.999 barely leaves the initial weights
    assert gap(warm) < 0.5 * gap(plain)


def test_recomputed_statistics_are_the_averages_own():
    torch.manual_seed(0)
    generator = Generator(latent_dim=8, image_size=32, channels=3, ngf=4)
    generator.train()
    generator(torch.randn(64, 8))  # running statistics of the initial weights
    with torch.no_grad():
        generator.main[0].weight.mul_(3.0)  # the weights move on; the statistics no longer fit them
    state = {k: v.clone() for k, v in generator.state_dict().items()}
    generator.eval()
    recompute_batch_norm(generator, latent_dim=8)
    assert not generator.training
    # the first BatchNorm now holds the mean/variance of its input under the new weights
    z = torch.randn(BATCH_NORM_SAMPLES, 8, 1, 1, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        activations = generator.main[0](z)
    batch_norm = generator.main[1]
    torch.testing.assert_close(batch_norm.running_mean, activations.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(batch_norm.running_mean, state["main.1.running_mean"])
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    recompute_batch_norm(generator, latent_dim=8)  # depends on the weights alone
    assert all(torch.equal(v, before[k]) for k, v in generator.state_dict().items())


def test_recompute_bn_refreshes_before_sampling_and_saving(tmp_path):
    torch.manual_seed(0)
    model = DCGAN(
        image_size=32, channels=3, ngf=8, ndf=8, num_fixed_samples=4, ema={"decay": 0.9, "recompute_bn": True}
    )
    trainer = fit(model, steps=3)
    averaged = model.generator_ema.main[1].running_mean.clone()  # an average of G's statistics
    rng = torch.get_rng_state()
    generator = sampling_generator(model)
    assert torch.equal(torch.get_rng_state(), rng)  # the training's random stream is untouched
    expected = copy.deepcopy(generator)
    recompute_batch_norm(expected, latent_dim=100)
    assert not torch.allclose(generator.main[1].running_mean, averaged)
    assert all(torch.equal(v, expected.state_dict()[k]) for k, v in generator.state_dict().items())
    # a checkpoint carries the recomputed statistics even when they went stale after the last sampling
    model.update_generator_ema()
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    state = torch.load(tmp_path / "m.ckpt", weights_only=True)["state_dict"]
    refreshed = copy.deepcopy(model.generator_ema)
    recompute_batch_norm(refreshed, latent_dim=100)
    for name, buffer in refreshed.named_buffers():
        assert torch.equal(state[f"generator_ema.{name}"], buffer)
