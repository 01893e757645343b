"""Training throughput: dcgan-lit's real training path against the classic PyTorch DCGAN loop.

    python -m benchmarks.speed                       # sizes 32, 64, 128 on the cat faces, batch 128
    python -m benchmarks.speed sizes=[64] data=synthetic iterations=20

For each size it times, on the same model, batch and device:
  ours       Trainer + DCGAN LightningModule + datamodule, instantiated from conf/train.yaml as train.py does,
             as a user runs it (the default callbacks but FID, which is timed by the quality benchmark, and a
             CSV logger) and with callbacks and loggers off;
  reference  the PyTorch DCGAN example's loop: torchvision ImageFolder + DataLoader (2 workers), D then G;
  bare       ours' own D-then-G step (DCGAN.adversarial_step) in a plain loop over batches on the device.
ours and bare are measured ``rounds`` times, alternating, in this one process (the medians over rounds are
reported, so a noisy machine slows all three alike). Reported: images/s (per-iteration medians after warm-up;
a training step may run several iterations, model.iterations_per_step), ours/reference, ours' time per
iteration over the bare step's (the framework's cost: 1.00 is none), model FLOPs per image (torch's flop counter)
and the fraction of a matmul peak measured in the same run. Results are printed as a table and written to
bench.json in the run folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import statistics
import time
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra import compose
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from benchmarks import classic
from benchmarks.memory import cache_times, training_peak_rss
from dcgan_lit.api import pick_device
from dcgan_lit.errors import UserError, exit_on_user_error
from dcgan_lit.metrics.cost import synchronize
from dcgan_lit.model.module import DCGAN
from dcgan_lit.run.fit import accelerator_choice, build_trainer
from dcgan_lit.run.instantiate import instantiate_callbacks, instantiate_loggers

log = logging.getLogger(__name__)


def images_per_second(durations: list[float], batch_size: int) -> float:
    return batch_size / statistics.median(durations)


def matmul_peak_flops(
    device: torch.device, n: int = 2048, repeats: int = 10, dtype: torch.dtype = torch.float32
) -> float:
    """Measured matmul FLOP/s on this device in ``dtype``: the 'hardware limit' the fractions refer to.

    On a GPU the product is 8192-wide (a 2048 one leaves an H100/H200 far from its peak).
    """
    if device.type == "cuda":
        n = max(n, 8192)
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def precision_dtype(precision: str) -> torch.dtype:
    """The compute dtype of Lightning's ``precision`` (autocast's, and the matmul peak's it is measured against)."""
    if precision.startswith("bf16"):
        return torch.bfloat16
    if precision.startswith("16"):
        return torch.float16
    return torch.float32


# --------------------------------------------------------------------------------------------------
# (a) ours: the framework's training path
# --------------------------------------------------------------------------------------------------
def clocks() -> tuple[float, float]:
    """(wall time, this process's CPU time): on a shared machine the CPU time is what the work cost, the wall
    time also what the neighbours took."""
    return time.perf_counter(), time.process_time()


