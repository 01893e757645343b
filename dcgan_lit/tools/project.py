"""Project real images into G's latent space (the z, and class, whose G(z) is nearest), and a memorization score.

python -m dcgan_lit.tools.project ckpt_path=last.ckpt target=photo.png           # or a folder, or target=train
python -m dcgan_lit.tools.project ckpt_path=last.ckpt mode=memorization heldout=<held-out folder> num_images=64
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from omegaconf import DictConfig
from PIL import Image

from dcgan_lit.data.images import decode_images, find_images
from dcgan_lit.errors import UserError
from dcgan_lit.model.networks import Generator
from dcgan_lit.pixels import from_uint8
from dcgan_lit.tools.app import console, load_networks, progress, require_indices, tool_main, wrote
from dcgan_lit.tools.drawing import labelled_grid, save_gif, save_image, titled
from dcgan_lit.tools.latent import save_z
from dcgan_lit.tools.projection import (
    PIXEL_LOSSES,
    DiscriminatorFeatures,
    Distance,
    Perceptual,
    Projection,
    default_vgg16_file,
    project,
    reconstruction_errors,
    untrained_generator,
)
from dcgan_lit.tools.training_data import training_images

MODES = ("project", "memorization")


def note(line: str) -> None:
    """One line about what the tool is (not) using."""
    console.print(f"[yellow]note[/] {line}")


def pick(count: int, wanted: int | None, seed: int) -> list[int]:
    """``wanted`` of ``count`` items, a seeded random choice in their order; all of them when null or enough."""
    if wanted is None or wanted >= count:
        return list(range(count))
    return sorted(torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:wanted].tolist())


def folder_images(
    path: str, key: str, generator: Generator, wanted: int | None, seed: int
) -> tuple[torch.Tensor, list[str]]:
    """uint8 images (N, C, size, size) and their names from an image file or a folder (recursive).

    They are decoded as training decodes (shorter side resized to G's size, centre crop, G's channels).
    """
    root = Path(path).expanduser()
    if root.is_file():
        files, base = [root], root.parent
    elif root.is_dir():
        files, base = find_images(root), root
        if not files:
            raise UserError(f"{key}={root}: no image files (jpg, png, webp, bmp) under this folder")
    else:
        raise UserError(f"{key}={root}: no such file or folder; pass an image file or a folder of images")
    files = [files[i] for i in pick(len(files), wanted, seed)]
    images, skipped = decode_images(files, generator.image_size, generator.channels)
    if skipped:
        note(f"{key}: skipped {len(skipped)} unreadable file(s), e.g. {skipped[0][0]}: {skipped[0][1]}")
    if not len(images):
        raise UserError(f"{key}={root}: none of the {len(files)} files could be read as an image")
    bad = {path for path, _ in skipped}
    return images, [str(f.relative_to(base)) for f in files if f not in bad]


def run_training_images(cfg: DictConfig, generator: Generator) -> tuple[torch.Tensor, list[str]]:
    """``num_images`` of the run's training images (or of ``data=<folder>``), a seeded pick, named by index."""
    train = training_images(
        cfg.ckpt_path, cfg.data, generator.image_size, generator.channels, cfg.paths.cache_dir
    )
    picked = pick(len(train), cfg.num_images, cfg.seed)
    return train[picked], [f"train#{i}" for i in picked]


def build_distance(cfg: DictConfig) -> tuple[Distance, DiscriminatorFeatures | None]:
    """The objective from the config, and D's features for the reported error (None without a saved D)."""
    features = None
    try:
        _, discriminator = load_networks(cfg.ckpt_path, cfg.device, generator=False, discriminator=True)
        features = DiscriminatorFeatures(discriminator)
    except UserError as error:
        reason = str(error).split(";")[0]  # e.g. "checkpoint <file> holds no discriminator weights (...)"
        note(f"D-feature distance: not used ({reason}); the objective is pixels only")
    terms = {}
    if features is not None:
        terms["feature"] = (float(cfg.feature_weight), features)
    if cfg.perceptual_weight > 0:
        weights = (
            Path(cfg.perceptual_weights).expanduser() if cfg.perceptual_weights else default_vgg16_file()
        )
        if weights.is_file():
            device = next(features.parameters()).device if features else None
            terms["perceptual"] = (float(cfg.perceptual_weight), Perceptual(weights).to(device))
            note(f"perceptual distance: VGG16 relu1_2/2_2/3_3 from {weights}")
        elif cfg.perceptual_weights:
            raise UserError(
                f"perceptual_weights={weights}: no such file; give torchvision's VGG16 state dict"
            )
        else:
            note(f"perceptual distance: not used (no VGG16 weights at {weights}; put {weights.name} there)")
    return Distance(cfg.pixel_loss, terms), features


