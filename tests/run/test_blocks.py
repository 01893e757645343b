"""Several iterations per Lightning step (model.iterations_per_step): the same training, bit for bit, as one per
step, with logging, checkpoints and grids at exactly their iterations, and a resume in the middle of a block."""

import traceback
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import dcgan_lit.run.fit as module_fit
from dcgan_lit.checkpoint.io import load_weights
from dcgan_lit.run.fit import train
from tests.checkpoint.test_resume import DETERMINISTIC, losses
from tests.helpers.model import tiny_model
from tests.model.test_module_speed import HOST_READS

# 32 images / batch 8: 4 iterations per epoch. Logs every 5 iterations, checkpoints every 3, grids every 2,
# and the guard's checks every 10: with 4 per step the blocks end at 2, 3, 4, 5, 6, 8, 9, 10, 12, ...
SCHEDULE = [
    "trainer.log_every_n_steps=5",
    "callbacks.model_checkpoint.every_n_steps=3",
    "callbacks.samples.every_n_steps=2",
    "+callbacks.blocks._target_=tests.helpers.callbacks.BlockRecorder",
]
OPTIONS = ["model.ema.decay=0.9", "model.lecam.weight=0.3", "dataset.hflip=true"]


def end_state(run: Path) -> dict:
    return load_weights(run / "checkpoints" / "last.ckpt")


def assert_same_training(a: dict, b: dict) -> None:
    assert a["global_step"] == b["global_step"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(v, b["state_dict"][k]) for k, v in a["state_dict"].items()), "state dicts differ"
    for adam, other in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        for key, values in adam["state"].items():
            assert all(torch.equal(v, other["state"][key][n]) for n, v in values.items()), (
                "Adam states differ"
            )


@pytest.mark.slow
def test_blocks_of_iterations_train_exactly_as_one_per_step_and_resume_inside_a_block(tiny_cfg, tmp_path):
    runs = {}
    for name, per_step, steps in [("one", 1, 11), ("blocks", 4, 11), ("first", 4, 6)]:
        runs[name] = tmp_path / name
        cfg = tiny_cfg(
            *DETERMINISTIC, *SCHEDULE, *OPTIONS, f"model.iterations_per_step={per_step}",
            f"trainer.max_steps={steps}", output_dir=runs[name],
        )  # fmt: skip
        train(cfg)
    runs["resumed"] = tmp_path / "resumed"
    resume = f"ckpt_path={runs['first'] / 'checkpoints' / 'last.ckpt'}"
    train(
        tiny_cfg(
            *DETERMINISTIC,
            *SCHEDULE,
            *OPTIONS,
            "model.iterations_per_step=4",
            "trainer.max_steps=11",
            resume,
            output_dir=runs["resumed"],
        )  # fmt: skip
    )
    # the blocks: at most 4 iterations, ending at every scheduled iteration and at the last (11)
    blocks = (runs["blocks"] / "blocks.txt").read_text().split()
    assert blocks == ["0-2", "2-3", "3-4", "4-5", "5-6", "6-8", "8-9", "9-10", "10-11"]
    assert (runs["one"] / "blocks.txt").read_text().split() == [f"{i}-{i + 1}" for i in range(11)]
    # resumed at 6, in the middle of the block 4-8 a straight run of 4 per step would take from 4
    assert (runs["resumed"] / "blocks.txt").read_text().split() == ["6-8", "8-9", "9-10", "10-11"]

    # the same training: logged losses at the same iterations, the same end state, bit for bit
    expected = losses(runs["one"])
    assert sorted(expected) == [4, 9]  # every 5th iteration (logged at steps 4 and 9)
    assert losses(runs["blocks"]) == expected
    assert losses(runs["resumed"]) == {9: expected[9]}
    assert_same_training(end_state(runs["one"]), end_state(runs["blocks"]))
    assert_same_training(end_state(runs["one"]), end_state(runs["resumed"]))
    # checkpoints and grids at exactly their iterations
    for run in ("one", "blocks"):
        saved = (runs[run] / "saved.txt").read_text().split()
        grids = sorted(p.name for p in (runs[run] / "samples").glob("step_*.png"))
        assert saved == ["3", "4", "6", "8", "9", "11"]  # every 3, each epoch's end (4 iterations), the last
        assert grids == [f"step_{i:07d}.png" for i in (2, 4, 6, 8, 10)]


