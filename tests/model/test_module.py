"""The DCGAN LightningModule: adversarial_step (D then G, D frozen for G), optimizers, option checks."""

import copy
import re
from functools import partial

import pytest
import torch

from dcgan_lit.model.losses import bce
from dcgan_lit.model.module import DCGAN, check_options
from tests.helpers.model import changed, fit, snapshot, tiny_model


def test_one_iteration_changes_both_networks():
    torch.manual_seed(0)
    model = tiny_model()
    g0, d0 = snapshot(model.generator), snapshot(model.discriminator)
    fit(model, steps=1)
    assert changed(g0, model.generator)
    assert changed(d0, model.discriminator)
    assert model.iteration == 1


def test_generator_step_leaves_discriminator_unchanged(monkeypatch):
    """Run one iteration and look at D's parameters right before and right after G's optimizer step."""
    torch.manual_seed(0)
    model = tiny_model()
    seen = {}
    original = DCGAN.configure_optimizers

    def spy(self):
        opt_d, opt_g = original(self)
        step = opt_g.step

        def g_step(*args, **kwargs):
            seen["before"] = snapshot(self.discriminator)
            out = step(*args, **kwargs)
            seen["after"] = snapshot(self.discriminator)
            return out

        opt_g.step = g_step
        return [opt_d, opt_g]

    monkeypatch.setattr(DCGAN, "configure_optimizers", spy)
    fit(model, steps=1)
    assert seen, "G's step never ran"
    assert all(torch.equal(seen["before"][k], seen["after"][k]) for k in seen["before"])
    # D's grads are those of D's own step (zeroed to None before it), not accumulated by G's backward
    assert all(p.requires_grad for p in model.discriminator.parameters()), "D must be unfrozen after G's step"


def test_g_backward_puts_no_gradient_on_discriminator():
    torch.manual_seed(0)
    model = tiny_model()
    trainer = fit(model, steps=1)
    assert trainer.global_step == 2
    model.discriminator.zero_grad(set_to_none=True)
    with model.toggled_optimizer(trainer.optimizers[1]):
        fake = model.generator(model.sample_noise(4))
        bce(model.discriminator(fake), 1.0).backward()
    assert all(p.grad is None for p in model.discriminator.parameters())
    assert all(p.grad is not None for p in model.generator.parameters())


def test_losses_stay_finite_and_are_logged():
    torch.manual_seed(0)
    model = tiny_model()
    trainer = fit(model, steps=6)
    metrics = trainer.callback_metrics
    for key in ("train/loss_d", "train/loss_g", "train/d_real", "train/d_fake"):
        assert torch.isfinite(metrics[key]), key
    assert 0 < metrics["train/d_real"] < 1 and 0 < metrics["train/d_fake"] < 1


@pytest.mark.parametrize("d_steps", [1, 3])
def test_global_step_counts_optimizer_steps_and_iteration_counts_batches(d_steps):
    torch.manual_seed(0)
    model = tiny_model(d_steps=d_steps)
    trainer = fit(model, steps=4)
    assert trainer.global_step == 4 * (d_steps + 1)
    assert model.iteration == 4


def test_bce_direction():
    logits = torch.tensor([3.0, -3.0])
    # Labelling confident-real logits as real costs little; as fake costs a lot.
    assert bce(logits[:1], 1.0) < 0.1 < bce(logits[:1], 0.0)
    assert bce(logits[1:], 0.0) < 0.1 < bce(logits[1:], 1.0)


def test_optimizers_are_the_papers_adam_and_configurable():
    from functools import partial

    model = tiny_model(optimizer_g=partial(torch.optim.Adam, lr=1e-4, betas=(0.0, 0.9)))
    opt_d, opt_g = model.configure_optimizers()
    assert opt_d.defaults["lr"] == 2e-4 and opt_d.defaults["betas"] == (0.5, 0.999)
    assert opt_g.defaults["lr"] == 1e-4 and opt_g.defaults["betas"] == (0.0, 0.9)
    assert {id(p) for g in opt_d.param_groups for p in g["params"]} == {
        id(p) for p in model.discriminator.parameters()
    }


@pytest.mark.parametrize(
    ("device", "factory", "fused"),
    [
        ("cpu", None, None),  # the default implementation off CUDA
        ("cuda", None, True),  # Adam fused on CUDA
        ("cuda", partial(torch.optim.Adam, lr=2e-4, foreach=False), None),  # the config's choice kept
        ("cuda", partial(torch.optim.Adam, lr=2e-4, fused=False), False),
        ("cuda", partial(torch.optim.RMSprop, lr=2e-4), None),  # no fused form: its default one
    ],
)
def test_on_cuda_the_optimizers_are_fused_unless_the_config_chose(monkeypatch, device, factory, fused):
    model = tiny_model(**({"optimizer_d": factory, "optimizer_g": factory} if factory else {}))
    monkeypatch.setattr(type(model), "device", property(lambda self: torch.device(device)))
    for optimizer in model.configure_optimizers():  # built on the CPU's tensors: the choice is what is tested
        assert optimizer.defaults.get("fused") == fused