class IterationTimer(L.Callback):
    """Time per iteration of each training step (one or more iterations), from the end of the step before (so
    the data and Lightning's loop are included) to its own end; the first step is only the starting mark."""

    def __init__(self) -> None:
        self.steps: list[tuple[float, int]] = []  # (wall seconds, iterations) of each timed step
        self.cpu_steps: list[tuple[float, int]] = []  # (CPU seconds, iterations)
        self._last: tuple[float, float, int] | None = (
            None  # (wall, CPU, iteration) at the end of the step before
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        synchronize(pl_module.device)
        wall, cpu = clocks()
        if self._last is not None:
            iterations = pl_module.iteration - self._last[2]
            self.steps.append((wall - self._last[0], iterations))
            self.cpu_steps.append((cpu - self._last[1], iterations))
        self._last = (wall, cpu, pl_module.iteration)

    def per_iteration(self, warmup: int, cpu: bool = False) -> list[float]:
        """Seconds per iteration of each step after the first ``warmup`` iterations (wall, or CPU time)."""
        seen, durations = 0, []
        for seconds, iterations in self.cpu_steps if cpu else self.steps:
            if seen >= warmup and iterations > 0:
                durations.append(seconds / iterations)
            seen += iterations
        return durations


# what ours runs with: a user's run (FID aside), or callbacks and loggers off
AS_A_USER = ["logger=csv", "metrics=none"]
BARE_FRAMEWORK = ["logger=none", "callbacks=none"]


def train_config(cfg: DictConfig, size: int, user: bool = False) -> DictConfig:
    """conf/train.yaml composed for this benchmark: model size, data, batch; a user's callbacks and a CSV logger
    (``user``), or none."""
    if cfg.data == "catfaces":
        dataset = ["dataset=catfaces", f"dataset.path={cfg.data_path}"]
    else:  # SyntheticDataModule fills the set; the folder is never read
        dataset = ["dataset=imagefolder", "dataset.path=synthetic"]
    run_dir = Path(cfg.paths.output_dir) / f"ours-{size}px-{'user' if user else 'off'}"
    overrides = [
        f"model=dcgan{size}",
        *dataset,
        f"dataset.batch_size={cfg.batch_size}",
        *(AS_A_USER if user else BARE_FRAMEWORK),
        f"paths.output_dir={run_dir}",
        f"trainer.precision={cfg.precision}",
        f"accelerator={accelerator_choice(pick_device(cfg.device))}",
        *cfg.train_overrides,
    ]
    return compose(config_name="train", overrides=overrides)


class SyntheticDataModule(L.LightningDataModule):
    """Random uint8 images through the same batch path as the real datamodules."""

    def __init__(self, real: L.LightningDataModule, count: int) -> None:
        super().__init__()
        self.real = real
        self.count = count

    def setup(self, stage: str | None = None) -> None:
        from dcgan_lit.data.datamodule import UInt8ImageDataset

        shape = (self.count, self.real.channels, self.real.image_size, self.real.image_size)
        images = torch.randint(0, 256, shape, dtype=torch.uint8)
        self.real.trainer = self.trainer  # on_device=auto asks where training runs
        self.real.on_device = self.real.choose_on_device(images)
        self.real.train_set = UInt8ImageDataset(images, indices_only=self.real.on_device)

    def train_dataloader(self):
        self.real.trainer = self.trainer  # the block schedule comes from the model being trained
        return self.real.train_dataloader()

    def on_before_batch_transfer(self, batch, dataloader_idx):
        return self.real.on_before_batch_transfer(batch, dataloader_idx)

    def on_after_batch_transfer(self, batch, dataloader_idx):
        return self.real.on_after_batch_transfer(batch, dataloader_idx)


def time_ours(cfg: DictConfig, size: int, user: bool = False) -> tuple[IterationTimer, DCGAN]:
    """The timer of ours' training steps (:meth:`IterationTimer.per_iteration`), and the model trained."""
    run_cfg = train_config(cfg, size, user)
    torch.manual_seed(0)
    datamodule = instantiate(run_cfg.dataset)
    iterations = cfg.warmup + cfg.iterations
    if cfg.data == "synthetic":
        datamodule = SyntheticDataModule(datamodule, cfg.batch_size * (iterations + 2))
    model: DCGAN = instantiate(run_cfg.model)
    timer = IterationTimer()
    callbacks = [timer, *instantiate_callbacks(run_cfg.get("callbacks"))]
    plain = {} if user else {"enable_checkpointing": False, "enable_progress_bar": False}
    trainer = build_trainer(
        run_cfg,
        model,
        callbacks,
        instantiate_loggers(run_cfg.get("logger")),
        max_iterations=iterations + model.hparams.iterations_per_step,  # the first step is the starting mark
        enable_model_summary=False,
        max_epochs=-1,
        **plain,
    )
    trainer.fit(model, datamodule=datamodule)
    return timer, model


# --------------------------------------------------------------------------------------------------
# (b) reference: the classic PyTorch DCGAN example loop (benchmarks/classic.py)
# --------------------------------------------------------------------------------------------------
def reference_loader(cfg: DictConfig, size: int) -> torch.utils.data.DataLoader:
    """The example's ImageFolder decoding files every step (catfaces), or random floats (synthetic)."""
    if cfg.data == "catfaces":
        dataset = classic.image_folder(cfg.data_path, size)
    else:
        dataset = classic.synthetic(cfg.batch_size * (cfg.warmup + cfg.iterations + 2), size)
    return classic.loader(dataset, cfg.batch_size, cfg.reference_workers)


def time_reference(cfg: DictConfig, size: int, device: torch.device) -> list[float]:
    """Per-iteration times of the classic loop (:class:`benchmarks.classic.ClassicDCGAN`), data included."""
    torch.manual_seed(0)
    example = classic.ClassicDCGAN(size, device)
    durations: list[float] = []
    last = None
    for i, (data, _) in enumerate(reference_loader(cfg, size)):
        example.step(data)
        synchronize(device)
        now = time.perf_counter()
        if last is not None and i > cfg.warmup:
            durations.append(now - last)
        last = now
        if len(durations) >= cfg.iterations:
            break
    return durations


# --------------------------------------------------------------------------------------------------
# bare: ours' step without Lightning, on batches already on the device
# --------------------------------------------------------------------------------------------------
def bare_iteration(model: DCGAN, opt_d, opt_g, real: torch.Tensor) -> None:
    """ours' training step itself (:meth:`DCGAN.adversarial_step`), called without Lightning."""
    model.adversarial_step(real, opt_d, opt_g)


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast that Lightning's ``precision`` setting applies, for the bare loop."""
    dtype = precision_dtype(precision)
    return contextlib.nullcontext() if dtype == torch.float32 else torch.autocast(device.type, dtype=dtype)


def time_bare(cfg: DictConfig, size: int, device: torch.device) -> tuple[list[float], float, list[float]]:
    """Per-iteration wall times of the bare loop, model FLOPs per image of one iteration, and the per-iteration
    CPU times.

    The model is built from the same config as ours (so channels_last/compile apply to both); a 16-bit
    ``precision`` runs under the matching autocast (without a loss scaler, which only adds a few kernels).
    """
    torch.manual_seed(0)
    model: DCGAN = instantiate(train_config(cfg, size).model).to(device)
    opt_d, opt_g = model.configure_optimizers()
    batches = [torch.rand(cfg.batch_size, 3, size, size, device=device) * 2 - 1 for _ in range(2)]
    with FlopCounterMode(display=False) as counter, autocast(cfg.precision, device):
        bare_iteration(model, opt_d, opt_g, batches[0])  # counted before compiling: the flops are the same
    model.configure_model()
    durations, cpu_durations = [], []
    for i in range(cfg.warmup + cfg.iterations):
        synchronize(device)
        wall, cpu = clocks()
        with autocast(cfg.precision, device):
            bare_iteration(model, opt_d, opt_g, batches[i % 2])
        synchronize(device)
        if i >= cfg.warmup:
            end_wall, end_cpu = clocks()
            durations.append(end_wall - wall)
            cpu_durations.append(end_cpu - cpu)
    return durations, counter.get_total_flops() / cfg.batch_size, cpu_durations


def run(cfg: DictConfig) -> list[dict]:
    device = pick_device(cfg.device)
    check_data(cfg)
    dtype = precision_dtype(cfg.precision)
    peak = matmul_peak_flops(device, n=cfg.peak_size, dtype=dtype)
    log.info("%s matmul peak on %s: %.1f GFLOP/s", dtype, device, peak / 1e9)
    rows = []
    for size in cfg.sizes:
        # median seconds per iteration in each round, wall and CPU time
        rounds: dict[str, list[float]] = {
            k: [] for k in ("bare", "user", "off", "bare_cpu", "user_cpu", "off_cpu")
        }
        for _ in range(cfg.rounds):  # alternating, so that a busy moment of the machine slows all three
            bare, flops_per_image, bare_cpu = time_bare(cfg, size, device)
            rounds["bare"].append(statistics.median(bare))
            rounds["bare_cpu"].append(statistics.median(bare_cpu))
            for user, name in ((True, "user"), (False, "off")):
                timer, _ = time_ours(cfg, size, user=user)
                rounds[name].append(statistics.median(timer.per_iteration(cfg.warmup)))
                rounds[f"{name}_cpu"].append(statistics.median(timer.per_iteration(cfg.warmup, cpu=True)))
        bare_s, user_s, off_s = (statistics.median(rounds[k]) for k in ("bare", "user", "off"))
        cpu = {k: statistics.median(rounds[f"{k}_cpu"]) for k in ("bare", "user", "off")}
        reference_ips = images_per_second(time_reference(cfg, size, device), cfg.batch_size)
        ours_ips = cfg.batch_size / user_s
        rows.append(
            {
                "device": torch.cuda.get_device_name(device)
                if device.type == "cuda"
                else f"cpu x{torch.get_num_threads()}",
                "size": size,
                "batch": cfg.batch_size,
                "data": cfg.data,
                "precision": cfg.precision,
                "options": " ".join(cfg.train_overrides),
                "rounds": cfg.rounds,
                "ours_img_s": ours_ips,
                "ours_callbacks_off_img_s": cfg.batch_size / off_s,
                "reference_img_s": reference_ips,
                "ratio": ours_ips / reference_ips,
                "bare_step_img_s": cfg.batch_size / bare_s,
                "ours_vs_bare": user_s / bare_s,
                "ours_callbacks_off_vs_bare": off_s / bare_s,
                "ours_vs_bare_cpu": cpu["user"] / cpu["bare"],
                "ours_callbacks_off_vs_bare_cpu": cpu["off"] / cpu["bare"],
                "seconds_per_iteration": {k: sorted(v) for k, v in rounds.items()},
                "gflops_per_image": flops_per_image / 1e9,
                "peak_gflops": peak / 1e9,
                "peak_dtype": str(dtype).removeprefix("torch."),
                "fraction_of_peak": flops_per_image * ours_ips / peak,
            }
        )
        log.info("size %d: %s", size, rows[-1])
    return rows


def print_table(rows: list[dict]) -> None:
    table = Table(
        title="dcgan-lit training throughput (median images/s after warm-up; ours: default callbacks and a CSV "
        "logger, FID aside; x/bare: time per iteration over the bare step's)"
    )
    for column in (
        "device",
        "size",
        "batch",
        "ours",
        "callbacks off",
        "reference",
        "ratio",
        "ours/bare",
        "off/bare",
        "GFLOP/img",
        "of peak",
    ):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            r["device"],
            str(r["size"]),
            str(r["batch"]),
            f"{r['ours_img_s']:.1f}",
            f"{r['ours_callbacks_off_img_s']:.1f}",
            f"{r['reference_img_s']:.1f}",
            f"{r['ratio']:.2f}x",
            f"{r['ours_vs_bare']:.3f}",
            f"{r['ours_callbacks_off_vs_bare']:.3f}",
            f"{r['gflops_per_image']:.2f}",
            f"{r['fraction_of_peak']:.1%}",
        )
    Console(width=140).print(table)


