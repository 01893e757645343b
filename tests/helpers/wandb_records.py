"""Reads back what an offline W&B run recorded, from its ``run-*.wandb`` file (no server needed).

The file format is read by ``dcgan_lit.tools.wandb_file`` (which ``python -m dcgan_lit.tools.evolution`` plots from).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from dcgan_lit.tools.wandb_file import read_records


def has_exit_record(path: Path) -> bool:
    try:
        return any(r.WhichOneof("record_type") == "exit" for r in read_records(path))
    except Exception:  # caught mid-write: a partial record at the end
        return False


def finished_run_files(run_dir: str | Path, timeout: float = 60.0) -> list[Path]:
    """The run files under ``run_dir`` once each holds its exit record.

    W&B's service process writes the file asynchronously and may still be flushing the last history rows
    after the training process has returned, the more so on a loaded machine.
    """
    deadline = time.monotonic() + timeout
    paths = sorted(Path(run_dir).rglob("run-*.wandb"))
    while not all(has_exit_record(p) for p in paths) and time.monotonic() < deadline:
        time.sleep(0.2)
    return paths


def read_history(run_dir: str | Path) -> list[dict]:
    """Every history row logged by the offline run(s) under ``run_dir``, values JSON-decoded."""
    rows = []
    for path in finished_run_files(run_dir):
        for record in read_records(path):
            if record.WhichOneof("record_type") == "history":
                rows.append(
                    {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in record.history.item}
                )
    return rows


def read_config(run_dir: str | Path) -> dict:
    """The run config keys recorded by the offline run(s) under ``run_dir``."""
    config = {}
    for path in finished_run_files(run_dir):
        for record in read_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "config":
                for item in record.config.update:
                    config[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
            elif kind == "run":
                for item in record.run.config.update:
                    config[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return config


def read_artifacts(run_dir: str | Path) -> list[dict]:
    """The artifacts logged by the offline run(s) under ``run_dir``: name, type, aliases, metadata, files.

    Each file is (name in the artifact, size, where W&B staged it for ``wandb sync``).
    """
    artifacts = []
    for path in finished_run_files(run_dir):
        for record in read_records(path):
            if record.WhichOneof("record_type") == "artifact":
                artifact = record.artifact
                artifacts.append(
                    {
                        "name": artifact.name,
                        "type": artifact.type,
                        "aliases": list(artifact.aliases),
                        "metadata": json.loads(artifact.metadata or "{}"),
                        "files": [(e.path, e.size, e.local_path) for e in artifact.manifest.contents],
                    }
                )
    return artifacts


def read_runs(run_dir: str | Path) -> list[dict]:
    """One entry per offline run file under ``run_dir``: its group, display name and exit code (None: unfinished)."""
    runs = []
    for path in sorted(Path(run_dir).rglob("run-*.wandb")):
        run = {"group": None, "name": None, "exit_code": None}
        for record in read_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run.update(group=record.run.run_group, name=record.run.display_name)
            elif kind == "exit":
                run["exit_code"] = record.exit.exit_code
        runs.append(run)
    return runs


def read_run_ids(run_dir: str | Path) -> list[str]:
    """The W&B run id recorded in each offline run file under ``run_dir`` (one file per process)."""
    ids = []
    for path in finished_run_files(run_dir):
        ids += [r.run.run_id for r in read_records(path) if r.WhichOneof("record_type") == "run"]
    return ids
