"""Training throughput: dcgan-lit's real training path against the classic PyTorch DCGAN loop.

    python -m benchmarks.speed                       # sizes 32, 64, 128 on the cat faces, batch 128
    python -m benchmarks.speed sizes=[64] data=synthetic iterations=20

For each size it times, on the same model, batch and device:
  ours       Trainer + DCGAN LightningModule + datamodule, instantiated from conf/train.yaml as train.py does;
  reference  the PyTorch DCGAN example's loop: torchvision ImageFolder + DataLoader (2 workers), D then G;
  bare       ours' own D-then-G step (DCGAN.adversarial_step) in a plain loop over batches on the device.
Reported: images/s (median over timed iterations after warm-up), ours/reference, ours' step vs the bare step
(Lightning's overhead), model FLOPs per image (torch's flop counter) and the fraction of a matmul peak measured
in the same run. Results are printed as a table and written to bench.json in the run folder.
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
class IterationTimer(L.Callback):
    """Records each iteration's wall time end to end (data included) and its training step alone."""

    def __init__(self) -> None:
        self.end_to_end: list[float] = []
        self.step: list[float] = []
        self._last_end: float | None = None
        self._start = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        synchronize(pl_module.device)
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        synchronize(pl_module.device)
        now = time.perf_counter()
        self.step.append(now - self._start)
        if self._last_end is not None:
            self.end_to_end.append(now - self._last_end)
        self._last_end = now


def train_config(cfg: DictConfig, size: int) -> DictConfig:
    """conf/train.yaml composed for this benchmark: model size, data, batch, no logging or callbacks."""
    if cfg.data == "catfaces":
        dataset = ["dataset=catfaces", f"dataset.path={cfg.data_path}"]
    else:  # SyntheticDataModule fills the set; the folder is never read
        dataset = ["dataset=imagefolder", "dataset.path=synthetic"]
    overrides = [
        f"model=dcgan{size}",
        *dataset,
        f"dataset.batch_size={cfg.batch_size}",
        "logger=none",
        "callbacks=none",
        f"paths.output_dir={cfg.paths.output_dir}",
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
        return self.real.train_dataloader()

    def on_after_batch_transfer(self, batch, dataloader_idx):
        return self.real.on_after_batch_transfer(batch, dataloader_idx)


def time_ours(cfg: DictConfig, size: int) -> tuple[IterationTimer, DCGAN]:
    run_cfg = train_config(cfg, size)
    torch.manual_seed(0)
    datamodule = instantiate(run_cfg.dataset)
    if cfg.data == "synthetic":
        datamodule = SyntheticDataModule(datamodule, cfg.batch_size * (cfg.warmup + cfg.iterations + 2))
    model: DCGAN = instantiate(run_cfg.model)
    timer = IterationTimer()
    trainer = build_trainer(
        run_cfg,
        model,
        [timer],
        max_iterations=cfg.warmup + cfg.iterations + 1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_epochs=-1,
    )
    trainer.fit(model, datamodule=datamodule)
    timer.end_to_end, timer.step = timer.end_to_end[cfg.warmup :], timer.step[cfg.warmup + 1 :]
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


def time_bare(cfg: DictConfig, size: int, device: torch.device) -> tuple[list[float], float]:
    """Per-iteration times of the bare loop, and model FLOPs per image of one iteration.

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
    durations = []
    for i in range(cfg.warmup + cfg.iterations):
        synchronize(device)
        start = time.perf_counter()
        with autocast(cfg.precision, device):
            bare_iteration(model, opt_d, opt_g, batches[i % 2])
        synchronize(device)
        if i >= cfg.warmup:
            durations.append(time.perf_counter() - start)
    return durations, counter.get_total_flops() / cfg.batch_size


def run(cfg: DictConfig) -> list[dict]:
    device = pick_device(cfg.device)
    check_data(cfg)
    dtype = precision_dtype(cfg.precision)
    peak = matmul_peak_flops(device, n=cfg.peak_size, dtype=dtype)
    log.info("%s matmul peak on %s: %.1f GFLOP/s", dtype, device, peak / 1e9)
    rows = []
    for size in cfg.sizes:
        bare, flops_per_image = time_bare(cfg, size, device)
        timer, _ = time_ours(cfg, size)
        reference = time_reference(cfg, size, device)
        ours_ips = images_per_second(timer.end_to_end, cfg.batch_size)
        reference_ips = images_per_second(reference, cfg.batch_size)
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
                "ours_img_s": ours_ips,
                "reference_img_s": reference_ips,
                "ratio": ours_ips / reference_ips,
                "ours_step_img_s": images_per_second(timer.step, cfg.batch_size),
                "bare_step_img_s": images_per_second(bare, cfg.batch_size),
                "step_vs_bare": statistics.median(bare) / statistics.median(timer.step),
                "gflops_per_image": flops_per_image / 1e9,
                "peak_gflops": peak / 1e9,
                "peak_dtype": str(dtype).removeprefix("torch."),
                "fraction_of_peak": flops_per_image * ours_ips / peak,
            }
        )
        log.info("size %d: %s", size, rows[-1])
    return rows


def print_table(rows: list[dict]) -> None:
    table = Table(title="dcgan-lit training throughput (median images/s after warm-up)")
    for column in (
        "device",
        "size",
        "batch",
        "ours",
        "reference",
        "ratio",
        "step vs bare",
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
            f"{r['reference_img_s']:.1f}",
            f"{r['ratio']:.2f}x",
            f"{r['step_vs_bare']:.3f}",
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
