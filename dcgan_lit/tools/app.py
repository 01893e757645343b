"""The post-training tools' command line: one Hydra entry style, progress bars, and where outputs went."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig
from rich.console import Console

from dcgan_lit.api import load_discriminator, load_generator, pick_device
from dcgan_lit.errors import UserError, exit_on_user_error
from dcgan_lit.model.networks import Discriminator, Generator
from dcgan_lit.progress import watch


def conf_dir() -> Path:
    """The configs: ``dcgan_lit/conf`` in an installed wheel, else the checkout's ``conf/`` beside the package."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "conf"
    return installed if installed.is_dir() else package.parent / "conf"


CONF_DIR = str(conf_dir())
console = Console(stderr=True)


def tool_main(config_name: str, run: Callable[[DictConfig], Any]) -> Callable[[], None]:
    """A Hydra app over ``conf/tools/<config_name>.yaml`` that prints a UserError as one line and exits 1."""

    @hydra.main(version_base="1.3", config_path=CONF_DIR, config_name=f"tools/{config_name}")
    def main(cfg: DictConfig) -> None:
        exit_on_user_error(lambda: run(cfg))

    return main


def load_networks(
    ckpt_path: str | Path,
    device: str | torch.device,
    generator: bool = True,
    discriminator: bool = False,
    ema: bool = True,
) -> tuple[Generator | None, Discriminator | None]:
    """The eval-mode networks a tool asks for, from a checkpoint (G: its EMA weights when present and ``ema``).

    Every tool loads through here, on the Python API (training checkpoints and standalone generator exports).
    """
    where = pick_device(device)
    return (
        load_generator(ckpt_path, where, ema=ema) if generator else None,
        load_discriminator(ckpt_path, where) if discriminator else None,
    )


def progress(items: Iterable, description: str, total: int) -> Iterable:
    """Progress over ``items`` when there is enough work to watch: a bar on a terminal, else log lines."""
    return watch(items, description, total, console=console)


def wrote(path: str | Path, what: str) -> None:
    """Tells the user where an output went."""
    console.print(f"[bold green]wrote[/] {what}: {Path(path).resolve()}")


def require_indices(name: str, values: Sequence[int] | None, size: int, at_least: int = 1) -> list[int]:
    """Checks a list of indices from the command line: enough of them, each in [0, size)."""
    values = list(values or [])
    if len(values) < at_least:
        raise UserError(f"{name} needs at least {at_least} indices, got {values}; e.g. {name}=[0,1,2]")
    bad = [i for i in values if not 0 <= int(i) < size]
    if bad:
        raise UserError(f"{name}: indices {bad} are outside 0..{size - 1}")
    return [int(i) for i in values]
