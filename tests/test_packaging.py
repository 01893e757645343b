"""The installed package outside a checkout: the wheel carries the configs, and a tool runs from it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import tomllib

from tests.helpers.config import ROOT


def test_the_wheel_lists_every_sub_package():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "dcgan_lit").rglob("__init__.py")}
    assert set(declared) == on_disk | {"dcgan_lit.conf"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built from a copy of the files it is made of (the checkout stays clean)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("dcgan_lit", "conf"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        dist,
        source,
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    [built] = dist.glob("dcgan_lit-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_carries_every_config(wheel):
    with zipfile.ZipFile(wheel) as archive:
        packed = {name for name in archive.namelist() if name.startswith("dcgan_lit/conf/")}
    configs = {
        f"dcgan_lit/conf/{p.relative_to(ROOT / 'conf').as_posix()}" for p in (ROOT / "conf").rglob("*.yaml")
    }
    assert configs and packed == configs


@pytest.mark.slow
def test_a_tool_runs_from_the_installed_wheel_outside_the_checkout(wheel, tiny_run, tmp_path):
    """A fresh environment holding only the wheel (its dependencies are this environment's, read through a path
    entry: nothing of the checkout is importable), run from a folder outside the checkout."""
    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", fresh], check=True, timeout=120)
    python = fresh / "bin" / "python"
    install = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--no-deps",
        "--no-index",
        "-q",
        wheel,
    ]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
        ).strip()
    )
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")  # a plain path: no .pth runs
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.check_output(
        [python, "-c", "import dcgan_lit; print(dcgan_lit.__file__)"], cwd=elsewhere, env=env, text=True
    )
    assert Path(where.strip()).is_relative_to(site)  # the installed copy, not the checkout
    out = tmp_path / "images"
    command = [
        python,
        "-m",
        "dcgan_lit.tools.generate",
        f"ckpt_path={tiny_run / 'checkpoints' / 'last.ckpt'}",
        "num_images=3",
        f"out={out}",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    result = subprocess.run(command, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.suffix for p in out.iterdir()) == [".png"] * 3
