"""The CUDA graph's step against the eager step, on a GPU (benchmarks/gpu_check.sh runs it; docs/gpu.md):

    python -m benchmarks.graph_check [out=graph.json] [sizes=[32,64]] [precisions=[32-true,bf16-mixed]]

For each size and precision, on synthetic uint8 images kept on the device, batch 128:
  eager      DCGAN.train_iteration in a plain loop (the batch gathered and flipped, D then G, the metrics);
  graph      the same iteration captured once (model.graph.IterationGraph) and replayed;
timed with CUDA events over ``windows`` windows of ``window`` iterations after a warm-up (the median window),
with the kernels one iteration launches (torch.profiler), the host syncs of ``window`` replays
(torch.cuda.set_sync_debug_mode), and how far the weights of a graphed run are from an eager one's after
``compare`` iterations from the same state and seed. Results: ``out`` (JSON) and a table.

On a machine without CUDA the same mechanics run with the CPU stand-ins of the tests (a "replay" runs the
iteration again; wall-clock windows; no kernels), so the script itself is tested without a GPU.
"""

from __future__ import annotations

import copy
import json
import statistics
import time
import warnings
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from dcgan_lit.batches import Block
from dcgan_lit.errors import exit_on_user_error
from dcgan_lit.metrics.cost import synchronize
from dcgan_lit.model import graph
from dcgan_lit.model.module import DCGAN


class Rerun:
    """A CPU stand-in for a CUDA graph: a replay runs the captured function again (on the index buffer as it is
    then). The tests run graph mode's mechanics with it too."""

    def capture(self, fn):
        self.fn, self.outputs = fn, {}
        return self.outputs

    def replay(self):
        self.outputs.update(self.fn())


class SameStream:
    """A CPU stand-in for the side stream: the work runs where it is."""

    def run(self, fn):
        return fn()


