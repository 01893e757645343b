"""DCGAN's speed options: mixed precision, channels_last, torch.compile, no host sync in the step."""

import traceback

import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision

from tests.helpers.model import changed, fit, snapshot, tiny_model


def finite(net: torch.nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in net.parameters())


def precision_settings(precision: str) -> dict:
    """Trainer arguments for ``precision``. Lightning maps 16-mixed to bf16 on CPU, so the float16 path with
    its GradScaler is built explicitly here (torch supports float16 autocast and GradScaler on CPU). A small
    initial scale keeps the first steps from being skipped as overflows, as the default 65536 would."""
    if precision == "16-mixed":
        return {
            "plugins": [
                MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu", init_scale=256.0))
            ]
        }
    return {"precision": precision}


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_trains_with_manual_optimization(precision):
    """Lightning's precision plugin autocasts the step; for float16, manual_backward scales the loss and
    the optimizer step unscales it (the GradScaler's scale is then set and its step count advances)."""
    torch.manual_seed(0)
    model = tiny_model()
    g0, d0 = snapshot(model.generator), snapshot(model.discriminator)
    trainer = fit(model, steps=2, **precision_settings(precision))
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    if precision == "16-mixed":
        assert scaler is not None and scaler.get_scale() > 0
        assert trainer.precision_plugin.precision == "16-mixed"
    assert model.iteration == 2
    assert changed(g0, model.generator) and changed(d0, model.discriminator)
    assert finite(model.generator) and finite(model.discriminator)
    # master weights stay float32; only the computation is in 16 bits
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_channels_last_layout_survives_training():
    torch.manual_seed(0)
    model = tiny_model(channels_last=True)
    fit(model, steps=2)
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs if w.size(2) > 1)
    assert finite(model.generator) and finite(model.discriminator)


def test_channels_last_computes_the_same_as_the_default_layout():
    torch.manual_seed(0)
    default = tiny_model()
    nhwc = tiny_model(channels_last=True)
    nhwc.load_state_dict(default.state_dict())
    nhwc.configure_model()
    z = torch.randn(4, 100, 1, 1)
    torch.testing.assert_close(nhwc.generator(z), default.generator(z), atol=1e-5, rtol=1e-4)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(nhwc.discriminator(x), default.discriminator(x), atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_compiled_model_trains_and_keeps_checkpoint_names():
    torch.manual_seed(0)
    model = tiny_model(compile=True)
    keys = set(model.state_dict())
    g0 = snapshot(model.generator)
    fit(model, steps=2)
    assert model.generator._compiled_call_impl is not None
    assert model.discriminator._compiled_call_impl is not None
    assert set(model.state_dict()) == keys  # no "_orig_mod." prefixes: checkpoints load either way
    assert changed(g0, model.generator) and finite(model.generator)


@pytest.mark.parametrize("conditional", [False, True])
def test_training_step_does_not_synchronise_with_the_host(monkeypatch, conditional):
    """No ``.item()``/``float()``/``bool()`` of a tensor inside the step: on a GPU each would stall the
    pipeline. Logged values stay on the device until Lightning's logger reads them. Adam's own reads of its
    step counter are not counted: that counter is a CPU scalar even when training on a GPU."""
    torch.manual_seed(0)
    model = tiny_model(conditional=True, class_names=["a", "b", "c"]) if conditional else tiny_model()
    inside, calls = [], []
    training_step = model.training_step

    def step(*args, **kwargs):
        inside.append(True)
        try:
            return training_step(*args, **kwargs)
        finally:
            inside.pop()

    model.training_step = step
    for name in ("item", "__bool__", "__float__", "__int__", "tolist"):
        original = getattr(torch.Tensor, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            if inside and not any("/torch/optim/" in f.filename for f in traceback.extract_stack()):
                calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, spy)
    fit(model, steps=3)
    assert model.iteration == 3
    assert calls == []
