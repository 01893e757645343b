"""Resuming: Lightning's checkpoint IO (atomic writes, ``weights_only`` reads), what ``ckpt_path=`` resumes
from (a verified file, or ``last``: the newest good checkpoint), and the CSV metrics kept aside on a resume."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import OmegaConf

from dcgan_lit.checkpoint.io import atomic_torch_save, fsync_dir, load_weights
from dcgan_lit.errors import UserError

log = logging.getLogger(__name__)


class Resume(NamedTuple):
    """The checkpoint a run continues from: its file and its contents (read once, when it was verified)."""

    path: str
    checkpoint: dict[str, Any]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO that writes atomically (temp file, fsync, rename) and reads ``weights_only``.

    With ``resume``, Lightning's read of that file gets the contents already read when it was verified.
    """

    def __init__(self, resume: Resume | None = None) -> None:
        super().__init__()
        self.resume = resume

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        try:
            atomic_torch_save(checkpoint, path)
        except OSError as error:  # a full disk, a quota, a read-only folder: the previous file is untouched
            kept = f"the previous {path.name} is whole" if path.exists() else f"no {path.name} was written"
            raise UserError(
                f"could not write the checkpoint {path} ({error.strerror or error}); {kept}. Free space (or "
                "fix the folder) and continue with ckpt_path=last"
            ) from None
        fsync_dir(path.parent)

    def load_checkpoint(
        self, path: Any, map_location: Callable | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        resume, self.resume = self.resume, None  # held until Lightning's one read, then let go
        if resume is not None and Path(path) == Path(resume.path):
            return resume.checkpoint
        return load_weights(path)


def run_checkpoints(run: Path) -> list[Path]:
    """One run folder's checkpoints: ``last.ckpt`` first, then the others, newest first."""
    files = sorted((run / "checkpoints").glob("*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
    return sorted(files, key=lambda p: p.name != "last.ckpt")  # stable: last.ckpt, then newest first


def sibling_runs(output_dir: Path) -> list[Path]:
    """The other run folders beside ``output_dir`` that hold checkpoints, newest checkpoint first."""
    runs = [p.parent for p in output_dir.parent.glob("*/checkpoints") if p.parent != output_dir]
    newest = {
        run: max((f.stat().st_mtime for f in run.glob("checkpoints/*.ckpt")), default=0) for run in runs
    }
    return sorted(runs, key=newest.__getitem__, reverse=True)


# Model settings that shape the saved tensors: a checkpoint resumes only into the same ones.
ARCHITECTURE_KEYS = ("image_size", "channels", "latent_dim", "ngf", "ndf", "num_fixed_samples", "conditional")

# What makes another run folder's training the same run as this one: its data, its seed and everything that
# changes what is learned. Speed and bookkeeping settings (workers, cache, layout, compile) may differ.
MEANING_SECTIONS = ("dataset", "model", "gan", "augment")
NOT_MEANING = {"num_workers", "cache_dir", "on_device", "download", "channels_last", "compile"}


def verify_checkpoint(path: Path, model: Mapping[str, Any] | None = None) -> Resume:
    """Reads ``path`` with ``weights_only=True`` and checks it was trained with ``model``'s architecture."""
    checkpoint = load_weights(path)
    hparams = checkpoint.get("hyper_parameters", {})
    for key in ARCHITECTURE_KEYS:
        if model is not None and key in hparams and key in model and hparams[key] != model[key]:
            raise UserError(
                f"checkpoint {path} was trained with model.{key}={hparams[key]}, but the config has "
                f"model.{key}={model[key]}; resume with the same model settings"
            )
    return Resume(str(path), checkpoint)


def meaning(config: Mapping[str, Any]) -> dict[str, Any]:
    """The flattened settings of :data:`MEANING_SECTIONS` (``section.key`` -> value)."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key not in NOT_MEANING:
                    walk(f"{prefix}.{key}", item)
        else:
            flat[prefix] = value

    for section in MEANING_SECTIONS:
        value = config.get(section)
        walk(section, OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value)
    flat["seed"] = config.get("seed")
    return flat


def differences(run: Path, config: Mapping[str, Any]) -> list[str]:
    """How the run in ``run`` (its ``.hydra/config.yaml``) differs from ``config`` in meaning; a run folder
    without a saved config differs in everything."""
    saved = run / ".hydra" / "config.yaml"
    if not saved.is_file():
        return [f"no {saved.relative_to(run)} to compare with"]
    try:
        theirs = meaning(OmegaConf.load(saved))
    except Exception as error:  # noqa: BLE001 - any unreadable config means: not provably the same run
        return [f"its {saved.relative_to(run)} does not resolve here ({type(error).__name__})"]
    mine = meaning(config)
    keys = sorted(k for k in theirs.keys() | mine.keys() if theirs.get(k) != mine.get(k))
    return [f"{k}={theirs.get(k)} there, {mine.get(k)} here" for k in keys]


def resolve_ckpt_path(
    ckpt_path: str | None,
    output_dir: str | Path,
    model: Mapping[str, Any] | None = None,
    siblings: bool = True,
    config: Mapping[str, Any] | None = None,
) -> Resume | None:
    """``ckpt_path``: null (fresh run), a file, or ``last``; returns the checkpoint that loads (read once), or None.

    A file is verified (:func:`verify_checkpoint`) and refused with one line when damaged, unsafe or made for
    another architecture. ``last`` takes the first good one of this run folder's checkpoints, then (with
    ``siblings``) of the sibling run folders', warning about each one it passes over, and starts fresh with
    a warning when there is none. With the run's resolved ``config``, a sibling run resumes only if its saved
    config means the same training (:func:`differences`); when siblings exist but none does, the run is
    refused with one line naming what differs. Resuming another folder's checkpoint is a warning.
    """
    if ckpt_path in (None, ""):
        return None
    if str(ckpt_path) != "last":
        path = Path(ckpt_path).expanduser()
        if not path.is_file():
            raise UserError(
                f"ckpt_path={ckpt_path}: no such file; pass a .ckpt file, 'last', or leave it null"
            )
        return verify_checkpoint(path, model)
    output_dir = Path(output_dir)
    refused: list[tuple[Path, list[str]]] = []
    for run in [output_dir, *(sibling_runs(output_dir) if siblings else [])]:
        differ = differences(run, config) if config is not None and run != output_dir else []
        if differ:
            log.warning("ckpt_path=last: not resuming %s, another training: %s", run, "; ".join(differ))
            refused.append((run, differ))
            continue
        for candidate in run_checkpoints(run):
            try:
                resume = verify_checkpoint(candidate, model)
            except UserError as error:
                log.warning("ckpt_path=last: skipping %s", error)
                continue
            if run != output_dir:
                log.warning(
                    "ckpt_path=last: resuming from another run folder's checkpoint, %s (the same experiment); "
                    "training continues in %s",
                    candidate,
                    output_dir,
                )
            else:
                log.info("ckpt_path=last: resuming from %s", candidate)
            return resume
    if refused:
        run, differ = refused[0]
        raise UserError(
            f"ckpt_path=last: the newest earlier run of this experiment, {run}, trained something else "
            f"({'; '.join(differ[:3])}); pass its checkpoint as ckpt_path=<file> to resume it anyway, or "
            "leave ckpt_path null to start afresh"
        )
    where = f"{output_dir} or its sibling runs" if siblings else str(output_dir)
    log.warning("ckpt_path=last: no usable checkpoint in %s; starting from scratch", where)
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