def measure_memory(cfg: DictConfig) -> dict:
    """Cache build/reuse times and a train.py run's peak RSS at ``memory.size`` on the cat faces."""
    size, steps = cfg.memory.size, cfg.memory.steps
    result = {"size": size, **cache_times(train_config(cfg, size).dataset)}
    overrides = [
        "dataset=catfaces",
        f"dataset.path={cfg.data_path}",
        f"model=dcgan{size}",
        f"dataset.batch_size={cfg.batch_size}",
        f"trainer.max_steps={steps}",
        f"accelerator={accelerator_choice(pick_device(cfg.device))}",
        "logger=none",
        f"paths.cache_dir={cfg.paths.cache_dir}",
        f"hydra.run.dir={Path(cfg.paths.output_dir) / 'memory_run'}",
    ]
    result.update(training_peak_rss(overrides))
    result["train_command"] = "python train.py " + " ".join(overrides)
    log.info("memory: %s", result)
    return result


def check_data(cfg: DictConfig) -> None:
    """The data folder exists (or data=synthetic), or one line."""
    root = Path(cfg.data_path).expanduser()
    if cfg.data == "synthetic":
        return
    if cfg.data != "catfaces":
        raise UserError(f"bench: data={cfg.data} is unknown; use catfaces or synthetic")
    if not root.is_dir():
        raise UserError(f"bench: data=catfaces but no folder at {root}; set data_path= or data=synthetic")


def bench(cfg: DictConfig) -> None:
    """Runs the benchmark the config describes, prints the table and writes bench.json."""
    check_data(cfg)
    memory = measure_memory(cfg) if cfg.memory.enabled and cfg.data == "catfaces" else None
    rows = run(cfg)
    print_table(rows)
    if memory:
        print(
            f"cat faces at {memory['size']}px ({memory['images']} images): cache build "
            f"{memory['cache_build_s']:.1f}s, cache reuse {memory['cache_reuse_s']:.2f}s; "
            f"train.py peak RSS {memory['peak_rss_mib']:.0f} MiB ({cfg.memory.steps} iterations)"
        )
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"throughput": rows, "memory": memory}, indent=2))
    print(f"wrote {out}")


@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmarks/speed")
def main(cfg: DictConfig) -> None:
    exit_on_user_error(lambda: bench(cfg))


if __name__ == "__main__":
    main()
