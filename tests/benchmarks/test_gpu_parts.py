"""benchmarks/gpu_parts.py: a folder split into checksummed parts, assembled from the parts that arrived whole."""

import json
import shutil

import pytest

from benchmarks import gpu_parts
from dcgan_lit.checkpoint.io import file_sha256
from dcgan_lit.errors import UserError
from tests.helpers.images import write_images


@pytest.fixture
def folder(tmp_path):
    for name, seed in (("cat", 1), ("dog", 2)):
        write_images(tmp_path / "data" / name, 15, size=(32, 32), seed=seed)
    return tmp_path / "data"


def contents(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_split_makes_parts_within_the_limit_with_their_checksums(folder, tmp_path):
    manifest = gpu_parts.split(folder, tmp_path / "parts", part_mb=0.02)
    assert manifest["files"] == 30 and len(manifest["parts"]) > 2
    assert sum(p["files"] for p in manifest["parts"]) == 30
    for part in manifest["parts"]:
        path = tmp_path / "parts" / part["name"]
        assert path.stat().st_size == part["bytes"] <= 0.02 * 2**20
        assert file_sha256(path) == part["sha256"]
    assert json.loads((tmp_path / "parts" / "manifest.json").read_text()) == manifest


def test_assembling_what_arrived_and_again_after_each_arrival(folder, tmp_path):
    manifest = gpu_parts.split(folder, tmp_path / "parts", part_mb=0.02)
    names = [p["name"] for p in manifest["parts"]]
    arrived = tmp_path / "arrived"
    arrived.mkdir()
    shutil.copy(tmp_path / "parts" / "manifest.json", arrived)
    for name in names[:-2]:
        shutil.copy(tmp_path / "parts" / name, arrived)
    damaged = arrived / names[-1]  # cut short in transfer
    damaged.write_bytes((tmp_path / "parts" / names[-1]).read_bytes()[:1000])
    target = tmp_path / "target"

    report = gpu_parts.assemble(arrived, target)
    assert report.unpacked == names[:-2] and report.missing == [names[-2]] and report.damaged == [names[-1]]
    assert not report.complete and report.files == len(contents(target)) < 30
    assert report.line() == f"{report.files} of 30 files ({names[-2]} missing, {names[-1]} damaged)"
    assert gpu_parts.assembly_line(target) == report.line()  # what a run on the folder reports
    assert gpu_parts.assembly_line(folder) is None  # a folder that was not assembled

    for name in names[-2:]:  # the next transfers: the missing part, and the damaged one again
        shutil.copy(tmp_path / "parts" / name, arrived)
    again = gpu_parts.assemble(arrived, target)
    assert again.already == names[:-2] and again.unpacked == names[-2:]  # nothing unpacked twice
    assert again.complete and again.line() == "30 of 30 files" == gpu_parts.assembly_line(target)
    assert contents(target) == contents(folder)  # byte for byte


def test_a_lost_machine_assembles_everything_again(folder, tmp_path):
    gpu_parts.split(folder, tmp_path / "parts", part_mb=0.02)
    gpu_parts.assemble(tmp_path / "parts", tmp_path / "target")
    shutil.rmtree(
        tmp_path / "target"
    )  # a new machine: the unpacked folder is gone, the parts were sent again
    report = gpu_parts.assemble(tmp_path / "parts", tmp_path / "target")
    assert report.already == [] and report.complete and contents(tmp_path / "target") == contents(folder)


def test_mistakes_are_one_line(folder, tmp_path):
    with pytest.raises(UserError, match="assemble: no manifest.json in"):
        gpu_parts.assemble(tmp_path, tmp_path / "target")
    with pytest.raises(UserError, match="split: no images under"):
        gpu_parts.split(tmp_path / "empty", tmp_path / "parts", part_mb=1)
    with pytest.raises(UserError, match="alone is larger than --part-mb"):
        gpu_parts.split(folder, tmp_path / "parts", part_mb=0.0001)