@pytest.mark.slow
def test_under_bf16_autocast_blocks_and_several_d_steps_use_the_weights_just_updated(tiny_cfg, tmp_path):
    """Autocast caches its low-precision copies of the weights until its context exits; the weights change
    inside one step (every optimizer step), so a stale copy would train the next D step, or the next iteration
    of a block, on the weights of before. Blocks of 4 end where steps of 1 do; a cache kept would differ."""
    ends = []
    for per_step in (1, 4):
        run = tmp_path / f"bf16-{per_step}"
        cfg = tiny_cfg(
            *DETERMINISTIC, "trainer.precision=bf16-mixed", "model.d_steps=2", "trainer.log_every_n_steps=50",
            f"model.iterations_per_step={per_step}", "trainer.max_steps=6", output_dir=run,
        )  # fmt: skip
        train(cfg)
        ends.append(end_state(run))
    assert_same_training(*ends)


class Zeroing(torch.optim.Optimizer):
    """A "step" that sets every parameter to 0: what the next forward sees is plain."""

    def __init__(self, params) -> None:
        super().__init__(params, {})

    @torch.no_grad()
    def step(self, closure=None) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p.zero_()


def test_under_autocast_the_second_d_step_sees_the_weights_the_first_one_set():
    """Autocast keeps low-precision copies of the weights until its context exits; a copy kept past D's first
    step would run the second on D's old weights."""
    torch.manual_seed(0)
    model = tiny_model(d_steps=2, optimizer_d=Zeroing)
    conv = next(m for m in model.discriminator.modules() if isinstance(m, torch.nn.Conv2d))
    outputs = []
    conv.register_forward_hook(lambda module, args, out: outputs.append(out.detach().clone()))
    opt_d, opt_g = model.configure_optimizers()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model.adversarial_step(torch.rand(4, 3, 32, 32) * 2 - 1, opt_d, opt_g)
    assert len(outputs) == 5  # D step 1 (real, fake), D step 2 (real, fake), G step (fake)
    assert outputs[0].abs().sum() > 0  # before the zeroing
    assert all(not out.any() for out in outputs[2:])  # after it: the zeroed weights, not a cached copy


@pytest.mark.slow
def test_lightning_backward_hooks_run_where_a_callback_overrides_them_and_train_the_same(tiny_cfg, tmp_path):
    """Without such a callback an iteration skips Lightning's wrappers (they would only dispatch hooks that do
    nothing); with one, every backward goes through them. Either way the training is the same."""
    runs = {"direct": [], "hooked": ["+callbacks.count._target_=tests.helpers.callbacks.CountBackward"]}
    for name, extra in runs.items():
        cfg = tiny_cfg(*DETERMINISTIC, *extra, "model.iterations_per_step=4", "trainer.log_every_n_steps=50",
                       "trainer.max_steps=5", output_dir=tmp_path / name)  # fmt: skip
        train(cfg)
    assert (tmp_path / "hooked" / "backward.txt").read_text() == str(5 * 2)  # a D and a G backward each
    assert_same_training(end_state(tmp_path / "direct"), end_state(tmp_path / "hooked"))


class HostReads(TorchDispatchMode):
    """The iteration training had reached at each read of a tensor's value back to the host."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model, self.at = model, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if str(func) in HOST_READS and not any(
            "/torch/optim/" in f.filename for f in traceback.extract_stack()
        ):
            self.at.append(self.model.iteration)
        return func(*args, **(kwargs or {}))


@pytest.mark.slow
def test_a_whole_fit_with_the_default_callbacks_reads_values_back_only_when_scheduled(tiny_cfg, tmp_path):
    """Logging and the divergence guard's checks every 20 iterations, epochs of 16, blocks of up to 10: the blocks
    ending at 10 and 30 read nothing back; values are read at 20 and 40, at the epochs' ends (the sample grids)
    and around the start."""
    cfg = tiny_cfg(
        "trainer.log_every_n_steps=20", "callbacks.divergence.check_every_n_steps=20",
        "callbacks.divergence.collapse_every_n_steps=0", "callbacks.samples.every_n_steps=0",
        "callbacks.model_checkpoint.every_n_steps=0", "callbacks.model_checkpoint.save_last=false",
        "dataset.batch_size=2", "trainer.max_steps=40", output_dir=tmp_path / "run",
    )  # fmt: skip
    reads = {}

    class Watch(L.Callback):
        def on_train_start(self, trainer, pl_module) -> None:
            reads["mode"] = HostReads(pl_module)
            reads["mode"].__enter__()

        def on_train_end(self, trainer, pl_module) -> None:
            reads["mode"].__exit__(None, None, None)

    with pytest.MonkeyPatch.context() as patch:
        original = module_fit.instantiate_callbacks
        patch.setattr(module_fit, "instantiate_callbacks", lambda conf: [Watch(), *original(conf)])
        train(cfg)
    at = set(reads["mode"].at)
    assert at and at <= {0, 16, 20, 32, 40}, sorted(at)
