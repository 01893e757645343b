"""docs/architecture.md's rules, read from the code's imports and calls (AST): no import up the floors, torch.load
and torch.save only in checkpoint/, and the tools load networks through tools/app.py alone. Each rule is also
shown to fail on a planted violation."""

from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.config import ROOT

# The rooms of dcgan_lit/ by floor: a room imports only rooms on lower floors (and itself). Rooms on one floor
# do not import each other (run/ and tools/ are two uses of the same rooms).
FLOORS = {
    "errors": 0,
    "pixels": 0,
    "progress": 0,
    "batches": 1,  # what a training step receives: blocks of real batches
    "model": 2,  # the algorithm: torch and Lightning only
    "checkpoint": 3,  # files: networks rebuilt from them
    "data": 4,  # knows nothing of the model (a floor above it, but never imported)
    "api": 4,
    "metrics": 5,
    "callbacks": 6,
    "run": 7,
    "tools": 7,
    "__init__": 8,
}
NEVER = {("data", "model")}  # allowed by the floors, ruled out by the design
# Reading and writing tensor files: only checkpoint/ calls torch directly (benchmarks included).
FILE_CALLS = {"torch.load", "torch.save"}
# Loading a trained G or D: in tools/, only app.py (load_networks) does.
NETWORK_LOADERS = {
    "load_generator",
    "load_discriminator",
    "generator_from_checkpoint",
    "discriminator_from_checkpoint",
    "generator_from_state",
    "load_weights",
    "read_weights_only",
}


@dataclass(frozen=True)
class Imported:
    module: str  # dcgan_lit.x.y
    names: tuple[str, ...]
    line: int


def room_of(path: Path, package: Path) -> str:
    parts = path.relative_to(package).with_suffix("").parts
    return parts[0]


def imports(tree: ast.AST) -> list[Imported]:
    """Every import of dcgan_lit in a module, at any depth (lazy imports inside functions too)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "dcgan_lit" or node.module.startswith("dcgan_lit."):
                found.append(Imported(node.module, tuple(a.name for a in node.names), node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dcgan_lit"):
                    found.append(Imported(alias.name, (), node.lineno))
    return found


def target_room(imported: Imported) -> str:
    parts = imported.module.split(".")
    if len(parts) > 1:
        return parts[1]
    # ``from dcgan_lit import errors`` names a room; ``from dcgan_lit import load_generator`` the package
    return imported.names[0] if imported.names and imported.names[0] in FLOORS else "__init__"


def calls(tree: ast.AST) -> list[tuple[str, int]]:
    """``torch.x(...)`` calls and names imported from torch (``from torch import load``), as ``torch.x``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            value = node.func.value
            if isinstance(value, ast.Name) and value.id == "torch":
                found.append((f"torch.{node.func.attr}", node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.module == "torch":
            found += [(f"torch.{a.name}", node.lineno) for a in node.names]
    return found


def violations(root: Path) -> list[str]:
    """Every broken rule in the tree at ``root`` (its dcgan_lit/ and benchmarks/), as ``file:line: why``."""
    package = root / "dcgan_lit"
    found = []
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(root)
        tree = ast.parse(path.read_text())
        room = room_of(path, package)
        assert room in FLOORS, f"{where}: a new room; give it a floor in FLOORS and docs/architecture.md"
        for imported in imports(tree):
            other = target_room(imported)
            if other == room:
                continue
            if FLOORS[other] >= FLOORS[room] or (room, other) in NEVER:
                found.append(f"{where}:{imported.line}: {room}/ imports {other} ({imported.module})")
            loaders = NETWORK_LOADERS.intersection(imported.names)
            if room == "tools" and path.name != "app.py" and loaders:
                found.append(f"{where}:{imported.line}: loads networks with {sorted(loaders)}, not app.py")
        for name, line in calls(tree):
            if name in FILE_CALLS and room != "checkpoint":
                found.append(f"{where}:{line}: {name} outside checkpoint/")
    for path in sorted((root / "benchmarks").rglob("*.py")):
        for name, line in calls(ast.parse(path.read_text())):
            if name in FILE_CALLS:
                found.append(f"{path.relative_to(root)}:{line}: {name} outside checkpoint/")
    return found


def test_the_code_keeps_the_architecture():
    assert violations(ROOT) == []


def test_every_room_is_in_the_architecture_page():
    page = (ROOT / "docs" / "architecture.md").read_text()
    rooms = {
        p.name if p.is_dir() else p.stem for p in (ROOT / "dcgan_lit").iterdir() if p.name != "__pycache__"
    }
    assert {r for r in rooms if r != "__init__" and r not in page} == set()
    assert rooms - {"__init__"} <= set(FLOORS)


@pytest.fixture
def tree(tmp_path):
    """A copy of the code to plant violations in."""
    for name in ("dcgan_lit", "benchmarks"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


@pytest.mark.parametrize(
    ("file", "code", "why"),
    [
        ("dcgan_lit/model/planted.py", "from dcgan_lit.run.fit import train\n", "model/ imports run"),
        (
            "dcgan_lit/model/planted.py",
            "def f():\n    import dcgan_lit.callbacks\n",
            "model/ imports callbacks",
        ),
        (
            "dcgan_lit/data/planted.py",
            "from dcgan_lit.model.networks import Generator\n",
            "data/ imports model",
        ),
        ("dcgan_lit/tools/planted.py", "from dcgan_lit.run import fit\n", "tools/ imports run"),
        ("dcgan_lit/metrics/planted.py", "import torch\ntorch.load('x')\n", "torch.load outside checkpoint/"),
        ("dcgan_lit/data/planted.py", "from torch import save\n", "torch.save outside checkpoint/"),
        ("benchmarks/planted.py", "import torch\ntorch.save({}, 'x')\n", "torch.save outside checkpoint/"),
        (
            "dcgan_lit/tools/planted.py",
            "from dcgan_lit.api import load_generator\n",
            "loads networks with ['load_generator'], not app.py",
        ),
    ],
)
def test_a_planted_violation_is_found(tree, file, code, why):
    assert violations(tree) == []
    (tree / file).write_text(code)
    [found] = violations(tree)
    assert found.startswith(f"{file}:") and why in found
