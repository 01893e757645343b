"""A training iteration captured once as a CUDA graph and replayed for every later one (``model.cuda_graph``).

At the paper's 32x32 and batch 128 an iteration is a few hundred small kernels that a GPU runs faster than
Python can launch them; a CUDA graph launches them all at once. What is captured is the model's own
:meth:`~dcgan_lit.model.module.DCGAN.train_iteration` (the batch gathered from the images on the device and
flipped, the D steps, the G step, the EMA, the metrics, the divergence guard's sums), so the step is still
written once. It runs over fixed tensors: each iteration's batch indices are copied into one index buffer
before a replay; z, the flips and DiffAugment come from the default CUDA generator, which graphs replay safely;
Adam is ``capturable`` (its step counts on the device).

The first ``warmup`` iterations of a fit (a resumed one too: everything after the checkpoint and RNG states are
restored) run eagerly on a side stream, as CUDA graphs require, and train like any other; the capture follows,
then replays. Lightning still counts every optimizer step (``global_step``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from dcgan_lit.batches import Block

log = logging.getLogger(__name__)

# eager iterations before the capture (cuDNN's choices, Adam's state, the allocator's pools settle)
WARMUP_ITERATIONS = 3

# precisions a graph runs under: no loss scaler (16-mixed's unscale and skipped steps are host decisions)
GRAPH_PRECISIONS = ("32-true", "bf16-mixed", "bf16-true")


def graph_refusal(
    device: torch.device,
    precision: str,
    world_size: int,
    adaptive: bool,
    block: Block,
    compiled: bool = False,
) -> str | None:
    """Why this run's iterations cannot be one CUDA graph (the run then trains eagerly), or None."""
    if device.type != "cuda":
        return f"training on {device.type}, not on a CUDA device"
    if world_size > 1:
        return "more than one device (DDP's gradient reduction is not captured)"
    if precision not in GRAPH_PRECISIONS:
        return f"trainer.precision={precision} (a graph runs under {', '.join(GRAPH_PRECISIONS)})"
    if adaptive:
        return "model.ada adjusts its probability on the host every few iterations"
    if compiled:
        return "model.compile=true (torch.compile's code is not captured here; use one or the other)"
    if block.indices is None:
        return "the images are not on the device (dataset.on_device=true, or auto with room for them)"
    if block.batch_size is None or block.rows % block.batch_size:
        return "the batches differ in size (a graph needs one shape: dataset.drop_last=true)"
    return None


class CudaGraph:
    """One captured CUDA graph (torch.cuda.CUDAGraph): ``capture(fn)`` records ``fn``'s kernels and returns its
    outputs (the tensors every replay writes), ``replay()`` runs them."""

    def __init__(self) -> None:
        self.graph = torch.cuda.CUDAGraph()

    def capture(self, fn: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        torch.cuda.synchronize()
        with torch.cuda.graph(self.graph):
            return fn()

    def replay(self) -> None:
        self.graph.replay()


class SideStream:
    """Runs work on a side stream, ordered after and before the current stream's (warm-up before a capture)."""

    def __init__(self) -> None:
        self.stream = torch.cuda.Stream()

    def run(self, fn: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            out = fn()
        torch.cuda.current_stream().wait_stream(self.stream)
        return out


class IterationGraph:
    """Runs a module's training iterations: ``warmup`` eagerly on a side stream, then one captured graph
    replayed. ``iteration(block, picked, opt_d, opt_g)`` is the module's iteration over raw optimizers;
    ``count_steps()`` (given per block: Lightning's counters) records one iteration's optimizer steps."""

    graph_type: type = CudaGraph  # stand-ins run the same mechanics on a CPU (tests)
    side_stream_type: type = SideStream

    def __init__(
        self, iteration: Callable[..., dict[str, torch.Tensor]], warmup: int = WARMUP_ITERATIONS
    ) -> None:
        self.iteration = iteration
        self.warmup_left = warmup
        self.graph = None
        self.indices: torch.Tensor | None = (
            None  # the captured iteration's batch indices (copied in per replay)
        )
        self.images: torch.Tensor | None = None
        self.outputs: dict[str, torch.Tensor] = {}
        self.side = self.side_stream_type()

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def run(self, block: Block, opt_d, opt_g, count_steps: Callable[[], None]) -> dict[str, torch.Tensor]:
        """The block's iterations; returns the last one's metrics (copies: a replay overwrites its outputs)."""
        metrics: dict[str, torch.Tensor] = {}
        for i in range(block.iterations):
            if self.graph is None and self.warmup_left > 0:
                picked = block.picked(i)
                metrics = self.side.run(lambda: self.iteration(block, picked, opt_d, opt_g))  # noqa: B023
                self.warmup_left -= 1
            else:
                if self.graph is None:
                    self.capture(block, opt_d, opt_g)
                if block.images is not self.images:
                    raise RuntimeError("the images on the device changed after the CUDA graph was captured")
                self.indices.copy_(block.picked(i))
                self.graph.replay()
                metrics = self.outputs
            count_steps()
        return {name: value.clone() for name, value in metrics.items()}

    def capture(self, block: Block, opt_d, opt_g) -> None:
        """Records one iteration over a fixed index buffer; nothing runs (and nothing trains) until a replay."""
        self.images = block.images
        self.indices = block.picked(0).clone()
        self.graph = self.graph_type()
        self.outputs = self.graph.capture(lambda: self.iteration(block, self.indices, opt_d, opt_g))
        log.info("CUDA graph: one training iteration captured; it is replayed from now on")
