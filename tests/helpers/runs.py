"""Running the commands: train.py in a subprocess, a tool in-process, a config made to look like a multirun job."""

from __future__ import annotations

import csv
import importlib
import subprocess
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict, read_write

from tests.helpers.config import TINY, compose_config, compose_tool
from tests.helpers.forked import run_train

QUIET = ["trainer.max_steps=2", "callbacks.samples.every_n_steps=0", "callbacks.generator_export=null"]


def run_cli(*args: str, cwd: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """``python train.py <args>`` as its own process (forked from a process that has imported its dependencies
    once, :mod:`tests.helpers.forked`), output captured."""
    return run_train(list(args), cwd, env_extra)


def run_tool(name: str, tiny_run: Path, tmp_path: Path, *overrides: str):
    """Runs ``dcgan_lit.tools.<name>.run`` in-process on the session's tiny checkpoint with extra overrides."""
    cfg = compose_tool(name, [f"ckpt_path={tiny_run / 'checkpoints/last.ckpt'}", *overrides], tmp_path)
    return importlib.import_module(f"dcgan_lit.tools.{name}").run(cfg)


def logged_rows(run_dir: Path) -> list[dict]:
    """The rows of a run's CSV log (logger=csv)."""
    with open(run_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def tiny_args(image_folder: Path, *extra: str) -> list[str]:
    """TINY with 2 iterations and no step grids; a key given in ``extra`` replaces TINY's."""
    swept = {arg.split("=")[0] for arg in extra}
    base = [arg for arg in [*TINY, *QUIET] if arg.split("=")[0] not in swept]
    return ["dataset=imagefolder", f"dataset.path={image_folder}", *base, *extra]


def as_multirun_job(cfg: DictConfig, sweep_dir: Path, num: int) -> DictConfig:
    """Makes ``cfg`` look like job ``num`` of ``python train.py -m`` with ``hydra.sweep.dir=sweep_dir``."""
    with read_write(cfg.hydra), open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.sweep.dir = str(sweep_dir)
        cfg.hydra.job.num = num
    HydraConfig().set_config(cfg)
    return cfg


def run_isolated(script: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -I -c <script> <args>``: a fresh interpreter that ignores the environment and the current folder
    (so nothing of dcgan_lit is importable unless the script allows it), output captured."""
    return subprocess.run(
        [sys.executable, "-I", "-c", script, *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def train_run_folder(root: Path, data: list[str], extra: list[str]) -> Path:
    """``root/run``: what ``python train.py`` leaves (checkpoints/, samples/, csv/, .hydra/config.yaml) after a
    tiny in-process training: the ``data`` overrides, :data:`TINY`, then ``extra`` (the cache under ``root``)."""
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from dcgan_lit.run.fit import train

    run = root / "run"
    cfg = compose_config([*data, f"paths.cache_dir={root / 'cache'}", *TINY, *extra], run)
    train(cfg)
    GlobalHydra.instance().clear()
    with open_dict(cfg):
        del cfg["hydra"]
    (run / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
    return run
