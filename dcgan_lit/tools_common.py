"""What every post-training tool shares: the Hydra entry point, device, batched sampling, labelled grids, GIFs."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig
from PIL import Image, ImageDraw, ImageFont
from rich.console import Console
from rich.progress import track
from torch import nn

from dcgan_lit.api import load_discriminator, load_generator, to_pil
from dcgan_lit.errors import UserError, exit_on_user_error
from dcgan_lit.networks import Discriminator, Generator, init_weights

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
console = Console(stderr=True)


def tool_main(config_name: str, run: Callable[[DictConfig], Any]) -> Callable[[], None]:
    """A Hydra app over ``conf/<config_name>.yaml`` that prints a UserError as one line and exits 1."""

    @hydra.main(version_base="1.3", config_path=CONF_DIR, config_name=config_name)
    def main(cfg: DictConfig) -> None:
        exit_on_user_error(lambda: run(cfg))

    return main


def pick_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU; anything else is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"device={name!r} is not a torch device; use auto, cpu, cuda or cuda:N") from None


def load_networks(
    ckpt_path: str | Path, device: str, generator: bool = True, discriminator: bool = False
) -> tuple[Generator | None, Discriminator | None]:
    """The eval-mode networks a tool asks for, from a checkpoint (G: its EMA weights when present).

    Every tool loads through here, on the Python API (training checkpoints and standalone generator exports).
    """
    where = pick_device(device)
    return (
        load_generator(ckpt_path, where) if generator else None,
        load_discriminator(ckpt_path, where) if discriminator else None,
    )


def progress(items: Iterable, description: str, total: int) -> Iterable:
    """A Rich progress bar over ``items`` when there is enough work to watch, else the items as they are."""
    return track(
        items, description=description, total=total, console=console, transient=True, disable=total < 4
    )


@torch.no_grad()
def generate(
    generator: Generator, z: torch.Tensor, batch_size: int = 256, description: str = "Generating"
) -> torch.Tensor:
    """G(z) for (N, latent_dim) z in batches on G's device; images (N, C, H, W) in [-1, 1] on the CPU."""
    device = next(generator.parameters()).device
    chunks = z.split(batch_size)
    images = [
        generator(chunk.to(device)).float().cpu() for chunk in progress(chunks, description, len(chunks))
    ]
    return torch.cat(images) if images else torch.empty(0)


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


def wrote(path: str | Path, what: str) -> None:
    """Tells the user where an output went."""
    console.print(f"[bold green]wrote[/] {what}: {Path(path).resolve()}")


def reinitialised(network: nn.Module, seed: int) -> nn.Module:
    """A copy of ``network`` with the paper's random init (seeded) and fresh BatchNorm statistics."""
    fresh = copy.deepcopy(network)
    torch.manual_seed(seed)
    for module in fresh.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
    fresh.apply(init_weights)
    return fresh


def require_indices(name: str, values: Sequence[int] | None, size: int, at_least: int = 1) -> list[int]:
    """Checks a list of indices from the command line: enough of them, each in [0, size)."""
    values = list(values or [])
    if len(values) < at_least:
        raise UserError(f"{name} needs at least {at_least} indices, got {values}; e.g. {name}=[0,1,2]")
    bad = [i for i in values if not 0 <= int(i) < size]
    if bad:
        raise UserError(f"{name}: indices {bad} are outside 0..{size - 1}")
    return [int(i) for i in values]


def training_images(
    ckpt_path: str | Path, data: str | None, image_size: int, channels: int, cache_dir: str | None = None
) -> torch.Tensor:
    """The training set as (N, C, H, W) uint8: the folder ``data`` if given, else the dataset in the run's config.

    The run's config is ``<run>/.hydra/config.yaml`` next to ``<run>/checkpoints/<file>.ckpt``; decoding goes
    through the dataset's own cache, so this is instant after training.
    """
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from dcgan_lit.data import ImageFolderDataModule

    if data:
        datamodule = ImageFolderDataModule(
            path=str(data), image_size=image_size, channels=channels, cache_dir=cache_dir
        )
    else:
        run_config = Path(ckpt_path).expanduser().resolve().parent.parent / ".hydra" / "config.yaml"
        if not run_config.is_file():
            raise UserError(
                f"no run config at {run_config} to find the training images; pass data=<folder of images>"
            )
        datamodule = instantiate(OmegaConf.load(run_config).dataset)
    datamodule.batch_size, datamodule.drop_last = 1, False
    datamodule.setup("fit")
    images = datamodule.train_set.images
    if tuple(images.shape[1:]) != (channels, image_size, image_size):
        raise UserError(
            f"the training images are {tuple(images.shape[1:])} but the model makes "
            f"{(channels, image_size, image_size)}; pass data=<folder> with images for this model"
        )
    return images


def from_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> floats in [-1, 1], as training sees them."""
    return images.float().div(127.5).sub(1)


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
