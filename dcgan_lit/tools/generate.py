"""Generate images from a trained generator: single PNG/JPG files in a folder or a .zip, or one grid.

python -m dcgan_lit.tools.generate ckpt_path=last.ckpt num_images=7000 format=jpg image_size=256 out=images.zip
python -m dcgan_lit.tools.generate ckpt_path=last.ckpt grid=5x5 out=grid.png
python -m dcgan_lit.tools.generate ckpt_path=last.ckpt class=horse num_images=100    (a conditional G)
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from dcgan_lit.api import save_grid, to_pil
from dcgan_lit.errors import UserError
from dcgan_lit.model.networks import Generator
from dcgan_lit.model.sampling import generate_batches
from dcgan_lit.tools.app import load_networks, progress, tool_main, wrote
from dcgan_lit.tools.latent import class_labels, sample_z

FORMATS = {"png": "PNG", "jpg": "JPEG"}


def parse_grid(grid: str) -> tuple[int, int]:
    """'5x5' -> (rows, columns)."""
    try:
        rows, columns = (int(part) for part in str(grid).lower().split("x"))
    except ValueError:
        raise UserError(f"grid={grid!r} is not ROWSxCOLUMNS, e.g. grid=5x5") from None
    if rows < 1 or columns < 1:
        raise UserError(f"grid={grid!r} needs at least one row and one column")
    return rows, columns


def resize(images: torch.Tensor, image_size: int | None) -> torch.Tensor:
    """Images in [-1, 1] resized to ``image_size`` (antialiased bicubic); unchanged when None or equal."""
    if not image_size or image_size == images.shape[-1]:
        return images
    return F.interpolate(images, size=(image_size, image_size), mode="bicubic", antialias=True).clamp_(-1, 1)


def image_batches(
    generator: Generator,
    num_images: int,
    seed: int,
    batch_size: int,
    image_size: int | None,
    class_: int | str | None = None,
) -> Iterator[torch.Tensor]:
    """Batches of G(z) in [-1, 1] on the CPU, z drawn from one seeded stream, resized when asked; a conditional
    G's images are all of class ``class_`` (name or index), or of its classes in turn when None."""
    z = sample_z(generator, num_images, seed)
    labels = class_labels(generator, class_, num_images)
    description = f"Generating {num_images} images"
    for batch in generate_batches(generator, z, batch_size, progress, description, labels=labels):
        yield resize(batch, image_size).cpu()


def encode(image: torch.Tensor, fmt: str, jpg_quality: int) -> bytes:
    """One image in [-1, 1] as PNG or JPEG bytes."""
    buffer = io.BytesIO()
    options = {"quality": jpg_quality} if fmt == "jpg" else {}
    to_pil(image)[0].save(buffer, FORMATS[fmt], **options)
    return buffer.getvalue()


def write_files(
    batches: Iterator[torch.Tensor], out: Path, num_images: int, fmt: str, jpg_quality: int
) -> Path:
    """Writes numbered image files into the folder ``out``, or into the zip archive ``out`` if it ends in .zip."""
    digits = max(5, len(str(num_images - 1)))
    names = (f"{index:0{digits}d}.{fmt}" for index in range(num_images))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".zip":
        # PNG and JPEG are already compressed: store them as they are.
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
            for batch in batches:
                for image in batch:
                    archive.writestr(next(names), encode(image, fmt, jpg_quality))
    else:
        out.mkdir(exist_ok=True)
        for batch in batches:
            for image in batch:
                (out / next(names)).write_bytes(encode(image, fmt, jpg_quality))
    return out


def run(cfg: DictConfig) -> Path:
    """Generates ``num_images`` files (or one ``grid``) and returns where they went."""
    fmt = str(cfg.format).lower().replace("jpeg", "jpg")
    if fmt not in FORMATS:
        raise UserError(f"format={cfg.format!r} is not supported; use png or jpg")
    if cfg.image_size is not None and int(cfg.image_size) < 1:
        raise UserError(f"image_size={cfg.image_size} must be a positive number of pixels (or null)")
    generator, _ = load_networks(cfg.ckpt_path, cfg.device)
    out = Path(cfg.out)
    if cfg.grid:
        rows, columns = parse_grid(cfg.grid)
        images = torch.cat(
            list(
                image_batches(
                    generator, rows * columns, cfg.seed, cfg.batch_size, cfg.image_size, cfg.get("class")
                )
            )
        )
        out = out if out.suffix.lower() == ".png" else out / "grid.png"
        save_grid(images, out, nrow=columns)
        wrote(out, f"a {rows}x{columns} grid")
        return out
    if cfg.num_images < 1:
        raise UserError(f"num_images={cfg.num_images} must be at least 1")
    batches = image_batches(
        generator, cfg.num_images, cfg.seed, cfg.batch_size, cfg.image_size, cfg.get("class")
    )
    write_files(batches, out, cfg.num_images, fmt, cfg.jpg_quality)
    size = cfg.image_size or generator.image_size
    wrote(out, f"{cfg.num_images} {fmt.upper()} images at {size}x{size}")
    return out


main = tool_main("generate", run)

if __name__ == "__main__":
    main()
