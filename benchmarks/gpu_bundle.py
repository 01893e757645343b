"""Packs what `make gpu-check` needs on a bare GPU machine without network into one folder of at most 60 MB.

    python -m benchmarks.gpu_bundle                 # make gpu-bundle: writes .gpu/ (git-ignored)
    python -m benchmarks.gpu_bundle --images 1000 --no-wheels --out <folder>
    python -m benchmarks.gpu_bundle --speed-only    # the wheels alone (a few MB): the graph and speed checks,
                                                    # no quality benchmark (gpu_check.sh skips it, saying so)

The machine is assumed to have Python with PyTorch, Lightning, torchmetrics, Rich and Pillow, and nothing else
(no network). The folder holds:
  wheels/               the pure-Python packages dcgan-lit needs beyond those (hydra-core, omegaconf, antlr4
                        runtime, torch-fidelity), built with `pip wheel` at the versions installed where
                        this runs
  inception-fp16.pth    the FID Inception's weights as a float16 state_dict (48 MB: the float32 one, 96 MB,
                        is over the limit); its features are within 0.4% of the exact weights' (docs/gpu.md) and
                        its FIDs are named `...-torch-fidelity-fp16`, never mixed with exact-weight caches
  cifar10/<class>/      a fixed random N of CIFAR-10's training PNGs (all 50,000 are 147 MB)
  manifest.json         what is in it, its size, and where each part came from
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from dcgan_lit.checkpoint.io import atomic_torch_save, load_state_dict_file
from dcgan_lit.data.images import find_images
from dcgan_lit.errors import UserError, exit_on_user_error
from dcgan_lit.metrics.inception import prepare_weights

PACKAGES = ("hydra-core", "omegaconf", "antlr4-python3-runtime", "torch-fidelity")
LIMIT_MB = 60.0


def half_precision_weights(cache_dir: str | None, path: Path) -> Path:
    """The installed FID Inception (found as training finds it) written as a float16 state_dict."""
    prepared = prepare_weights(None, cache_dir=cache_dir)
    state = load_state_dict_file(prepared.file, "FID: the Inception weights")
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    atomic_torch_save(half, path)
    return path


def copy_images(source: Path, target: Path, count: int, seed: int = 0) -> int:
    """A fixed random ``count`` of the images under ``source``, copied with their class folders."""
    files = find_images(source)
    if not files:
        raise UserError(f"gpu_bundle: no images under {source}; pass --data <CIFAR-10 train folder>")
    order = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed))[
        : min(count, len(files))
    ]
    for index in order.sort().values.tolist():
        destination = target / files[index].relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(files[index], destination)
    return len(order)


def build_wheels(target: Path) -> list[str]:
    """Pure-Python wheels of :data:`PACKAGES` at the installed versions (pip may fetch their sources)."""
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in PACKAGES]
    target.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(target), *pins]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        last = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise UserError(
            f"gpu_bundle: pip wheel {' '.join(pins)} failed ({last}); is a package index reachable?"
        )
    return pins


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def bundle(
    out: Path, data: Path, images: int, wheels: bool, cache_dir: str | None, speed_only: bool = False
) -> dict:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    manifest = {"wheels": build_wheels(out / "wheels") if wheels else []}
    if not speed_only:  # what the quality benchmark needs: FID's network and training images
        manifest["inception"] = str(half_precision_weights(cache_dir, out / "inception-fp16.pth").name)
        manifest["images"] = copy_images(data, out / "cifar10", images)
        manifest["images_from"] = str(data)
    manifest["size_mb"] = round(folder_mb(out), 1)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    if manifest["size_mb"] > LIMIT_MB:
        raise UserError(
            f"gpu_bundle: {out} is {manifest['size_mb']} MB, over {LIMIT_MB} MB; pass fewer --images"
        )
    print(f"wrote {out}: {manifest}")
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("DCGAN_DATA_DIR", "data")) / "cifar10" / "train"
    parser.add_argument("--out", type=Path, default=Path(".gpu"))
    parser.add_argument("--data", type=Path, default=default_data, help="CIFAR-10's train folder")
    parser.add_argument("--images", type=int, default=3000, help="training images to carry")
    parser.add_argument(
        "--no-wheels", dest="wheels", action="store_false", help="the target has the packages"
    )
    default_cache = os.environ.get("DCGAN_CACHE_DIR", str(Path.home() / ".cache" / "dcgan_lit"))
    parser.add_argument("--cache-dir", default=default_cache, help="where the Inception conversion is cached")
    parser.add_argument(
        "--speed-only", action="store_true", help="the wheels alone: no FID weights, no images"
    )
    args = parser.parse_args(argv)
    exit_on_user_error(
        lambda: bundle(args.out, args.data, args.images, args.wheels, args.cache_dir, args.speed_only)
    )


if __name__ == "__main__":
    main()
