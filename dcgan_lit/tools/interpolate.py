"""Interpolate between two or more latent points, linearly and spherically: one row of images per pair.

python -m dcgan_lit.tools.interpolate ckpt_path=last.ckpt seeds=[1,2,3] steps=10 mode=both gif=true
python -m dcgan_lit.tools.interpolate ckpt_path=last.ckpt z_path=top_k.pt indices=[0,3]
python -m dcgan_lit.tools.interpolate ckpt_path=last.ckpt classes=[horse,bird] seeds=[0,1,2,3]   (conditional G:
    from class to class at each fixed z, class weights (1 - t) * horse + t * bird)
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from dcgan_lit.api import save_grid, to_pil
from dcgan_lit.errors import UserError
from dcgan_lit.model.conditional import class_interpolation
from dcgan_lit.model.networks import Generator
from dcgan_lit.model.sampling import generate
from dcgan_lit.tools.app import load_networks, progress, tool_main, wrote
from dcgan_lit.tools.drawing import save_gif
from dcgan_lit.tools.latent import INTERPOLATIONS, latent_points, point_classes, resolve_class


def interpolation_rows(points: torch.Tensor, steps: int, modes: list[str]) -> torch.Tensor:
    """(pairs * len(modes), steps, latent_dim): a path of ``steps`` points from each point to the next."""
    t = torch.linspace(0, 1, steps)
    rows = [
        INTERPOLATIONS[mode](start, end, t)
        for start, end in zip(points[:-1], points[1:], strict=True)
        for mode in modes
    ]
    return torch.stack(rows)


def run(cfg: DictConfig) -> dict:
    """Writes the interpolation grid (and GIF); returns the latent rows and their images."""
    modes = ["lerp", "slerp"] if cfg.mode == "both" else [cfg.mode]
    if any(mode not in INTERPOLATIONS for mode in modes):
        raise UserError(f"mode={cfg.mode!r} is not supported; use slerp, lerp or both")
    if cfg.steps < 2:
        raise UserError(f"steps={cfg.steps} must be at least 2 (the two end points)")
    generator, _ = load_networks(cfg.ckpt_path, cfg.device)
    points, recorded = latent_points(generator, cfg.seeds, cfg.z_path, cfg.indices)
    if cfg.get("classes"):
        return between_classes(cfg, generator, points)
    if len(points) < 2:
        raise UserError(f"interpolation needs at least 2 latent points, got {len(points)}; e.g. seeds=[0,1]")
    rows = interpolation_rows(points, cfg.steps, modes)
    # a conditional G: one class per pair, its start point's
    classes = point_classes(generator, cfg.get("class"), len(points), recorded)
    pair_classes = classes[:-1] if classes is not None else None
    labels = pair_classes.repeat_interleave(len(modes) * cfg.steps) if pair_classes is not None else None
    images = generate(generator, rows.flatten(0, 1), cfg.batch_size, progress, labels=labels)
    images = images.unflatten(0, rows.shape[:2])
    out = save_grid(images.flatten(0, 1), cfg.out, nrow=cfg.steps)
    wrote(out, f"{len(rows)} rows of {cfg.steps} steps ({cfg.mode})")
    if cfg.gif:
        # Through every point and back, the first mode's path; each row's last frame is the next row's first.
        path = images[:: len(modes)]
        frames = [image for row in path for image in row[:-1]] + [path[-1][-1]]
        frames += frames[-2:0:-1]
        gif = save_gif([to_pil(frame)[0] for frame in frames], out.with_suffix(".gif"), cfg.gif_frame_ms)
        wrote(gif, f"a {len(frames)}-frame GIF")
    return {"z": rows, "images": images, "points": points}


def between_classes(cfg: DictConfig, generator: Generator, points: torch.Tensor) -> dict:
    """The class interpolation sheet: per latent point, a row from class to class at that fixed z."""
    classes = [resolve_class(generator, value) for value in cfg.classes]
    if len(classes) < 2:
        raise UserError(
            f"classes={list(cfg.classes)} needs at least 2 classes to go between, e.g. [horse,bird]"
        )
    images = class_interpolation(generator, points, classes, cfg.steps, cfg.batch_size)
    out = save_grid(images.flatten(0, 1), cfg.out, nrow=cfg.steps)
    names = " -> ".join(generator.class_names[index] for index in classes)
    wrote(out, f"{len(images)} rows (fixed z's) of {cfg.steps} steps, {names}")
    if cfg.gif:  # the first z's path and back
        frames = [image for row in images[: len(classes) - 1] for image in row[:-1]] + [
            images[len(classes) - 2][-1]
        ]
        frames += frames[-2:0:-1]
        gif = save_gif([to_pil(frame)[0] for frame in frames], out.with_suffix(".gif"), cfg.gif_frame_ms)
        wrote(gif, f"a {len(frames)}-frame GIF")
    return {"z": points, "images": images, "classes": classes}


main = tool_main("interpolate", run)

if __name__ == "__main__":
    main()
