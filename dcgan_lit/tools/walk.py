"""Walk the latent space (paper, section 6.1): move one dimension of z by +-delta, one row per dimension and start.

python -m dcgan_lit.tools.walk ckpt_path=last.ckpt dim=all
python -m dcgan_lit.tools.walk ckpt_path=last.ckpt dim=[3,17] seeds=[0,1] delta=3 steps=11 gif=true
python -m dcgan_lit.tools.walk ckpt_path=last.ckpt class=horse dim=[3,17]      (a conditional G: within a class)
"""

from __future__ import annotations

import math

import torch
from omegaconf import DictConfig, ListConfig

from dcgan_lit.api import grid, save_grid, to_pil
from dcgan_lit.errors import UserError
from dcgan_lit.model.sampling import generate
from dcgan_lit.tools.app import load_networks, progress, tool_main, wrote
from dcgan_lit.tools.drawing import save_gif
from dcgan_lit.tools.latent import latent_points, point_classes


def walked_dims(dim: int | str | list[int] | ListConfig, latent_dim: int) -> list[int]:
    """``all``, one index or a list of indices -> the dimensions to walk, checked against latent_dim."""
    if str(dim) == "all":
        return list(range(latent_dim))
    dims = list(dim) if isinstance(dim, list | ListConfig) else [dim]
    if not dims or any(not isinstance(d, int) or not 0 <= d < latent_dim for d in dims):
        raise UserError(
            f"dim={dim} must be 'all', or latent dimensions in 0..{latent_dim - 1}, e.g. dim=7 or dim=[3,17]"
        )
    return dims


def walk_rows(points: torch.Tensor, dims: list[int], delta: float, steps: int) -> torch.Tensor:
    """(len(dims) * len(points), steps, latent_dim): each start point with one dimension moved by -delta..+delta."""
    offsets = torch.linspace(-delta, delta, steps)
    rows = []
    for dim in dims:
        for point in points:
            row = point.repeat(steps, 1)
            row[:, dim] += offsets
            rows.append(row)
    return torch.stack(rows)


def run(cfg: DictConfig) -> dict:
    """Writes the walk grid (and GIF); returns the walked z's, their images and the dimensions."""
    if cfg.steps < 2:
        raise UserError(f"steps={cfg.steps} must be at least 2")
    generator, _ = load_networks(cfg.ckpt_path, cfg.device)
    dims = walked_dims(cfg.dim, generator.latent_dim)
    points, recorded = latent_points(generator, cfg.seeds, cfg.z_path, cfg.indices)
    rows = walk_rows(points, dims, float(cfg.delta), cfg.steps)
    classes = point_classes(generator, cfg.get("class"), len(points), recorded)  # per start point
    labels = classes.repeat(len(dims)).repeat_interleave(cfg.steps) if classes is not None else None
    images = generate(generator, rows.flatten(0, 1), cfg.batch_size, progress, "Walking", labels=labels)
    images = images.unflatten(0, rows.shape[:2])
    out = save_grid(images.flatten(0, 1), cfg.out, nrow=cfg.steps)
    wrote(
        out,
        f"{len(rows)} rows ({len(dims)} dimensions x {len(points)} starts), {cfg.steps} steps of +-{cfg.delta}",
    )
    if cfg.gif:
        # Frame j shows step j of every row, laid out as a square-ish grid; then back again.
        columns = math.ceil(math.sqrt(len(rows)))
        frames = [grid(images[:, step], nrow=columns, pad_value=1.0) for step in range(cfg.steps)]
        frames += frames[-2:0:-1]
        gif = save_gif([to_pil(frame)[0] for frame in frames], out.with_suffix(".gif"), cfg.gif_frame_ms)
        wrote(gif, f"a {len(frames)}-frame GIF")
    return {"z": rows, "images": images, "dims": dims, "points": points}


main = tool_main("walk", run)

if __name__ == "__main__":
    main()
