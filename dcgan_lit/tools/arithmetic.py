"""Vector arithmetic on z (paper, section 6.3): concepts as averages of hand-picked z's, then A - B + C.

python -m dcgan_lit.tools.arithmetic ckpt_path=last.ckpt                      # just the numbered sample sheet
python -m dcgan_lit.tools.arithmetic ckpt_path=last.ckpt a=[3,9,14] b=[0,5,21] c=[7,8,30]
python -m dcgan_lit.tools.arithmetic ckpt_path=last.ckpt z_path=projected.pt a=[0,1,2] b=[3,4,5] c=[6,7,8]
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig
from PIL import Image

from dcgan_lit.errors import UserError
from dcgan_lit.model.networks import Generator
from dcgan_lit.model.sampling import generate
from dcgan_lit.tools.app import load_networks, progress, require_indices, tool_main, wrote
from dcgan_lit.tools.drawing import labelled_grid, save_image
from dcgan_lit.tools.latent import class_labels, load_z, sample_z, save_z

CONCEPTS = ("a", "b", "c")


def concept_means(sheet: torch.Tensor, picks: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    """Each concept's z: the mean of the sheet's z's at its indices (averaging makes the concept stable)."""
    return {name: sheet[indices].mean(0) for name, indices in picks.items()}


def arithmetic_results(means: dict[str, torch.Tensor], count: int, noise: float, seed: int) -> torch.Tensor:
    """``count`` latent vectors: A - B + C, then the same plus N(0, noise^2) (the first one is noiseless)."""
    result = means["a"] - means["b"] + means["c"]
    jitter = torch.randn(count, result.numel(), generator=torch.Generator().manual_seed(seed + 1)) * noise
    jitter[0] = 0
    return result + jitter


def figure(
    generator: Generator,
    sheet: torch.Tensor,
    picks: dict[str, list[int]],
    means: dict[str, torch.Tensor],
    results: torch.Tensor,
    batch_size: int,
    class_: int | str | None = None,
) -> Image.Image:
    """One image: per concept its picked samples then their average's image; then rows of A - B + C."""
    columns = max(max(len(i) for i in picks.values()) + 1, min(len(results), 8))
    latent_dim = sheet.size(1)
    blank = torch.full((latent_dim,), float("nan"))
    z, labels = [], []
    for name, indices in picks.items():
        padding = columns - 1 - len(indices)
        z += [sheet[i] for i in indices] + [blank] * padding + [means[name]]
        labels += [f"{name.upper()}:{i}" for i in indices] + [""] * padding + [f"mean {name.upper()}"]
    z += list(results)
    labels += ["A-B+C"] + ["+noise"] * (len(results) - 1)
    z = torch.stack(z)
    images = torch.ones(len(z), generator.channels, generator.image_size, generator.image_size)
    real = ~z.isnan().any(1)
    classes = class_labels(generator, class_, int(real.sum()))
    images[real] = generate(generator, z[real], batch_size, progress, "Arithmetic", labels=classes)
    return labelled_grid(images, columns, labels)


def run(cfg: DictConfig) -> dict:
    """Writes the numbered sample sheet and, when a, b and c are given, the arithmetic figure and z's."""
    generator, _ = load_networks(cfg.ckpt_path, cfg.device)
    class_ = cfg.get("class")
    if generator.num_classes and class_ is None:
        raise UserError(
            f"arithmetic on a conditional generator works within one class: pass class=<one of "
            f"{', '.join(generator.class_names)}>"
        )
    # The sheet: seeded z's, or every row of a z file (e.g. project's projected.pt: real images' z's)
    sheet = (
        load_z(cfg.z_path, generator.latent_dim)
        if cfg.z_path
        else sample_z(generator, cfg.sheet_size, cfg.seed)
    )
    out = Path(cfg.out_dir)
    labels = class_labels(generator, class_, len(sheet))
    sheet_images = generate(generator, sheet, cfg.batch_size, progress, "Sample sheet", labels=labels)
    columns = int(cfg.sheet_size**0.5 + 0.999)
    sheet_path = save_image(
        labelled_grid(sheet_images, columns, [str(i) for i in range(len(sheet))]), out / "sheet.png"
    )
    origin = cfg.z_path or f"seed {cfg.seed}"
    wrote(sheet_path, f"the sample sheet ({origin}); pick indices from it for a, b and c")
    if not any(cfg.get(name) for name in CONCEPTS):
        return {"sheet": sheet}
    picks = {name: require_indices(name, cfg.get(name), len(sheet), at_least=3) for name in CONCEPTS}
    means = concept_means(sheet, picks)
    results = arithmetic_results(means, cfg.num_results, cfg.noise, cfg.seed)
    drawn = figure(generator, sheet, picks, means, results, cfg.batch_size, class_)
    path = save_image(drawn, out / "arithmetic.png")
    wrote(path, f"the averages of a, b, c and {len(results)} results of A - B + C")
    z_path = save_z(out / "arithmetic.pt", results, **{f"mean_{k}": v[None] for k, v in means.items()})
    wrote(z_path, "the result z's (feed to interpolate/walk with z_path=)")
    return {"sheet": sheet, "means": means, "results": results}


main = tool_main("arithmetic", run)

if __name__ == "__main__":
    main()
