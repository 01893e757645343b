"""Each GAN loss rewards D for telling real from fake and G for fooling D, on toy logits."""

import re

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


def test_lecam_anchors_follow_d_s_mean_outputs_and_penalise_drifting_apart():
    from dcgan_lit.model.losses import LeCam

    lecam = LeCam(weight=0.5, decay=0.9)
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([-1.0, -3.0])
    penalty = lecam(real, fake)
    # the averages move a tenth of the way from 0 to the means, 3 and -2: 0.3 and -0.2
    assert lecam.real_anchor.item() == pytest.approx(0.3) and lecam.fake_anchor.item() == pytest.approx(-0.2)
    expected = 0.5 * (((real + 0.2) ** 2).mean() + ((0.3 - fake) ** 2).mean())
    assert penalty.item() == pytest.approx(expected.item())
    # outputs that do not overshoot the other side's average cost nothing
    assert lecam(torch.tensor([-5.0]), torch.tensor([5.0])).item() == 0.0


def test_lecam_trains_d_with_the_penalty_and_only_when_on():
    from dcgan_lit.model.module import DCGAN
    from tests.helpers.model import fit

    torch.manual_seed(0)
    on = DCGAN(image_size=32, ngf=8, ndf=8, num_fixed_samples=4, lecam={"weight": 0.3, "decay": 0.99})
    off = DCGAN(image_size=32, ngf=8, ndf=8, num_fixed_samples=4, lecam={"weight": 0.0, "decay": 0.99})
    assert off.lecam is None and not any(k.startswith("lecam.") for k in off.state_dict())
    fit(on, steps=2)
    assert on.lecam.real_anchor.item() != 0.0 and on.lecam.fake_anchor.item() != 0.0  # moved by D's outputs
    assert {"lecam.real_anchor", "lecam.fake_anchor"} <= set(on.state_dict())


@pytest.mark.parametrize(
    ("lecam", "message"),
    [
        ({"weight": -1}, "model.lecam.weight=-1 must be a number >= 0"),
        ({"weight": True}, "model.lecam.weight=True must be a number >= 0"),
        ({"weight": 0.3, "decay": 1.0}, "model.lecam.decay=1.0 must be in [0, 1)"),
        ({"weigth": 0.3}, "must be a mapping of weight and decay"),
    ],
)
def test_bad_lecam_settings_are_one_line(lecam, message):
    from dcgan_lit.model.losses import check_lecam

    with pytest.raises(ValueError, match=re.escape(message)):
        check_lecam(lecam)
