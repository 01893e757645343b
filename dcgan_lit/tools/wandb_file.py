"""Reads what a W&B run recorded from its local ``run-*.wandb`` file (offline or online), no server needed.

The wandb package has no Python reader for these files any more (its core is a Go binary), so the format is
read here: a 7-byte header (":W&B", magic, version), then LevelDB-log framing: 32 KiB blocks of records,
each with a 7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last); each record is a
serialized ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def record_bytes(data: bytes) -> list[bytes]:
    """The serialized records of a ``.wandb`` file's bytes, reassembled across blocks."""
    records, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's tail too short for a header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if length == 0 and kind == 0:  # block padding
            pos += left
            continue
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            records.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            records.append(pending + chunk)
            pending = b""
    return records


def read_records(path: str | Path) -> list[Any]:
    """Every ``wandb_internal_pb2.Record`` in a run file."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    parsed = []
    for raw in record_bytes(data):
        record = pb.Record()
        record.ParseFromString(raw)
        parsed.append(record)
    return parsed


def history_rows(path: str | Path) -> list[dict[str, Any]]:
    """The history rows (``wandb.log`` calls) of one run file, values JSON-decoded."""
    return [
        {(item.key or "/".join(item.nested_key)): json.loads(item.value_json) for item in record.history.item}
        for record in read_records(path)
        if record.WhichOneof("record_type") == "history"
    ]


def run_files(folder: str | Path) -> list[Path]:
    """The W&B run files under ``folder`` (e.g. a training run's ``wandb/``), oldest first."""
    return sorted(Path(folder).rglob("run-*.wandb"), key=lambda path: path.stat().st_mtime)
