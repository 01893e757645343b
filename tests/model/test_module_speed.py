"""DCGAN's speed options: mixed precision, channels_last, torch.compile, no host sync in the step."""

import os
import traceback

import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from dcgan_lit.batches import Block
from tests.helpers.model import changed, fit, snapshot, tiny_model
from tests.helpers.run_if import RunIf


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


@pytest.mark.parametrize(("device", "channels_last"), [("cuda:0", False), ("mps", False), ("cpu", True)])
def test_compile_keeps_the_layout_that_compiles_on_each_device(device, channels_last, caplog):
    """torch's inductor fails on channels_last transposed convolutions' backward on CUDA and MPS (it compiles
    them on a CPU): there a compiled model stays NCHW, with one warning line saying why."""
    model = tiny_model(channels_last=True, compile=True)
    model._device = torch.device(device)  # where Lightning would have put it; compiling is lazy, nothing runs
    model.configure_model()
    weight = (
        model.generator.net[0].weight
        if hasattr(model.generator, "net")
        else next(p for p in model.generator.parameters() if p.dim() == 4)
    )
    assert weight.is_contiguous(memory_format=torch.channels_last) == channels_last
    warned = [r.getMessage() for r in caplog.records if "stay in the NCHW layout" in r.getMessage()]
    assert len(warned) == (0 if channels_last else 1)


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


# Reads of a tensor's value back to the host (``.item()``, ``float()``, ``if tensor:``, ``torch.equal``): on a GPU
# each one stalls the pipeline, and none may be captured in a CUDA graph.
HOST_READS = {
    "aten._local_scalar_dense.default",
    "aten.is_nonzero.default",
    "aten.item.default",
    "aten.equal.default",
}


class Recorder(TorchDispatchMode):
    """Every operation dispatched inside the block, forward and backward: its name and its tensors' shapes,
    dtypes and strides; and the host reads among them, except the optimizers' (Adam's step counter is a CPU
    scalar even when training on a GPU: reading it is no device sync)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple] = []
        self.host_reads: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if name in HOST_READS and not any("/torch/optim/" in f.filename for f in traceback.extract_stack()):
            self.host_reads.append(name)
        tensors = [a for a in tree_leaves((args, kwargs or {})) if isinstance(a, torch.Tensor)]
        self.ops.append((name, *((tuple(t.shape), t.dtype, t.stride()) for t in tensors)))
        return func(*args, **(kwargs or {}))


def record_iterations(model, steps: int) -> list[Recorder]:
    """Trains ``steps`` iterations; one Recorder per iteration over what a CUDA graph captures: the model's
    ``train_iteration`` (the batch taken and flipped, the D-then-G step, the EMA update, the metrics, the
    observers), not Lightning's logging around it."""
    recorders: list[Recorder] = []
    train_iteration = model.train_iteration

    def iteration(*args, **kwargs):
        recorders.append(Recorder())
        with recorders[-1]:
            return train_iteration(*args, **kwargs)

    model.train_iteration = iteration
    fit(model, steps=steps)
    assert model.iteration == steps == len(recorders)
    return recorders


@pytest.mark.parametrize("conditional", [False, True])
def test_an_iteration_reads_nothing_back_to_the_host(conditional):
    """Not in the D-then-G step, not in the EMA update (its decay is computed on the device)."""
    torch.manual_seed(0)
    ema, lecam = {"decay": 0.99, "start_step": 2, "warmup": True}, {"weight": 0.3, "decay": 0.99}
    kwargs = {"conditional": True, "class_names": ["a", "b", "c"]} if conditional else {}
    recorders = record_iterations(tiny_model(ema=ema, lecam=lecam, **kwargs), steps=4)
    assert all(r.ops for r in recorders)
    assert [r.host_reads for r in recorders] == [[]] * 4


def test_every_iteration_after_the_first_runs_the_same_operations_on_the_same_shapes():
    """What a CUDA graph needs: the same operations on tensors of the same shapes, dtypes and strides at every
    iteration after warm-up (the first is Adam's state being created), across the EMA's phases: following G
    before ``start_step``, then warming up."""
    torch.manual_seed(0)
    ema, lecam = {"decay": 0.99, "start_step": 3, "warmup": True}, {"weight": 0.3, "decay": 0.99}
    recorders = record_iterations(tiny_model(ema=ema, lecam=lecam), steps=6)
    first, *rest = [r.ops for r in recorders]
    assert first != rest[0]  # the optimizers' state is made on their first step
    assert all(ops == rest[0] for ops in rest[1:])


