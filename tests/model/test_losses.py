"""Each GAN loss rewards D for telling real from fake and G for fooling D, on toy logits."""

import pytest
import torch

from dcgan_lit.model.losses import LOSSES, check_loss, discriminator_loss, generator_loss

CONFIDENT_REAL = torch.tensor([4.0, 5.0])
CONFIDENT_FAKE = torch.tensor([-4.0, -5.0])


@pytest.mark.parametrize("name", LOSSES)
def test_discriminator_loss_is_lowest_when_d_is_right(name):
    right = discriminator_loss(name, CONFIDENT_REAL, CONFIDENT_FAKE)
    wrong = discriminator_loss(name, CONFIDENT_FAKE, CONFIDENT_REAL)
    assert right < wrong
    assert right >= 0


@pytest.mark.parametrize("name", LOSSES)
def test_generator_loss_is_lowest_when_d_is_fooled(name):
    fooled = generator_loss(name, CONFIDENT_REAL)
    caught = generator_loss(name, CONFIDENT_FAKE)
    assert fooled < caught


@pytest.mark.parametrize("name", LOSSES)
def test_gradients_point_the_right_way(name):
    logits_real = torch.full((3,), 0.5, requires_grad=True)
    logits_fake = torch.full((3,), 0.5, requires_grad=True)
    discriminator_loss(name, logits_real, logits_fake).backward()
    # Descending D's loss raises the real logits and lowers the fake ones.
    assert (logits_real.grad < 0).all() and (logits_fake.grad > 0).all()
    logits_for_g = torch.full((3,), 0.5, requires_grad=True)
    generator_loss(name, logits_for_g).backward()
    assert (logits_for_g.grad < 0).all()  # descending G's loss raises D's logit for G(z)


def test_known_values():
    zero = torch.zeros(4)
    assert discriminator_loss("bce", zero, zero).item() == pytest.approx(2 * 0.693147, abs=1e-5)
    assert discriminator_loss("hinge", zero, zero).item() == pytest.approx(2.0)
    assert discriminator_loss("lsgan", zero, zero).item() == pytest.approx(0.5)
    assert generator_loss("hinge", torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)
    assert generator_loss("lsgan", torch.tensor([1.0, 3.0])).item() == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["bce", "lsgan"])
def test_one_sided_smoothing_moves_only_the_real_target(name):
    real = torch.tensor([10.0, 10.0])
    fake = torch.tensor([-10.0, -10.0])
    # With targets 0.9 for real, a D that is certain is penalised; the fake term is unchanged.
    assert discriminator_loss(name, real, fake, 0.1) > discriminator_loss(name, real, fake, 0.0) + 0.01
    real_at_target = torch.tensor([0.9, 0.9]) if name == "lsgan" else torch.logit(torch.tensor([0.9, 0.9]))
    smoothed = discriminator_loss(name, real_at_target.requires_grad_(), fake, 0.1)
    smoothed.backward()
    assert real_at_target.grad.abs().max() < 1e-6  # the optimum for real logits sits at the smoothed label


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="gan.loss='wgan' is unknown"):
        check_loss("wgan")
    with pytest.raises(ValueError, match="not hinge"):
        check_loss("hinge", 0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        check_loss("bce", 1.0)