class Windows:
    """Per-iteration times of windows of iterations: CUDA events on a GPU, the wall clock elsewhere."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.times = device, []

    def time(self, fn, iterations: int) -> None:
        if self.device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iterations):
                fn()
            end.record()
            end.synchronize()
            self.times.append(start.elapsed_time(end) / 1000 / iterations)
        else:
            begin = time.perf_counter()
            for _ in range(iterations):
                fn()
            self.times.append((time.perf_counter() - begin) / iterations)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def build(size: int, batch: int, device: torch.device, seed: int, widths: int | None) -> tuple:
    """A DCGAN of ``size`` (the paper's widths unless ``widths``), its capturable Adams, and a block of
    synthetic uint8 images resident on the device with one batch of indices per iteration."""
    torch.manual_seed(seed)
    kwargs = {"ngf": widths, "ndf": widths} if widths else {}
    model = DCGAN(image_size=size, channels=3, cuda_graph=True, **kwargs).to(device)
    model.configure_model()
    capturable = {"capturable": True} if device.type == "cuda" else {}
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999), **capturable)
    opt_g = torch.optim.Adam(model.generator.parameters(), lr=2e-4, betas=(0.5, 0.999), **capturable)
    images = torch.randint(0, 256, (batch * 16, 3, size, size), dtype=torch.uint8, device=device)
    order = torch.randperm(images.size(0), generator=torch.Generator().manual_seed(seed)).to(device)
    block = Block(images, order[: batch * 8], None, batch, hflip=True)
    return model, opt_d, opt_g, block


def autocast(precision: str, device: torch.device):
    dtype = torch.bfloat16 if precision.startswith("bf16") else None
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def kernels_per_iteration(fn, device: torch.device) -> int | None:
    """CUDA kernels one call of ``fn`` launches (None without CUDA)."""
    if device.type != "cuda":
        return None
    synchronize(device)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as profile:
        fn()
        synchronize(device)
    return sum(1 for event in profile.events() if event.device_type == torch.autograd.DeviceType.CUDA)


def host_syncs(fn, iterations: int, device: torch.device) -> int | None:
    """Host-device synchronisations over ``iterations`` calls (torch.cuda.set_sync_debug_mode; None on a CPU)."""
    if device.type != "cuda":
        return None
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(iterations):
                fn()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    return sum("synchroniz" in str(w.message) for w in caught)


def measure(cfg: DictConfig, size: int, precision: str, device: torch.device) -> dict:
    """Eager against graphed iterations of one size and precision."""
    model, opt_d, opt_g, block = build(size, cfg.batch_size, device, cfg.seed, cfg.widths)
    twin = copy.deepcopy((model, opt_d, opt_g))
    iterate = graph.IterationGraph(lambda b, picked, d, g: model.train_iteration(b, picked, d, g))
    step = {"i": 0}

    def eager_once(m=model, d=opt_d, g=opt_g) -> None:
        with autocast(precision, device):
            m.train_iteration(block, block.picked(step["i"] % block.iterations), d, g)
        step["i"] += 1

    def graph_once() -> None:
        one = block._replace(indices=block.picked(step["i"] % block.iterations))
        with autocast(precision, device):
            iterate.run(one, opt_d, opt_g, lambda: None)
        step["i"] += 1

    # exactness first, from one state and seed: `compare` eager iterations of the twin against the graph's
    torch.manual_seed(cfg.seed + 1)
    for _ in range(cfg.compare):
        graph_once()
    step["i"] = 0
    torch.manual_seed(cfg.seed + 1)
    for _ in range(cfg.compare):
        eager_once(*twin)
    differences = [
        (a.float() - b.float()).abs().max().item() / max(b.float().abs().max().item(), 1e-12)
        for a, b in zip(model.state_dict().values(), twin[0].state_dict().values(), strict=True)
        if a.is_floating_point()
    ]
    # then speed: windows of each, alternating
    eager_windows, graph_windows = Windows(device), Windows(device)
    for _ in range(cfg.windows):
        eager_windows.time(lambda: eager_once(*twin), cfg.window)
        graph_windows.time(graph_once, cfg.window)
    eager_s, graph_s = eager_windows.median, graph_windows.median
    return {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else "cpu (stand-ins, no graph)",
        "size": size,
        "batch": cfg.batch_size,
        "precision": precision,
        "eager_img_s": cfg.batch_size / eager_s,
        "graph_img_s": cfg.batch_size / graph_s,
        "speedup": eager_s / graph_s,
        "eager_ms": eager_s * 1000,
        "graph_ms": graph_s * 1000,
        "kernels_eager": kernels_per_iteration(lambda: eager_once(*twin), device),
        "kernels_graph_replay": kernels_per_iteration(graph_once, device),
        "syncs_in_replays": host_syncs(graph_once, cfg.window, device),
        "replays": cfg.window,
        "compared_iterations": cfg.compare,
        "max_relative_weight_difference": max(differences),
        "windows": {"eager_s": eager_windows.times, "graph_s": graph_windows.times},
    }


def check(cfg: DictConfig) -> list[dict]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda":  # the mechanics alone
        graph.IterationGraph.graph_type, graph.IterationGraph.side_stream_type = Rerun, SameStream
    rows = [measure(cfg, size, precision, device) for size in cfg.sizes for precision in cfg.precisions]
    table = Table(
        title=f"one training iteration, eager vs CUDA graph (batch {cfg.batch_size}, median window)"
    )
    for column in ("device", "size", "precision", "eager img/s", "graph img/s", "speedup", "kernels", "syncs",
                   f"weights vs eager ({cfg.compare} it)"):  # fmt: skip
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            r["device"], str(r["size"]), r["precision"], f"{r['eager_img_s']:.0f}", f"{r['graph_img_s']:.0f}",
            f"{r['speedup']:.2f}x", str(r["kernels_eager"]), str(r["syncs_in_replays"]),
            f"{r['max_relative_weight_difference']:.1e}",
        )  # fmt: skip
    Console(width=160).print(table)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(f"wrote {out}")
    return rows


@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmarks/graph_check")
def main(cfg: DictConfig) -> None:
    exit_on_user_error(lambda: check(cfg))


if __name__ == "__main__":
    main()