def test_fixed_noise_is_saved_in_state_dict_and_sampling_keeps_train_mode():
    model = tiny_model()
    assert "fixed_noise" in model.state_dict()
    clone = tiny_model()
    clone.load_state_dict(copy.deepcopy(model.state_dict()))
    assert torch.equal(clone.fixed_noise, model.fixed_noise)
    model.train()
    assert model.sample_fixed().shape == (4, 3, 32, 32)
    assert model.generator.training


def test_adversarial_step_freezes_d_for_gs_step_and_unfreezes_it_after():
    torch.manual_seed(0)
    model = tiny_model()
    opt_d, opt_g = model.configure_optimizers()
    seen = {}
    g_step = opt_g.step

    def spy(*args, **kwargs):
        seen["d_requires_grad"] = [p.requires_grad for p in model.discriminator.parameters()]
        seen["d_grads"] = [p.grad for p in model.discriminator.parameters()]
        seen["g_grads"] = [p.grad for p in model.generator.parameters()]
        return g_step(*args, **kwargs)

    opt_g.step = spy
    step = model.adversarial_step(torch.rand(4, 3, 32, 32) * 2 - 1, opt_d, opt_g)
    assert seen["d_requires_grad"] and not any(seen["d_requires_grad"])  # frozen inside G's step
    # D's grads at G's step are still those of D's own step: G's backward added nothing to them
    d_step_grads = [p.grad for p in model.discriminator.parameters()]
    assert all(a is b for a, b in zip(seen["d_grads"], d_step_grads, strict=True))
    assert all(g is not None for g in seen["g_grads"])
    assert all(p.requires_grad for p in model.discriminator.parameters())  # unfrozen after
    assert torch.isfinite(step.loss_d) and torch.isfinite(step.loss_g)


@pytest.mark.parametrize("d_steps", [1, 2])
def test_adversarial_step_takes_d_steps_d_optimizer_steps_then_one_g_step(d_steps):
    torch.manual_seed(0)
    model = tiny_model(d_steps=d_steps)
    opt_d, opt_g = model.configure_optimizers()
    order = []
    for name, optimizer in (("D", opt_d), ("G", opt_g)):
        original = optimizer.step
        optimizer.step = lambda *a, _name=name, _original=original, **k: (
            order.append(_name),
            _original(*a, **k),
        )
    model.adversarial_step(torch.rand(4, 3, 32, 32) * 2 - 1, opt_d, opt_g)
    assert order == ["D"] * d_steps + ["G"]
    assert opt_d.state[next(model.discriminator.parameters())]["step"] == d_steps


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("wasserstein", 0.0, "batch", None, None), "gan.loss='wasserstein' is unknown"),
        (("bce", 1.5, "batch", None, None), r"gan.label_smoothing=1.5 must be in \[0, 1\)"),
        (("hinge", 0.1, "batch", None, None), "not hinge"),
        (("bce", 0.0, "layer", None, None), "model.d_norm=layer is unknown"),
        (("bce", 0.0, "batch", "color,rotate", None), r"augment.policy: unknown operation\(s\).*rotate"),
        (("bce", 0.0, "batch", None, {"decay": 1.0}), r"model.ema.decay=1.0 must be in \[0, 1\)"),
        (("bce", 0.0, "batch", None, {"decay": -0.1}), r"model.ema.decay=-0.1 must be in \[0, 1\)"),
        (
            ("bce", 0.0, "batch", None, {"decay": 0.9, "warmup": "yes"}),
            "model.ema.warmup=yes must be true or false",
        ),
        (("bce", 0.0, "batch", None, {"recompute_bn": 1}), "model.ema.recompute_bn=1 must be true or false"),
        (("bce", 0.0, "batch", None, {"decays": 0.9}), "model.ema.decays is not an EMA option"),
        (("bce", 0.0, "batch", None, 0.99), "model.ema=0.99 must be a mapping"),
    ],
)
def test_check_options_refuses_each_bad_option_in_one_line(options, message):
    with pytest.raises(ValueError, match=message) as error:
        check_options(*options)
    assert "\n" not in str(error.value)


def test_check_options_accepts_every_documented_option():
    for loss in ("bce", "hinge", "lsgan"):
        for norm in ("batch", "spectral", "none"):
            check_options(
                loss, 0.0 if loss == "hinge" else 0.1, norm, "color,translation,cutout", {"decay": 0.999}
            )
    check_options("bce", 0.0, "batch", None, None)
    ema = {"decay": 0.0, "start_step": 5, "warmup": True, "recompute_bn": True}
    check_options("bce", 0.0, "batch", [], ema)