@RunIf(cuda=True)
def test_a_compiled_model_trains_on_cuda_in_the_layout_that_compiles():
    """On CUDA, torch.compile of channels_last transposed convolutions fails in the backward (pytorch issue
    171622): a compiled model keeps NCHW and trains."""
    torch.manual_seed(0)
    model = tiny_model(channels_last=True, compile=True)
    fit(model, steps=2, accelerator="gpu", devices=1)
    weight = next(p for p in model.generator.parameters() if p.dim() == 4 and p.size(2) > 1)
    assert weight.is_cuda and not weight.is_contiguous(memory_format=torch.channels_last)
    assert finite(model.generator) and finite(model.discriminator)


@RunIf(cuda=True)
def test_an_iteration_on_cuda_makes_no_device_sync():
    """``torch.cuda.set_sync_debug_mode("error")`` turns any synchronising call inside the D-then-G step and the
    EMA update into an error."""
    torch.manual_seed(0)
    model = tiny_model(ema={"decay": 0.99, "start_step": 1, "warmup": True})
    adversarial_step, update_generator_ema = model.adversarial_step, model.update_generator_ema

    def strict(function):
        def run(*args, **kwargs):
            torch.cuda.set_sync_debug_mode("error")
            try:
                return function(*args, **kwargs)
            finally:
                torch.cuda.set_sync_debug_mode("default")

        return run

    model.adversarial_step, model.update_generator_ema = (
        strict(adversarial_step),
        strict(update_generator_ema),
    )
    fit(model, steps=3, accelerator="gpu", devices=1)
    assert model.iteration == 3


def test_after_the_first_iteration_every_persistent_tensor_keeps_its_storage():
    """A CUDA graph replays reads and writes at fixed addresses: the weights, buffers (the EMA, LeCam's anchors,
    the iteration count) and the optimizers' states must be updated in place, never replaced."""
    torch.manual_seed(0)
    ema, lecam = {"decay": 0.99, "start_step": 2, "warmup": True}, {"weight": 0.3, "decay": 0.99}
    model = tiny_model(ema=ema, lecam=lecam)
    opt_d, opt_g = model.configure_optimizers()
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)
    block = Block(images, torch.randperm(32), None, 4, hflip=True)

    def storages() -> dict[str, int]:
        tensors = {f"model.{k}": v for k, v in [*model.named_parameters(), *model.named_buffers()]}
        for name, optimizer in (("d", opt_d), ("g", opt_g)):
            for i, state in enumerate(optimizer.state.values()):
                tensors.update({f"adam_{name}.{i}.{k}": v for k, v in state.items() if torch.is_tensor(v)})
        return {name: tensor.data_ptr() for name, tensor in tensors.items()}

    model.train_iteration(block, block.picked(0), opt_d, opt_g)  # Adam's state is made on its first step
    first = storages()
    assert any(name.startswith("adam_d.") for name in first) and "model.device_iteration" in first
    for i in range(1, 8):  # through the EMA's start (2) into its warm-up
        model.train_iteration(block, block.picked(i), opt_d, opt_g)
        assert storages() == first, i


@pytest.mark.parametrize(
    ("set_to", "loads", "kept"), [("1", False, False), ("1", True, True), (None, False, None)]
)
def test_the_nvml_check_is_dropped_only_where_nvml_cannot_load(monkeypatch, set_to, loads, kept):
    """Lightning's PYTORCH_NVML_BASED_CUDA_CHECK=1 makes every Adam step try to load NVML where it is absent."""
    from dcgan_lit.model import module

    if set_to is None:
        monkeypatch.delenv(module.NVML_CHECK, raising=False)
    else:
        monkeypatch.setenv(module.NVML_CHECK, set_to)

    def cdll(name):
        if not loads:
            raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(module.ctypes, "CDLL", cdll)
    tiny_model().configure_optimizers()
    assert (os.environ.get(module.NVML_CHECK) == "1") is bool(kept)
    assert (module.NVML_CHECK in os.environ) is bool(kept)
