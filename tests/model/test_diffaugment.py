"""DiffAugment: identity when empty, each operation does what it says, and gradients reach G through it."""

import pytest
import torch

from dcgan_lit.model.diffaugment import DiffAugment, color, cutout, parse_policy, translation
from dcgan_lit.model.networks import Generator


def images(n=4, size=16, seed=0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("policy", [None, "", [], " , "])
def test_empty_policy_is_the_identity(policy):
    x = images()
    assert DiffAugment(policy)(x) is x


def test_policy_parsing_and_errors():
    assert parse_policy("color, translation,cutout") == ["color", "translation", "cutout"]
    assert parse_policy(["cutout"]) == ["cutout"]
    with pytest.raises(ValueError, match=r"unknown operation\(s\) \['flip'\]"):
        parse_policy("color,flip")


def test_translation_shifts_content_and_fills_with_zeros():
    torch.manual_seed(0)
    x = images(n=64) + 3.0  # strictly positive, so zero fill is recognisable
    shifted = translation(x, ratio=0.125)
    assert shifted.shape == x.shape
    zero_rows_or_cols = (shifted == 0).all(dim=1)  # (N, H, W) pixels filled by the border
    assert zero_rows_or_cols.any() and not zero_rows_or_cols.all()
    # Every non-zero pixel is some pixel of the same image: values are moved, never mixed.
    for a, b in zip(x, shifted, strict=True):
        kept = b[b != 0]
        assert torch.isin(kept, a).all()


def test_cutout_zeroes_a_square_of_half_the_side():
    torch.manual_seed(0)
    x = images(n=8, size=16) + 3.0
    out = cutout(x, ratio=0.5)
    zeroed = (out == 0).all(dim=1).flatten(1).sum(dim=1)
    assert zeroed.tolist() == [8 * 8] * 8


def test_color_changes_values_per_image_but_not_shape():
    torch.manual_seed(0)
    x = images(n=8)
    out = color(x)
    assert out.shape == x.shape and not torch.allclose(out, x)


def test_gradients_reach_the_generator_through_every_operation():
    torch.manual_seed(0)
    generator = Generator(latent_dim=8, image_size=32, channels=3, ngf=4)
    augment = DiffAugment("color,translation,cutout")
    augment(generator(torch.randn(4, 8))).square().mean().backward()
    grads = [p.grad for p in generator.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(g.abs().sum() > 0 for g in grads)


def test_adaptive_augmentation_raises_p_while_d_is_overconfident_and_lowers_it_after():
    from dcgan_lit.model.diffaugment import AdaptiveAugment

    ada = AdaptiveAugment(["translation"], target=0.6, interval=4, speed_images=1000)
    for _ in range(3):
        ada.observe(torch.tensor([2.0, 3.0, 1.0, -1.0]))  # r = 0.5: below the target
    ada.adjust(100)
    assert ada.p.item() == 0.0  # clamped at 0
    for _ in range(3):
        ada.observe(torch.tensor([2.0, 3.0, 1.0, 4.0]))  # r = 1: D is sure of every real image
    ada.adjust(100)
    assert ada.p.item() == pytest.approx(0.1) and ada.count.item() == 0  # 100 of the 1,000 images to p = 1
    ada.observe(torch.tensor([-2.0, -3.0]))
    ada.adjust(300)
    assert ada.p.item() == 0.0


def test_adaptive_augmentation_augments_each_image_with_probability_p():
    from dcgan_lit.model.diffaugment import AdaptiveAugment

    torch.manual_seed(0)
    images = torch.rand(400, 3, 8, 8) * 2 - 1
    ada = AdaptiveAugment(["cutout"], target=0.6)
    assert torch.equal(ada(images), images)  # p = 0: the identity
    ada.p.fill_(0.25)
    changed = (ada(images) != images).flatten(1).any(1).float().mean().item()
    assert 0.18 < changed < 0.32
    ada.p.fill_(1.0)
    assert (ada(images) != images).flatten(1).any(1).all()