def test_the_unconditional_step_is_the_pytorch_example_s_loop():
    """Conditioning left the unconditional step as it was: with the same seed, DCGAN.adversarial_step gives the
    losses of the PyTorch example's loop (benchmarks.classic) on the same networks."""
    from benchmarks.classic import ClassicDCGAN

    torch.manual_seed(0)
    model = DCGAN(image_size=32, channels=3)
    torch.manual_seed(0)
    classic = ClassicDCGAN(32, torch.device("cpu"))
    for ours, theirs in ((model.generator, classic.netG), (model.discriminator, classic.netD)):
        assert all(
            torch.equal(a, b)
            for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True)
        )
    real = torch.rand(8, 3, 32, 32) * 2 - 1
    opt_d, opt_g = model.configure_optimizers()
    torch.manual_seed(1)
    ours = [model.adversarial_step(real, opt_d, opt_g) for _ in range(3)]
    torch.manual_seed(1)
    theirs = [classic.step(real) for _ in range(3)]
    for step, (loss_d, loss_g) in zip(ours, theirs, strict=True):
        assert step.loss_d.item() == pytest.approx(loss_d, rel=1e-5)
        assert step.loss_g.item() == pytest.approx(loss_g, rel=1e-5)


def conditional_model(**kwargs) -> DCGAN:
    return tiny_model(conditional=True, class_names=["horse", "bird", "cat"], **kwargs)


def test_a_conditional_model_trains_its_class_embedding_and_projection():
    torch.manual_seed(0)
    model = conditional_model()
    assert model.hparams.class_names == ["horse", "bird", "cat"] and type(model.hparams.class_names) is list
    assert model.generator.num_classes == model.discriminator.num_classes == 3
    g0, d0 = snapshot(model.generator), snapshot(model.discriminator)
    fit(model, steps=2)
    assert changed(g0, model.generator) and changed(d0, model.discriminator)
    assert not torch.equal(g0["class_embedding.weight"], model.generator.class_embedding.weight)
    assert not torch.equal(d0["projection.weight"], model.discriminator.projection.weight)


def test_the_step_gives_the_real_labels_to_d_and_to_the_fakes(monkeypatch):
    torch.manual_seed(0)
    model = conditional_model()
    seen = {"generator": [], "discriminator": []}
    for name in seen:
        network = getattr(model, name)
        forward = network.forward

        def spy(x, labels=None, _forward=forward, _name=name):
            seen[_name].append(labels)
            return _forward(x, labels)

        monkeypatch.setattr(network, "forward", spy)
    opt_d, opt_g = model.configure_optimizers()
    labels = torch.tensor([0, 2, 1, 1])
    model.adversarial_step(torch.rand(4, 3, 32, 32) * 2 - 1, opt_d, opt_g, labels=labels)
    assert (
        len(seen["generator"]) == 1 and len(seen["discriminator"]) == 3
    )  # D(x), D(G(z)) for D; D(G(z)) for G
    assert all(used is labels for used in seen["generator"] + seen["discriminator"])


def test_the_fixed_grid_has_one_row_per_class():
    torch.manual_seed(0)
    model = conditional_model(num_fixed_samples=6)
    grid = model.sample_fixed(per_class=4)
    assert grid.shape == (12, 3, 32, 32)
    with torch.no_grad():
        expected = model.generator.eval()(model.fixed_noise[:4], torch.full((4,), 2))  # row 2: class "cat"
    torch.testing.assert_close(grid[8:], expected)
    assert tiny_model(num_fixed_samples=6).sample_fixed(per_class=4).shape == (6, 3, 32, 32)  # unconditional


def test_conditional_needs_class_names():
    with pytest.raises(ValueError, match="model.conditional=true needs the data's class names"):
        tiny_model(conditional=True)
    assert tiny_model(class_names=["a", "b"]).hparams.class_names is None  # ignored unless conditional


def test_adaptive_augmentation_adjusts_p_in_training_and_logs_it():
    torch.manual_seed(0)
    ada = {"target": 0.01, "interval": 1, "speed_images": 16}  # any D that beats chance raises p fast
    model = DCGAN(image_size=32, ngf=8, ndf=8, num_fixed_samples=4, augment_policy=["translation"], ada=ada)
    fit(model, steps=3)
    assert {"augment.p", "augment.signs", "augment.count"} <= set(model.state_dict())  # in checkpoints
    assert 0.0 < model.augment.p.item() <= 1.0
    assert model.last_step_metrics["train/augment_p"].item() == model.augment.p.item()


@pytest.mark.parametrize(
    ("ada", "policy", "message"),
    [
        ({"target": 0.6}, [], "model.ada.target needs operations to adapt: set augment=diffaugment"),
        ({"target": 1.5}, ["color"], "model.ada.target=1.5 must be in (0, 1)"),
        ({"target": 0.6, "speed_images": 0}, ["color"], "model.ada.speed_images=0 must be a positive number"),
        ({"taget": 0.6}, ["color"], "must be a mapping of target, interval, speed_images"),
    ],
)
def test_bad_ada_settings_are_one_line(ada, policy, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        DCGAN(image_size=32, ngf=8, ndf=8, augment_policy=policy, ada=ada)