def checked_classes(cfg: DictConfig, generator: Generator) -> list[int] | None:
    """The classes a conditional G tries (all by default); none for an unconditional G."""
    if not generator.num_classes:
        if cfg.classes:
            raise UserError(f"classes={list(cfg.classes)}: this generator is not class-conditional")
        return None
    if cfg.classes is None:
        return list(range(generator.num_classes))
    return require_indices("classes", cfg.classes, generator.num_classes)


def pairs_figure(
    targets: torch.Tensor, reconstructions: torch.Tensor, labels: list[str] | None = None
) -> Image.Image:
    """Target | reconstruction pairs side by side, about as many pairs per row as rows."""
    per_row = max(1, math.ceil(math.sqrt(len(targets))))
    tiles = torch.stack([targets, reconstructions], 1).flatten(0, 1)
    return labelled_grid(tiles, 2 * per_row, labels)


def write_projection(
    cfg: DictConfig,
    out: Path,
    generator: Generator,
    distance: Distance,
    features: DiscriminatorFeatures | None,
    targets: torch.Tensor,
    names: list[str],
    source: str,
) -> dict:
    """Projects ``targets`` (uint8) and writes projection.png, projection.gif, projected.pt and projection.json."""
    result: Projection = project(
        generator,
        from_uint8(targets),
        distance,
        steps=cfg.steps,
        starts=cfg.starts,
        lr=cfg.lr,
        z_reg=cfg.z_reg,
        seed=cfg.seed,
        classes=checked_classes(cfg, generator),
        batch_size=cfg.batch_size,
        frames=cfg.gif_frames if cfg.gif else 0,
        frame_images=cfg.gif_images,
        progress=progress,
    )
    errors = reconstruction_errors(result.images, targets, features)
    rows = []
    for index, name in enumerate(names):
        row = {"name": name, **{k: round(float(v[index]), 6) for k, v in errors.items()}}
        row.update(distance=float(result.distance[index]), start_distance=float(result.start_distance[index]))
        row["start"] = int(result.start[index])
        if result.labels is not None:
            row["class"] = int(result.labels[index])
            if generator.class_names:
                row["class_name"] = generator.class_names[row["class"]]
        rows.append(row)
    mean = {k: float(v.mean()) for k, v in errors.items()} | {"distance": float(result.distance.mean())}
    sem = {k: float(v.std() / len(v) ** 0.5) if len(v) > 1 else 0.0 for k, v in errors.items()}
    report = {
        "ckpt_path": str(cfg.ckpt_path),
        "generator": "untrained" if cfg.untrained else "trained",
        "source": source,
        "num_images": len(names),
        "settings": {
            "steps": cfg.steps,
            "starts": cfg.starts,
            "lr": cfg.lr,
            "z_reg": cfg.z_reg,
            "pixel_loss": cfg.pixel_loss,
            "terms": distance.weights,
            "seed": cfg.seed,
        },
        "mean": mean,
        "sem": sem,  # standard errors of the means
        "images": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    captions = [c for row in rows for c in (Path(row["name"]).name[-10:], caption(row))]
    grid = save_image(pairs_figure(from_uint8(targets), result.images, captions), out / "projection.png")
    wrote(grid, "target | reconstruction pairs (captions: name, pixel MSE)")
    if result.frames:
        shown = from_uint8(targets[: len(result.frames[0])])
        frames = [
            titled(pairs_figure(shown, frame), f"step {step}/{cfg.steps}")
            for step, frame in zip(result.frame_steps, result.frames, strict=True)
        ]
        durations = [cfg.gif_frame_ms] * (len(frames) - 1) + [1500]  # the result stays a moment
        gif = save_gif(frames, out / "projection.gif", durations, colors=cfg.gif_colors)
        wrote(gif, f"the optimisation of the first {len(shown)} images, {len(frames)} frames")
    extra = {"mse": errors["mse"], "start": result.start}
    if result.labels is not None:
        extra["labels"] = result.labels
    wrote(
        save_z(out / "projected.pt", result.z, **extra),
        "their z's (interpolate/walk/arithmetic/search z_path=)",
    )
    (out / "projection.json").write_text(json.dumps(report, indent=1))
    wrote(out / "projection.json", "per-image reconstruction errors and their mean")
    console.print(
        f"{source}: {len(names)} images, mean pixel MSE {mean['mse']:.5f}, PSNR {mean['psnr']:.2f} dB, "
        f"SSIM {mean['ssim']:.3f} ({report['generator']} G)"
    )
    return {**report, "projection": result, "errors": errors}


def caption(row: dict) -> str:
    """A reconstruction's caption: its pixel MSE, and its class for a conditional G."""
    return (f"c{row['class']} " if "class" in row else "") + f"{row['mse']:.4f}"


def run(cfg: DictConfig) -> dict:
    """Projects ``target`` (mode=project), or training vs held-out images (mode=memorization); returns the report."""
    if cfg.mode not in MODES:
        raise UserError(f"mode={cfg.mode!r} is unknown; use project or memorization")
    if cfg.mode == "project" and not cfg.target:
        raise UserError("target= is missing: an image file, a folder of images, or train (the run's images)")
    if cfg.mode == "memorization" and not cfg.heldout:
        raise UserError(
            "mode=memorization needs heldout=<folder of held-out images from the training source>"
        )
    if cfg.steps < 1 or cfg.starts < 1:
        raise UserError(f"steps={cfg.steps} and starts={cfg.starts} must both be at least 1")
    if cfg.pixel_loss not in PIXEL_LOSSES:
        raise UserError(f"pixel_loss={cfg.pixel_loss!r} is unknown; use one of {sorted(PIXEL_LOSSES)}")
    generator, _ = load_networks(cfg.ckpt_path, cfg.device)
    checked_classes(cfg, generator)
    if cfg.untrained:
        generator = untrained_generator(generator, cfg.seed)
        note("untrained=true: the paper's random init, BatchNorm statistics measured on random z")
    out = Path(cfg.out_dir)
    if cfg.mode == "project":
        if str(cfg.target) == "train":
            targets, names = run_training_images(cfg, generator)
        else:
            targets, names = folder_images(cfg.target, "target", generator, cfg.num_images, cfg.seed)
        distance, features = build_distance(cfg)
        return write_projection(cfg, out, generator, distance, features, targets, names, str(cfg.target))
    train, train_names = run_training_images(cfg, generator)
    heldout, heldout_names = folder_images(cfg.heldout, "heldout", generator, cfg.num_images, cfg.seed)
    distance, features = build_distance(cfg)
    sides = {
        "train": write_projection(
            cfg, out / "train", generator, distance, features, train, train_names, cfg.data or "train"
        ),
        "heldout": write_projection(
            cfg, out / "heldout", generator, distance, features, heldout, heldout_names, str(cfg.heldout)
        ),
    }
    return memorization_report(cfg, out, sides)


def memorization_report(cfg: DictConfig, out: Path, sides: dict[str, dict]) -> dict:
    """Writes memorization.json: both sides' mean errors and the score, train MSE / held-out MSE."""
    means = {name: side["mean"] for name, side in sides.items()}
    sems = {name: side["sem"] for name, side in sides.items()}
    ratios = {k: means["train"][k] / means["heldout"][k] for k in ("mse", "feature") if k in means["train"]}
    report = {
        "ckpt_path": str(cfg.ckpt_path),
        "generator": "untrained" if cfg.untrained else "trained",
        "num_images": {name: side["num_images"] for name, side in sides.items()},
        "sources": {name: side["source"] for name, side in sides.items()},
        "mean": means,
        "sem": sems,
        "ratio": ratios,
        "score": ratios["mse"],
    }
    (out / "memorization.json").write_text(json.dumps(report, indent=1))
    wrote(out / "memorization.json", "the memorization score and both sides' mean errors")
    train, heldout = (f"{means[k]['mse']:.5f} ± {sems[k]['mse']:.5f}" for k in ("train", "heldout"))
    console.print(
        f"memorization score (train MSE / held-out MSE): {report['score']:.3f} = {train} / {heldout}; "
        "about 1: no sign of memorization, well below 1: G reconstructs its training images better"
    )
    return {**report, "sides": sides}


main = tool_main("project", run)

if __name__ == "__main__":
    main()
