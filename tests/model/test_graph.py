"""model.cuda_graph: where a graph applies (one line where not), and its mechanics run on a CPU with stand-ins for
the CUDA graph and the side stream (warm-up, capture over an index buffer, replays, Lightning's step count, a
resume), training exactly as eager; on a GPU, a real graph against eager."""

from pathlib import Path

import pytest
import torch

import dcgan_lit.model.module as module
from benchmarks.graph_check import Rerun, SameStream  # the CPU stand-ins for a CUDA graph and a side stream
from dcgan_lit.batches import Block
from dcgan_lit.model.graph import IterationGraph, graph_refusal
from dcgan_lit.run.fit import train
from tests.checkpoint.test_resume import DETERMINISTIC, losses
from tests.helpers.run_if import RunIf
from tests.run.test_blocks import assert_same_training, end_state

CUDA = torch.device("cuda")
RESIDENT = Block(torch.zeros(8, 3, 4, 4, dtype=torch.uint8), torch.arange(8), None, 4, False)


def test_a_compiled_model_is_not_captured():
    assert "model.compile=true" in graph_refusal(CUDA, "32-true", 1, False, RESIDENT, compiled=True)


@pytest.mark.parametrize(
    ("device", "precision", "world", "ada", "block", "reason"),
    [
        (CUDA, "32-true", 1, False, RESIDENT, None),
        (CUDA, "bf16-mixed", 1, False, RESIDENT, None),
        (torch.device("cpu"), "32-true", 1, False, RESIDENT, "training on cpu, not on a CUDA device"),
        (CUDA, "32-true", 2, False, RESIDENT, "more than one device"),
        (CUDA, "16-mixed", 1, False, RESIDENT, "trainer.precision=16-mixed"),
        (CUDA, "32-true", 1, True, RESIDENT, "model.ada adjusts its probability on the host"),
        (CUDA, "32-true", 1, False, RESIDENT._replace(indices=None), "the images are not on the device"),
        (CUDA, "32-true", 1, False, RESIDENT._replace(indices=torch.arange(6)), "the batches differ in size"),
    ],
)
def test_a_graph_applies_only_where_it_can_and_says_why_not(device, precision, world, ada, block, reason):
    found = graph_refusal(device, precision, world, ada, block)
    assert found == reason if reason is None else reason in found


@pytest.fixture
def graph_on_cpu(monkeypatch):
    monkeypatch.setattr(IterationGraph, "graph_type", Rerun)
    monkeypatch.setattr(IterationGraph, "side_stream_type", SameStream)
    monkeypatch.setattr(module, "graph_refusal", lambda *args, **kwargs: None)
    captures = []
    original = IterationGraph.capture
    monkeypatch.setattr(IterationGraph, "capture", lambda self, *a: captures.append(1) or original(self, *a))
    return captures


SETTINGS = [
    *DETERMINISTIC,
    "dataset.on_device=true",
    "model.ema.decay=0.9",
    "trainer.log_every_n_steps=1",
    "model.iterations_per_step=4",
]


@pytest.mark.slow
def test_graph_mode_trains_exactly_as_eager_across_a_resume_and_counts_every_step(
    graph_on_cpu, tiny_cfg, tmp_path
):
    runs: dict[str, Path] = {}
    for name, graph, steps in [("eager", False, 11), ("graph", True, 11), ("first", True, 6)]:
        runs[name] = tmp_path / name
        train(
            tiny_cfg(
                *SETTINGS, f"model.cuda_graph={graph}", f"trainer.max_steps={steps}", output_dir=runs[name]
            )
        )
    assert len(graph_on_cpu) == 2  # one capture per fit, after its 3 warm-up iterations
    runs["resumed"] = tmp_path / "resumed"
    resume = f"ckpt_path={runs['first'] / 'checkpoints' / 'last.ckpt'}"
    train(
        tiny_cfg(
            *SETTINGS, "model.cuda_graph=true", "trainer.max_steps=11", resume, output_dir=runs["resumed"]
        )
    )
    assert len(graph_on_cpu) == 3
    expected = losses(runs["eager"])
    assert sorted(expected) == list(range(11))
    assert losses(runs["graph"]) == expected  # every iteration's metrics, replayed or not
    assert losses(runs["resumed"]) == {i: expected[i] for i in range(6, 11)}
    for run in ("graph", "resumed"):
        assert_same_training(end_state(runs["eager"]), end_state(runs[run]))  # global_step included


@pytest.mark.slow
def test_where_a_graph_does_not_apply_the_run_says_so_once_and_trains_eagerly(tiny_cfg, tmp_path, caplog):
    train(tiny_cfg(*SETTINGS, "model.cuda_graph=true", "trainer.max_steps=3", output_dir=tmp_path / "run"))
    warnings = [r.getMessage() for r in caplog.records if "model.cuda_graph=true" in r.getMessage()]
    assert warnings == ["model.cuda_graph=true, but training on cpu, not on a CUDA device: training eagerly"]


@RunIf(cuda=True)
def test_on_a_gpu_replays_match_eager_training(tiny_cfg, tmp_path):
    ends = []
    for graph in (False, True):
        run = tmp_path / f"graph-{graph}"
        cfg = tiny_cfg(
            *SETTINGS, "accelerator=gpu", f"model.cuda_graph={graph}", "trainer.max_steps=20", output_dir=run
        )
        train(cfg)
        ends.append(end_state(run)["state_dict"])
    for key, value in ends[0].items():
        if value.is_floating_point():
            assert torch.allclose(value, ends[1][key], rtol=1e-3, atol=1e-4), key


@RunIf(cuda=True)
def test_on_a_gpu_a_resumed_graph_run_matches_a_straight_one(tiny_cfg, tmp_path):
    on_gpu = [*SETTINGS, "accelerator=gpu", "model.cuda_graph=true"]
    train(tiny_cfg(*on_gpu, "trainer.max_steps=20", output_dir=tmp_path / "straight"))
    train(tiny_cfg(*on_gpu, "trainer.max_steps=10", output_dir=tmp_path / "first"))
    resume = f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}"
    train(tiny_cfg(*on_gpu, "trainer.max_steps=20", resume, output_dir=tmp_path / "resumed"))
    straight, resumed = (end_state(tmp_path / run) for run in ("straight", "resumed"))
    assert straight["global_step"] == resumed["global_step"] == 20 * 2
    for key, value in straight["state_dict"].items():
        if value.is_floating_point():
            assert torch.allclose(value, resumed["state_dict"][key], rtol=1e-3, atol=1e-4), key
