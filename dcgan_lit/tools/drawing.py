"""Pictures the tools write: captioned grids, titled panels side by side, animated GIFs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from dcgan_lit.api import to_pil
from dcgan_lit.errors import UserError


def labelled_grid(
    images: torch.Tensor,
    nrow: int,
    labels: Sequence[str] | None = None,
    min_tile: int = 64,
    padding: int = 2,
) -> Image.Image:
    """A grid of ``nrow`` images per row, each tile scaled up to ``min_tile`` pixels and captioned below."""
    count, _, height, width = images.shape
    scale = max(1, -(-min_tile // width))
    tile_w, tile_h = width * scale, height * scale
    caption = 12 if labels else 0
    rows = -(-count // nrow)
    canvas = Image.new(
        "RGB",
        (padding + nrow * (tile_w + padding), padding + rows * (tile_h + caption + padding)),
        "white",
    )
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for index in range(count):
        row, col = divmod(index, nrow)
        x, y = padding + col * (tile_w + padding), padding + row * (tile_h + caption + padding)
        canvas.paste(
            to_pil(images[index])[0].convert("RGB").resize((tile_w, tile_h), Image.Resampling.NEAREST), (x, y)
        )
        if labels and labels[index]:
            draw.text((x + 1, y + tile_h), str(labels[index]), fill="black", font=font)
    return canvas


def titled(image: Image.Image, title: str, height: int = 16) -> Image.Image:
    """``image`` with a white strip above it carrying ``title``."""
    canvas = Image.new("RGB", (image.width, image.height + height), "white")
    canvas.paste(image.convert("RGB"), (0, height))
    ImageDraw.Draw(canvas).text((4, 2), title, fill="black", font=ImageFont.load_default())
    return canvas


def side_by_side(panels: Sequence[Image.Image], gap: int = 8) -> Image.Image:
    """Panels next to each other on white, top-aligned."""
    width = sum(p.width for p in panels) + gap * (len(panels) - 1)
    canvas = Image.new("RGB", (width, max(p.height for p in panels)), "white")
    x = 0
    for panel in panels:
        canvas.paste(panel, (x, 0))
        x += panel.width + gap
    return canvas


def save_image(image: Image.Image, path: str | Path) -> Path:
    """Writes a PIL image, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def save_gif(
    frames: Sequence[Image.Image],
    path: str | Path,
    duration_ms: int | Sequence[int] = 100,
    loop: int = 0,
    colors: int = 256,
) -> Path:
    """Writes frames as an animated GIF (loops forever by default); durations per frame or one for all.

    ``colors`` < 256 gives each frame a smaller palette (no dithering): photos compress poorly in GIF's LZW,
    and 64 colours make a grid of samples about a third smaller.
    """
    if not 2 <= colors <= 256:
        raise UserError(f"a GIF palette has 2 to 256 colours, got {colors}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    first, *rest = [
        frame.convert("RGB")
        if colors == 256
        else frame.convert("RGB").quantize(colors, dither=Image.Dither.NONE)
        for frame in frames
    ]
    first.save(
        path,
        save_all=True,
        append_images=rest,
        duration=duration_ms if isinstance(duration_ms, int) else list(duration_ms),
        loop=loop,
        optimize=False,
    )
    return path
