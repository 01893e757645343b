"""A folder too large for one transfer, sent as parts: split into tar files of at most N MB with a manifest of
their SHA-256 checksums, and assembled on the other side from the parts that arrived whole.

    python -m benchmarks.gpu_parts split <folder> <parts> --part-mb 55     # here: parts/part-000.tar ..., manifest
    python -m benchmarks.gpu_parts assemble <parts> <folder>              # there, after each arrival

Each part is sent on its own (one per transfer, with ``manifest.json``) and checked by checksum when assembled;
a part that is missing or damaged is reported and left out, the others are unpacked. Assembling again (after
the next part arrives, or on a new machine that lost the folder) unpacks only what is not unpacked yet, and
the report says how many of the folder's files are there, for the protocol line of whatever trains on them.
"""

from __future__ import annotations

import argparse
import json
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dcgan_lit.checkpoint.io import file_sha256
from dcgan_lit.data.images import find_images
from dcgan_lit.errors import UserError, exit_on_user_error

MANIFEST = "manifest.json"
ASSEMBLY = (
    ".assembly.json"  # in the assembled folder: what is there (read by the quality benchmark's protocol)
)


def tar_size(sizes: list[int]) -> int:
    """The size of a ustar archive of files of ``sizes`` bytes: per file a 512-byte header and its data in
    512-byte blocks, then the end-of-archive blocks, rounded up to 10,240-byte records."""
    body = sum(512 + -(-size // 512) * 512 for size in sizes) + 1024
    return -(-body // tarfile.RECORDSIZE) * tarfile.RECORDSIZE


def split(source: Path, parts: Path, part_mb: float) -> dict:
    """Packs ``source``'s images (paths kept relative to it, in sorted order) into tar parts of at most
    ``part_mb`` MB each and writes the manifest: every part's name, size, SHA-256 and number of files."""
    files = sorted(find_images(source))
    if not files:
        raise UserError(f"split: no images under {source}; pass the folder to send")
    limit = part_mb * 2**20
    groups: list[list[Path]] = [[]]
    sizes: list[int] = []
    for file in files:
        bytes_ = file.stat().st_size
        if tar_size([bytes_]) > limit:
            raise UserError(f"split: {file} alone is larger than --part-mb {part_mb}; raise it")
        if groups[-1] and tar_size([*sizes, bytes_]) > limit:
            groups.append([])
            sizes = []
        groups[-1].append(file)
        sizes.append(bytes_)
    parts.mkdir(parents=True, exist_ok=True)
    entries = []
    for index, group in enumerate(groups):
        path = parts / f"part-{index:03d}.tar"
        with tarfile.open(
            path, "w", format=tarfile.USTAR_FORMAT
        ) as archive:  # one header a file: sizes known
            for file in group:
                try:
                    archive.add(file, arcname=file.relative_to(source).as_posix())
                except ValueError as error:  # a name over ustar's 255 characters
                    raise UserError(f"split: {file}: {error}; shorten the folder's names") from None
        entries.append(
            {
                "name": path.name,
                "bytes": path.stat().st_size,
                "sha256": file_sha256(path),
                "files": len(group),
            }
        )
    manifest = {"source": source.name, "files": len(files), "parts": entries}
    (parts / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


@dataclass
class Assembly:
    """What assembling found: parts unpacked now or before, parts missing or damaged, and the files there."""

    files: int = 0
    total: int = 0
    unpacked: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (self.missing or self.damaged)

    def line(self) -> str:
        """One line for a protocol: how many of the files are there and which parts are not."""
        absent = [*(f"{p} missing" for p in self.missing), *(f"{p} damaged" for p in self.damaged)]
        gaps = f" ({', '.join(absent)})" if absent else ""
        return f"{self.files:,} of {self.total:,} files{gaps}"


def assemble(parts: Path, target: Path) -> Assembly:
    """Unpacks into ``target`` every part of ``parts``' manifest that is there with its checksum and was not
    unpacked before (a ``.<part>.done`` stamp holding its checksum); the others are reported, not fatal."""
    manifest_path = parts / MANIFEST
    if not manifest_path.is_file():
        raise UserError(f"assemble: no {MANIFEST} in {parts}; send it with the first part")
    manifest = json.loads(manifest_path.read_text())
    target.mkdir(parents=True, exist_ok=True)
    report = Assembly(total=int(manifest["files"]))
    for entry in manifest["parts"]:
        name, stamp = entry["name"], target / f".{entry['name']}.done"
        if stamp.is_file() and stamp.read_text() == entry["sha256"]:
            report.already.append(name)
            report.files += entry["files"]
            continue
        path = parts / name
        if not path.is_file():
            report.missing.append(name)
            continue
        if file_sha256(path) != entry["sha256"]:
            report.damaged.append(name)
            continue
        with tarfile.open(path) as archive:
            archive.extractall(target, filter="data")  # no links or paths out of the folder
        stamp.write_text(entry["sha256"])
        report.unpacked.append(name)
        report.files += entry["files"]
    (target / ASSEMBLY).write_text(json.dumps({**asdict(report), "line": report.line()}))
    return report


def assembly_line(folder: Path) -> str | None:
    """The last assembly's line of a folder assembled from parts (e.g. "46,408 of 50,000 files (part-003.tar
    missing)"), or None for a folder that was not."""
    path = Path(folder) / ASSEMBLY
    return json.loads(path.read_text())["line"] if path.is_file() else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    split_command = commands.add_parser("split", help="pack a folder's images into checksummed parts")
    split_command.add_argument("source", type=Path)
    split_command.add_argument("parts", type=Path)
    split_command.add_argument("--part-mb", type=float, default=55.0)
    assemble_command = commands.add_parser("assemble", help="unpack the parts that arrived whole")
    assemble_command.add_argument("parts", type=Path)
    assemble_command.add_argument("target", type=Path)
    args = parser.parse_args(argv)

    def run() -> None:
        if args.command == "split":
            manifest = split(args.source, args.parts, args.part_mb)
            sizes = ", ".join(f"{p['name']} {p['bytes'] / 2**20:.1f} MB" for p in manifest["parts"])
            print(f"{manifest['files']:,} files in {len(manifest['parts'])} parts: {sizes}")
        else:
            report = assemble(args.parts, args.target)
            print(f"assembled {report.line()}: {json.dumps(asdict(report))}")

    exit_on_user_error(run)


if __name__ == "__main__":
    main()
