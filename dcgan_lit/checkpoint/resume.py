"""Resuming: Lightning's checkpoint IO (atomic writes, ``weights_only`` reads), what ``ckpt_path=`` resumes
from (a verified file, or ``last``: the newest good checkpoint), and the CSV metrics kept aside on a resume."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_only

from dcgan_lit.checkpoint.io import atomic_torch_save, fsync_dir, load_weights
from dcgan_lit.errors import UserError

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO that writes atomically (temp file, fsync, rename) and reads ``weights_only``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        atomic_torch_save(checkpoint, Path(path))
        fsync_dir(Path(path).parent)

    def load_checkpoint(
        self, path: Any, map_location: Callable | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_weights(path)


def checkpoint_candidates(output_dir: Path) -> list[Path]:
    """Checkpoints ``ckpt_path=last`` may resume from, best first: this run's, then earlier sibling runs'.

    Within a run, ``last.ckpt`` comes first, then its other checkpoints, newest first.
    """

    def of_run(run: Path) -> list[Path]:
        files = sorted((run / "checkpoints").glob("*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
        return sorted(files, key=lambda p: p.name != "last.ckpt")  # stable: last.ckpt, then newest first

    siblings = [p for p in output_dir.parent.glob("*/checkpoints") if p.parent != output_dir]
    siblings.sort(key=lambda p: max((f.stat().st_mtime for f in p.glob("*.ckpt")), default=0), reverse=True)
    return [*of_run(output_dir), *(f for run in siblings for f in of_run(run.parent))]


# Model settings that shape the saved tensors: a checkpoint resumes only into the same ones.
ARCHITECTURE_KEYS = ("image_size", "channels", "latent_dim", "ngf", "ndf", "num_fixed_samples")


def verify_checkpoint(path: Path, model: Mapping[str, Any] | None = None) -> None:
    """Reads ``path`` with ``weights_only=True`` and checks it was trained with ``model``'s architecture."""
    hparams = load_weights(path).get("hyper_parameters", {})
    for key in ARCHITECTURE_KEYS:
        if model is not None and key in hparams and key in model and hparams[key] != model[key]:
            raise UserError(
                f"checkpoint {path} was trained with model.{key}={hparams[key]}, but the config has "
                f"model.{key}={model[key]}; resume with the same model settings"
            )


def resolve_ckpt_path(
    ckpt_path: str | None, output_dir: str | Path, model: Mapping[str, Any] | None = None
) -> str | None:
    """``ckpt_path``: null (fresh run), a file, or ``last``; returns a checkpoint that loads, or None.

    A file is verified (:func:`verify_checkpoint`) and refused with one line when damaged, unsafe or made for
    another architecture. ``last`` takes the first good one of :func:`checkpoint_candidates`, warning about
    each one it passes over, and starts fresh with a warning when there is none.
    """
    if ckpt_path in (None, ""):
        return None
    if str(ckpt_path) != "last":
        path = Path(ckpt_path).expanduser()
        if not path.is_file():
            raise UserError(
                f"ckpt_path={ckpt_path}: no such file; pass a .ckpt file, 'last', or leave it null"
            )
        verify_checkpoint(path, model)
        return str(path)
    output_dir = Path(output_dir)
    for candidate in checkpoint_candidates(output_dir):
        try:
            verify_checkpoint(candidate, model)
        except UserError as error:
            log.warning("ckpt_path=last: skipping %s", error)
            continue
        log.info("ckpt_path=last: resuming from %s", candidate)
        return str(candidate)
    log.warning(
        "ckpt_path=last: no usable checkpoint in %s or its sibling runs; starting from scratch", output_dir
    )
    return None


@rank_zero_only
def keep_earlier_metrics(loggers: Mapping[str, Any] | None) -> Path | None:
    """Renames the CSV logger's ``metrics.csv`` to ``metrics.<n>.csv``; returns the new path, if any.

    Lightning's CSVLogger deletes an existing ``metrics.csv`` in its folder, so a run resumed into its own run
    folder would lose the metrics of the iterations before the resume.
    """
    csv = (loggers or {}).get("csv")
    if not csv or csv.get("version") is None:  # no CSV logger, or one that makes a new version folder
        return None
    folder = Path(csv.save_dir) / csv.get("name", "lightning_logs") / str(csv.version)
    metrics = folder / "metrics.csv"
    if not metrics.is_file():
        return None
    n = 1
    while (folder / f"metrics.{n}.csv").exists():
        n += 1
    kept = metrics.rename(folder / f"metrics.{n}.csv")
    log.info("Resuming into %s: the metrics logged so far are kept in %s", folder, kept.name)
    return kept
