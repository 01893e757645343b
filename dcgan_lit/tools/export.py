"""Export a trained generator: a standalone state-dict file, a TorchScript module, or an ONNX graph z -> image.

    python -m dcgan_lit.tools.export ckpt_path=outputs/train/.../checkpoints/last.ckpt format=torchscript
    python -m dcgan_lit.tools.export ckpt_path=last.ckpt format=onnx out=generator.onnx

Each export is read back and run on the same seeded latent batch as the PyTorch generator; the largest
absolute difference is printed (and must be within ``tolerance``).

A conditional generator's class is an input of every format: ``sample(n, seed, truncation, labels)`` and
``class_index(name)`` in TorchScript, a second input ``class_weights`` (batch, num_classes) in ONNX (one-hot
rows for a class, mixed rows between classes), and the class names in the state-dict file.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import DictConfig

from dcgan_lit.checkpoint.load import save_generator
from dcgan_lit.errors import UserError
from dcgan_lit.model.networks import Generator, cycled_labels
from dcgan_lit.tools.app import load_networks, tool_main

log = logging.getLogger(__name__)

Sampler = Callable[..., torch.Tensor]  # z (N, latent_dim)[, class weights (N, K)] -> images (N, C, H, W)
SUFFIXES = {
    "state_dict": ".generator.pt",
    "torchscript": ".generator.torchscript.pt",
    "onnx": ".generator.onnx",
}
ONNX_EXPORT_PACKAGES = ("onnx", "onnxscript")  # torch.onnx.export(dynamo=True) needs both


def importable(name: str) -> bool:
    """True when the package ``name`` imports."""
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def export_state_dict(generator: Generator, out: Path) -> Sampler:
    """G's weights and the hyperparameters that rebuild it; read back with ``dcgan_lit.load_generator``."""
    save_generator(generator, out)
    return load_networks(out, "cpu")[0]


def export_torchscript(generator: Generator, out: Path) -> Sampler:
    """A scripted G with ``sample(n, seed, truncation, labels)``: runs with torch alone, no dcgan_lit needed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # torch >= 2.10 marks torch.jit deprecated; it still works
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(generator).save(str(out))
        return torch.jit.load(str(out))


def export_onnx(generator: Generator, out: Path, opset: int = 18) -> Sampler | None:
    """An ONNX graph ``z`` (batch, latent_dim) [+ ``class_weights`` (batch, num_classes)] -> ``images``; the
    onnxruntime session, or None without it."""
    missing = [name for name in ONNX_EXPORT_PACKAGES if not importable(name)]
    if missing:
        raise UserError(
            f"format=onnx needs the packages {' and '.join(missing)}, which are not installed; "
            "install them with: pip install 'dcgan-lit[onnx]'"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    z = generator.sample_latent(2, seed=0)  # batch 2: torch.export specializes batch sizes 0 and 1
    batch = torch.export.Dim("batch")
    inputs, names, shapes = (z,), ["z"], {"z": {0: batch}}
    if generator.num_classes:  # class weights, not indices: one input for a class and for mixtures
        inputs += (torch.eye(generator.num_classes)[[0, generator.num_classes - 1]],)
        names.append("class_weights")
        shapes["labels"] = {0: batch}
    torch.onnx.export(
        generator,
        inputs,
        str(out),
        dynamo=True,  # the maintained exporter (torch.export); needs onnxscript, runs offline
        input_names=names,
        output_names=["images"],
        dynamic_shapes=shapes,
        opset_version=opset,
        external_data=False,  # one self-contained file; DCGAN generators are far below protobuf's 2 GB
        verbose=False,
    )
    if not importable("onnxruntime"):
        return None
    import onnxruntime

    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])

    def run(z: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        feed = {"z": z.cpu().numpy()}
        if weights is not None:
            feed["class_weights"] = weights.cpu().numpy()
        return torch.from_numpy(session.run(None, feed)[0])

    return run


def max_abs_difference(generator: Generator, exported: Sampler, batch: int) -> float:
    """Largest |G(z) - exported(z)| over ``batch`` seeded latent vectors (a conditional G: class weights that
    take each class in turn, plus a half-and-half mixture of the first and last class)."""
    z = generator.sample_latent(batch, seed=0)
    inputs: tuple[torch.Tensor, ...] = (z,)
    if generator.num_classes:
        weights = torch.eye(generator.num_classes)[
            cycled_labels(batch, generator.num_classes, torch.device("cpu"))
        ]
        weights[-1] = 0.0
        weights[-1, [0, -1]] = 0.5
        inputs += (weights,)
    with torch.no_grad():
        return (generator(*inputs) - exported(*inputs)).abs().max().item()


def export(
    ckpt_path: str | Path,
    format: str = "state_dict",
    out: str | Path | None = None,
    ema: bool = True,
    opset: int = 18,
    check_batch: int = 8,
    tolerance: float = 1e-4,
) -> tuple[Path, float | None]:
    """Writes the checkpoint's generator in ``format``; returns the file and its max abs difference to G."""
    if format not in SUFFIXES:
        raise UserError(f"format={format} is not an export format; use one of {sorted(SUFFIXES)}")
    generator, _ = load_networks(ckpt_path, "cpu", ema=ema)
    ckpt_path = Path(ckpt_path).expanduser()
    out = Path(out).expanduser() if out else ckpt_path.with_name(ckpt_path.stem + SUFFIXES[format])
    if out.resolve() == ckpt_path.resolve():
        raise UserError(f"out={out} is the checkpoint itself; choose another file")
    if format == "state_dict":
        exported = export_state_dict(generator, out)
    elif format == "torchscript":
        exported = export_torchscript(generator, out)
    else:
        exported = export_onnx(generator, out, opset)
    if exported is None:
        log.warning(
            "onnxruntime is not installed: %s was not checked against PyTorch (pip install onnxruntime)", out
        )
        return out, None
    difference = max_abs_difference(generator, exported, check_batch)
    if difference > tolerance:
        raise UserError(
            f"the {format} export {out} differs from the PyTorch generator by {difference:.3g} "
            f"(tolerance {tolerance:g}); please report this with your torch version"
        )
    return out, difference


def run(cfg: DictConfig) -> Path:
    """Exports as the config says and tells where it went (and how close it is to PyTorch)."""
    out, difference = export(
        cfg.ckpt_path, cfg.format, cfg.out, cfg.ema, cfg.opset, cfg.check_batch, cfg.tolerance
    )
    size = out.stat().st_size / 1e6
    print(f"wrote {cfg.format} export: {out} ({size:.2f} MB)")
    if difference is not None:
        print(f"max abs difference to the PyTorch generator on {cfg.check_batch} seeded z: {difference:.3g}")
    return out


main = tool_main("export", run)

if __name__ == "__main__":
    main()
