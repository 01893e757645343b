"""Checkpoint files on disk: atomic writes that a crash cannot corrupt, and ``weights_only`` reads.

A file is written to a temporary file in its folder, fsynced and renamed over the old one, so a crash mid-write
leaves the previous file intact. Every checkpoint and weights file is read with ``torch.load(weights_only=True)``
(Lightning's own resume included, through :class:`dcgan_lit.checkpoint.resume.AtomicCheckpointIO`): a damaged file or one carrying arbitrary
pickled objects is one clear line, never unpickled.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from dcgan_lit.errors import UserError

log = logging.getLogger(__name__)

Cached = TypeVar("Cached")


def atomic_torch_save(obj, path: Path) -> None:
    """torch.save to a temporary file in the same folder, then rename: readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_cached(path: Path, what: str, mmap: bool = False) -> Any | None:
    """A cache file's tensors (``weights_only``; memory-mapped with ``mmap``), or None when it is missing or
    unreadable: a damaged cache entry costs a rebuild, never the run."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as error:  # noqa: BLE001 - whatever is wrong with the file, rebuilding it is the answer
        log.warning("Cached %s %s is unreadable (%s); rebuilding it", what, path, error)
        return None


def write_cached(obj: Any, path: Path, what: str) -> None:
    """Writes a cache file atomically; a folder that refuses it only costs a rebuild next time."""
    try:
        atomic_torch_save(obj, path)
        log.info("Cached %s at %s", what, path)
    except OSError as error:
        log.warning("Could not write the %s cache %s (%s); continuing without it", what, path, error)


def load_or_build(path: Path | None, build: Callable[[], Cached], what: str, mmap: bool = False) -> Cached:
    """The cached tensors at ``path``, or ``build()``'s, cached there for next time (``path`` None: no cache)."""
    if path is None:
        return build()
    cached = read_cached(path, what, mmap=mmap)
    if cached is not None:
        log.info("Using cached %s %s", what, path)
        return cached
    built = build()
    write_cached(built, path, what)
    return built


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read a MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_dir(folder: Path) -> None:
    """Makes a rename in ``folder`` durable (a no-op where directories can't be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def refusal(error: pickle.UnpicklingError) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in one line.

    torch's first line is generic advice (to load with weights_only=False); the blocked global, or the
    unsupported pickle operand (raw bytes of a damaged file, or a newer pickle protocol), says why.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    blocked = next((line for line in lines if "GLOBAL" in line), None)
    if blocked:
        return f"it holds objects other than tensors and plain data ({blocked})"
    detail = next((line for line in lines if line.startswith("Unsupported")), type(error).__name__)
    return (
        f"it is corrupt or not a PyTorch file, or holds objects other than tensors and plain data ({detail})"
    )


def torch_load_weights_only(path: Path, what: str, noun: str, advice: str) -> Any:
    """``torch.load(path, weights_only=True)``; a refused or unreadable file is one line naming ``what``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UserError(f"{what} {path} was refused: {refusal(error)}{advice}") from None
    except Exception as error:
        raise UserError(
            f"{what} {path} is corrupt or not a PyTorch {noun} ({type(error).__name__})"
        ) from None


def load_state_dict_file(path: str | Path, what: str = "weights file") -> dict[str, Any]:
    """Reads a plain tensor file (e.g. third-party network weights) with ``weights_only=True``."""
    path = Path(path).expanduser()
    state = torch_load_weights_only(path, what, "file", "; use a file with only a state_dict")
    if not isinstance(state, dict):
        raise UserError(f"{what} {path} is not a state_dict (found {type(state).__name__})")
    return state


def read_weights_only(path: str | Path) -> Any:
    """Any tensors-only file read with ``torch.load(weights_only=True)``; one clear line when it can't be read."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"checkpoint {path}: no such file")
    refuse_other_exports(path)
    advice = ". Only load checkpoints you trust; dcgan-lit never unpickles arbitrary objects"
    return torch_load_weights_only(path, "checkpoint", "checkpoint", advice)


def load_weights(path: str | Path) -> dict[str, Any]:
    """Reads a checkpoint with ``torch.load(weights_only=True)``; one clear line when it can't be read."""
    checkpoint = read_weights_only(path)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UserError(f"checkpoint {path} has no 'state_dict'; is it a dcgan-lit Lightning checkpoint?")
    return checkpoint


def refuse_other_exports(path: Path) -> None:
    """TorchScript and ONNX exports are not checkpoints: say how to load them instead."""
    if path.suffix == ".onnx":
        raise UserError(
            f"{path} is an ONNX graph; run it with onnxruntime (see docs/tools.md, Export), not load_generator"
        )
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if any(name.split("/", 1)[-1].startswith("code/") for name in archive.namelist()):
                raise UserError(
                    f"{path} is a TorchScript export; load it with torch.jit.load({str(path)!r}) "
                    "and sample with .sample(n, seed)"
                )
