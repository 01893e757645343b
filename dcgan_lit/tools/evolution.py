"""Training at a glance from a run folder: a GIF of the fixed-z sample grids, and a plot of the loss curves.

python -m dcgan_lit.tools.evolution run_dir=outputs/train/catfaces-dcgan64/2026-11-22_10-00-00
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from omegaconf import DictConfig
from PIL import Image

from dcgan_lit.errors import UserError
from dcgan_lit.tools.app import console, tool_main, wrote
from dcgan_lit.tools.drawing import save_gif, titled
from dcgan_lit.tools.wandb_file import history_rows, run_files

CURVES = {  # plot panel -> the metrics drawn in it
    "loss": ("train/loss_d", "train/loss_g"),
    "D output": ("train/d_real", "train/d_fake"),
    "FID": ("val/fid",),
}


def sample_frames(run_dir: Path, max_frames: int) -> list[tuple[str, Path]]:
    """(caption, path) of the run's sample grids in training order, thinned evenly to at most ``max_frames``."""
    steps = sorted(
        (int(m.group(1)), p)
        for p in (run_dir / "samples").glob("step_*.png")
        if (m := re.search(r"(\d+)", p.name))
    )
    frames = [(f"iteration {step}", path) for step, path in steps]
    if not frames:
        frames = [(p.stem.replace("_", " "), p) for p in sorted((run_dir / "samples").glob("epoch_*.png"))]
    if (run_dir / "samples" / "final.png").is_file():
        frames.append(("final", run_dir / "samples" / "final.png"))
    if len(frames) > max_frames:  # keep the first and the last
        keep = {round(i * (len(frames) - 1) / (max_frames - 1)) for i in range(max_frames)}
        frames = [frame for index, frame in enumerate(frames) if index in keep]
    return frames


def read_csv_metrics(path: Path) -> dict[str, list[tuple[float, float]]]:
    """{metric: [(iteration, value), ...]} from a Lightning CSVLogger file (one row per logging step)."""
    series: dict[str, list[tuple[float, float]]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                if key not in ("step", "epoch") and value not in ("", None):
                    series.setdefault(key, []).append((float(row["step"]), float(value)))
    return series


def read_tensorboard_metrics(folder: Path) -> dict[str, list[tuple[float, float]]]:
    """{metric: [(iteration, value), ...]} from TensorBoard event files under ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    series: dict[str, list[tuple[float, float]]] = {}
    for events in sorted({p.parent for p in folder.rglob("events.out.tfevents.*")}):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0}).Reload()
        for tag in accumulator.Tags()["scalars"]:
            series.setdefault(tag, []).extend((e.step, e.value) for e in accumulator.Scalars(tag))
    return series


def read_wandb_metrics(folder: Path) -> dict[str, list[tuple[float, float]]]:
    """{metric: [(iteration, value), ...]} from the W&B run file(s) under ``folder`` (offline or online)."""
    series: dict[str, list[tuple[float, float]]] = {}
    for path in run_files(folder):
        for row in history_rows(path):
            step = row.get("trainer/global_step", row.get("_step"))  # Lightning's x-axis: the iteration
            for key, value in row.items():
                if (
                    not key.startswith(("_", "trainer/"))
                    and isinstance(value, int | float)
                    and step is not None
                ):
                    series.setdefault(key, []).append((float(step), float(value)))
    return series


def read_metrics(run_dir: Path) -> dict[str, list[tuple[float, float]]]:
    """The run's logged curves from its CSV log, else TensorBoard, else W&B; one clear line when it has none."""
    if (run_dir / "csv" / "metrics.csv").is_file():
        return read_csv_metrics(run_dir / "csv" / "metrics.csv")
    if (run_dir / "tensorboard").is_dir():
        return read_tensorboard_metrics(run_dir / "tensorboard")
    if run_files(run_dir / "wandb"):
        return read_wandb_metrics(run_dir / "wandb")
    raise UserError(
        f"{run_dir} has no csv/metrics.csv, tensorboard/ or wandb/ log to plot; train with the default "
        "logger=wandb (or logger=csv, logger=tensorboard) to plot its curves here"
    )


def plot_curves(series: dict[str, list[tuple[float, float]]], path: Path) -> Path:
    """One PNG with a panel per group of CURVES that the run logged; x is the training iteration."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("plotting needs matplotlib: pip install 'dcgan-lit[plots]'") from None
    panels = {title: [m for m in metrics if series.get(m)] for title, metrics in CURVES.items()}
    panels = {title: metrics for title, metrics in panels.items() if metrics}
    if not panels:
        raise UserError(f"none of {sum(CURVES.values(), ())} were logged in this run; nothing to plot")
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for axis, (title, metrics) in zip(axes[0], panels.items(), strict=True):
        for metric in metrics:
            steps, values = zip(*sorted(series[metric]), strict=True)
            axis.plot(steps, values, label=metric.split("/")[-1], linewidth=1)
        axis.set(title=title, xlabel="iteration")
        axis.legend()
        axis.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def run(cfg: DictConfig) -> dict:
    """Writes evolution.gif (sample grids over training) and curves.png (loss curves) for ``run_dir``."""
    run_dir = Path(cfg.run_dir).expanduser()
    if not run_dir.is_dir():
        raise UserError(f"run_dir={run_dir}: no such folder; pass a training run folder (outputs/train/...)")
    out = Path(cfg.out_dir or run_dir)
    frames = sample_frames(run_dir, cfg.max_frames)
    written = {}
    if frames:
        images = [titled(Image.open(path), caption) for caption, path in frames]
        durations = [cfg.frame_ms] * (len(images) - 1) + [cfg.last_frame_ms]  # linger on the final grid
        written["gif"] = save_gif(images, out / "evolution.gif", durations, colors=cfg.gif_colors)
        wrote(written["gif"], f"{len(frames)} sample grids over training")
    else:
        console.print(f"no sample grids in {run_dir / 'samples'}; no GIF written")
    written["curves"] = plot_curves(read_metrics(run_dir), out / "curves.png")
    wrote(written["curves"], "the loss curves")
    return written


main = tool_main("evolution", run)

if __name__ == "__main__":
    main()
