"""Exports and W&B model artifacts from a real 2-iteration training run (offline W&B, best and last checkpoints)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from dcgan_lit import load_discriminator, load_generator
from dcgan_lit.errors import UserError
from dcgan_lit.run.fit import train
from dcgan_lit.tools.export import export
from tests.helpers.config import ROOT, TINY, compose_config
from tests.helpers.images import write_images
from tests.helpers.runs import run_isolated
from tests.helpers.wandb_records import read_artifacts

# Loads the TorchScript file with dcgan_lit made unimportable, and saves what it samples.
STANDALONE = """
import sys
sys.modules["dcgan_lit"] = None  # any import of dcgan_lit now fails
import torch
generator = torch.jit.load(sys.argv[1])
torch.save({"shape": [generator.latent_dim, generator.image_size, generator.channels],
            "seeded": generator.sample(5, 7), "truncated": generator.sample(5, 7, 0.7),
            "loaded": sorted(m for m, v in sys.modules.items() if m.startswith("dcgan_lit") and v)}, sys.argv[2])
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run folder after 2 iterations with W&B offline, a best checkpoint and last.ckpt."""
    root = tmp_path_factory.mktemp("trained")
    write_images(root / "images", 16)
    tiny = [o for o in TINY if not o.startswith("logger=")]
    overrides = [
        "dataset=imagefolder",
        f"dataset.path={root / 'images'}",
        f"paths.cache_dir={root / 'cache'}",
        *tiny,
        "logger=wandb",
        "trainer.max_steps=2",
        "++callbacks.model_checkpoint.monitor=train/loss_g",  # a best checkpoint besides last.ckpt
        "callbacks.model_checkpoint.save_top_k=1",
    ]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WANDB_MODE", "offline")
        env.setenv("WANDB_SILENT", "true")
        for variable in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_ARTIFACT_DIR", "WANDB_CONFIG_DIR"):
            env.setenv(variable, str(root / variable.lower()))
        import wandb

        wandb.finish()  # a run left open elsewhere would swallow this one
        train(compose_config(overrides, root / "run"))
        wandb.finish()  # flush the offline run file
    GlobalHydra.instance().clear()
    return root / "run"


@pytest.mark.slow
def test_same_samples_from_checkpoint_state_dict_and_torchscript(trained, tmp_path):
    checkpoint = trained / "checkpoints" / "last.ckpt"
    from_checkpoint = load_generator(checkpoint)
    state_dict_file, difference = export(checkpoint, "state_dict", tmp_path / "g.pt")
    assert difference == 0.0
    assert state_dict_file.stat().st_size < checkpoint.stat().st_size / 2  # G only, no D, no optimizer
    from_state_dict = load_generator(state_dict_file)
    torchscript_file, difference = export(checkpoint, "torchscript", tmp_path / "g.torchscript.pt")
    assert difference == 0.0

    out = tmp_path / "standalone.pt"
    result = run_isolated(STANDALONE, str(torchscript_file), str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    standalone = torch.load(out, weights_only=True)
    assert standalone["loaded"] == []
    assert standalone["shape"] == [100, 32, 3]

    seeded = from_checkpoint.sample(5, seed=7)
    truncated = from_checkpoint.sample(5, seed=7, truncation=0.7)
    assert seeded.shape == (5, 3, 32, 32)
    assert torch.equal(from_state_dict.sample(5, seed=7), seeded)
    assert torch.equal(from_state_dict.sample(5, seed=7, truncation=0.7), truncated)
    assert torch.equal(standalone["seeded"], seeded)
    assert torch.equal(standalone["truncated"], truncated)
    with pytest.raises(UserError, match="TorchScript.*torch.jit.load"):
        load_generator(torchscript_file)
    with pytest.raises(UserError, match="holds no discriminator weights.*only the generator"):
        load_discriminator(state_dict_file)


def test_onnx_matches_pytorch(trained, tmp_path):
    onnxruntime = pytest.importorskip(
        "onnxruntime", reason="onnxruntime is not installed (pip install '.[onnx]')"
    )
    pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install '.[onnx]')")
    checkpoint = trained / "checkpoints" / "last.ckpt"
    path, difference = export(checkpoint, "onnx")
    assert path == checkpoint.with_name("last.generator.onnx")
    assert difference is not None and difference <= 1e-4
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = load_generator(checkpoint)
    z = generator.sample_latent(5, seed=1)  # a batch size other than the one traced
    images = session.run(None, {"z": z.numpy()})[0]
    assert images.shape == (5, 3, 32, 32)
    assert (torch.from_numpy(images) - generator(z)).abs().max().item() <= 1e-4


def test_onnx_without_its_packages_is_a_clear_message(trained, tmp_path, monkeypatch):
    checkpoint = trained / "checkpoints" / "last.ckpt"
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if not installed
    with pytest.raises(UserError, match=r"onnxscript.*pip install 'dcgan-lit\[onnx\]'"):
        export(checkpoint, "onnx", tmp_path / "g.onnx")
    assert not (tmp_path / "g.onnx").exists()


def test_onnx_without_onnxruntime_is_written_unchecked(trained, tmp_path, monkeypatch, caplog):
    pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install '.[onnx]')")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    path, difference = export(trained / "checkpoints" / "last.ckpt", "onnx", tmp_path / "g.onnx")
    assert difference is None and path.stat().st_size > 100_000
    assert "onnxruntime is not installed" in caplog.text


def test_wandb_offline_run_records_checkpoint_and_generator_artifacts(trained):
    artifacts = read_artifacts(trained / "wandb")
    run_id = next((trained / "wandb").glob("offline-run-*")).name.rsplit("-", 1)[-1]

    checkpoints = [a for a in artifacts if a["name"] == f"model-{run_id}"]
    assert {a["type"] for a in checkpoints} == {"model"}
    originals = {a["metadata"]["original_filename"]: a["aliases"] for a in checkpoints}
    assert originals.keys() == {"last.ckpt", "epoch_000.ckpt"}
    assert "best" in originals["epoch_000.ckpt"]

    (generator,) = [a for a in artifacts if a["name"] == f"generator-{run_id}"]
    assert generator["type"] == "model" and generator["aliases"] == ["latest"]
    assert generator["metadata"]["image_size"] == 32 and generator["metadata"]["iteration"] == 2
    (name, size, staged), *_ = generator["files"]
    assert name == "generator.pt" and size == (trained / "generator.pt").stat().st_size
    assert Path(staged).read_bytes() == (trained / "generator.pt").read_bytes()  # what `wandb sync` uploads
    final = load_generator(trained / "generator.pt")
    assert torch.equal(
        final.sample(3, seed=0), load_generator(trained / "checkpoints/last.ckpt").sample(3, seed=0)
    )


@pytest.mark.slow
def test_cli_writes_an_export_and_reports_the_check(trained, tmp_path):
    out = tmp_path / "exported" / "g.pt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's dcgan_lit, run from another folder
    command = [
        sys.executable,
        "-m",
        "dcgan_lit.tools.export",
        f"ckpt_path={trained / 'checkpoints/last.ckpt'}",
        f"out={out}",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"wrote state_dict export: {out}" in result.stdout
    assert "max abs difference to the PyTorch generator on 8 seeded z: 0" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported"]  # no run folder, no log file
    final = load_generator(trained / "generator.pt")
    assert torch.equal(load_generator(out).sample(2, seed=1), final.sample(2, seed=1))


def test_bad_export_arguments_are_clear(trained, tmp_path):
    checkpoint = trained / "checkpoints" / "last.ckpt"
    with pytest.raises(UserError, match="format=pickle is not an export format"):
        export(checkpoint, "pickle")
    with pytest.raises(UserError, match="is the checkpoint itself"):
        export(checkpoint, "state_dict", checkpoint)
