"""Latent vectors for the tools: seeded z, z files, and paths between points (linear and spherical)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from dcgan_lit.checkpoint.io import atomic_torch_save, torch_load_weights_only
from dcgan_lit.errors import UserError
from dcgan_lit.model.networks import Generator, cycled_labels


def sample_z(generator: Generator, n: int, seed: int) -> torch.Tensor:
    """n latent vectors (n, latent_dim) on the CPU from ``generator.sample_latent``'s seeded stream (the API's)."""
    return generator.sample_latent(n, seed=int(seed)).float().cpu()


def z_for_seeds(generator: Generator, seeds: Sequence[int]) -> torch.Tensor:
    """One latent vector per seed, shape (len(seeds), latent_dim): seed s names the same z in every tool."""
    return torch.cat([sample_z(generator, 1, seed) for seed in seeds])


def save_z(path: str | Path, z: torch.Tensor, **extra: torch.Tensor) -> Path:
    """Writes latent vectors (and e.g. their scores) as a tensors-only file that ``load_z`` reads back."""
    path = Path(path)
    atomic_torch_save({"z": z.detach().cpu().reshape(z.size(0), -1), **extra}, path)  # never a partial file
    return path


def load_z(path: str | Path, latent_dim: int, indices: Sequence[int] | None = None) -> torch.Tensor:
    """Latent vectors from a ``save_z`` file (``weights_only``), optionally the rows at ``indices``."""
    return load_z_file(path, latent_dim, indices)[0]


def load_z_file(
    path: str | Path, latent_dim: int, indices: Sequence[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The z's of a ``save_z`` file and the class of each when it recorded them (``labels``: a conditional G's
    search or projection), both at ``indices`` when given."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(
            f"z_path={path}: no such file; pass a .pt written by `search` (top_k.pt) or `project` (projected.pt)"
        )
    data = torch_load_weights_only(path, "z file", "file", "; pass a .pt written by `search` or `project`")
    z = data.get("z") if isinstance(data, dict) else data
    if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.size(1) != latent_dim:
        raise UserError(f"z_path={path} does not hold an (N, {latent_dim}) tensor 'z' for this checkpoint")
    labels = data.get("labels") if isinstance(data, dict) else None
    if labels is not None and (not isinstance(labels, torch.Tensor) or labels.shape != (z.size(0),)):
        raise UserError(f"z_path={path} holds 'labels' that are not one class index per z")
    if indices is not None:
        bad = [i for i in indices if not 0 <= i < z.size(0)]
        if bad:
            raise UserError(f"indices {bad} are out of range for the {z.size(0)} vectors in {path}")
        z, labels = z[list(indices)], labels[list(indices)] if labels is not None else None
    return z.float(), labels.long() if labels is not None else None


def latent_points(
    generator: Generator,
    seeds: Sequence[int] | None = None,
    z_path: str | None = None,
    indices: Sequence[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The latent points a tool starts from: rows of ``z_path`` (at ``indices``) when given, else one z per seed;
    and the class the z file recorded for each (None without one: see :func:`point_classes`)."""
    if z_path:
        return load_z_file(z_path, generator.latent_dim, indices)
    if not seeds:
        raise UserError("no latent points: pass seeds=[...] or z_path=<top_k.pt> (with indices=[...])")
    return z_for_seeds(generator, list(seeds)), None


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points (len(t), latent_dim) on the straight line from z0 (t=0) to z1 (t=1)."""
    t = t[:, None]
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points on the great circle from z0 to z1 (White 2016): keeps the norm typical of N(0, I) samples."""
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm())
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega.abs() < 1e-6:  # (nearly) parallel: the arc is the line
        return lerp(z0, z1, t)
    t = t[:, None]
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


INTERPOLATIONS = {"lerp": lerp, "slerp": slerp}


def resolve_class(generator: Generator, value: int | str) -> int:
    """A class of a conditional G, by name (``horse``) or index (``7``), as its index; one line if unknown."""
    names = list(generator.class_names)
    if not generator.num_classes:
        raise UserError(
            f"class={value}: this generator is unconditional (trained without model.conditional=true); "
            "leave class= out"
        )
    text = str(value)
    if text in names:
        return names.index(text)
    if text.lstrip("-").isdigit():
        index = int(text)
        if 0 <= index < len(names):
            return index
        raise UserError(
            f"class={value} is out of range; this generator's classes are 0-{len(names) - 1}: {names}"
        )
    raise UserError(f"class={value!r} is not one of this generator's classes: {', '.join(names)}")


def point_classes(
    generator: Generator, value: int | str | None, n: int, recorded: torch.Tensor | None = None
) -> torch.Tensor | None:
    """The class of each of a tool's n latent points: ``class=`` when given, else the classes their z file
    ``recorded`` (a conditional G's `search` or `project` found each z with its class; from
    :func:`latent_points`), else the classes in turn."""
    classes = generator.num_classes
    if value is None and recorded is not None and classes:
        if recorded.numel() and not 0 <= int(recorded.min()) <= int(recorded.max()) < classes:
            raise UserError(
                f"the z file of z_path records classes up to {int(recorded.max())}, but this generator has "
                f"{classes}; use the checkpoint that wrote it, or pass class="
            )
        return recorded
    return class_labels(generator, value, n)


def class_labels(generator: Generator, value: int | str | None, n: int) -> torch.Tensor | None:
    """Class indices (n,) for a tool's samples or rows: all ``value`` (a name or index), or the classes in turn
    (i mod num_classes) when it is None; None for an unconditional G, which takes no class."""
    if value is not None:
        return torch.full((n,), resolve_class(generator, value), dtype=torch.long)
    if not generator.num_classes:
        return None
    return cycled_labels(n, generator.num_classes, torch.device("cpu"))
