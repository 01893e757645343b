"""Dataset-level augmentations baked into the cached uint8 tensor: rotations/reflections, per-image normalisation."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from dcgan_lit.errors import UserError

# The 8 symmetries of a square (the dihedral group D4) on (N, C, H, W): rotations are counter-clockwise and
# "hflip_*" mirrors left-right first, so hflip_rot90 is the transpose and hflip_rot180 the vertical flip.
SYMMETRIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "identity": lambda x: x,
    "rot90": lambda x: torch.rot90(x, 1, dims=(2, 3)),
    "rot180": lambda x: torch.rot90(x, 2, dims=(2, 3)),
    "rot270": lambda x: torch.rot90(x, 3, dims=(2, 3)),
    "hflip": lambda x: x.flip(3),
    "hflip_rot90": lambda x: torch.rot90(x.flip(3), 1, dims=(2, 3)),
    "hflip_rot180": lambda x: torch.rot90(x.flip(3), 2, dims=(2, 3)),
    "hflip_rot270": lambda x: torch.rot90(x.flip(3), 3, dims=(2, 3)),
}
GROUPS = {
    "all": list(SYMMETRIES),
    "rotations": ["identity", "rot90", "rot180", "rot270"],
    "none": ["identity"],
}


def resolve_symmetries(symmetries: str | Sequence[str] | None) -> list[str]:
    """Names of the symmetries to apply: a list of names, or one of 'all' (x8), 'rotations' (x4), 'none'."""
    if symmetries is None or (not isinstance(symmetries, str) and len(symmetries) == 0):
        return ["identity"]
    if isinstance(symmetries, str):
        if symmetries in GROUPS:
            return GROUPS[symmetries]
        symmetries = [symmetries]
    names = [str(name) for name in symmetries]
    unknown = [name for name in names if name not in SYMMETRIES]
    if unknown or len(set(names)) != len(names):
        raise UserError(
            f"dataset.symmetries={names} is not allowed; use distinct names from {list(SYMMETRIES)} "
            f"or one of {list(GROUPS)}"
        )
    return names


def apply_symmetries(images: torch.Tensor, names: Sequence[str]) -> torch.Tensor:
    """(N, C, S, S) -> (N * len(names), C, S, S): every image under each symmetry, grouped by symmetry."""
    if list(names) == ["identity"]:
        return images
    return torch.cat([SYMMETRIES[name](images).contiguous() for name in names])


def normalize_per_image(images: torch.Tensor, num_std: float = 2.0, chunk: int = 4096) -> torch.Tensor:
    """Standardises each uint8 image to its own mean and std, stored back as uint8 with mean at 127.5 and
    ``num_std`` standard deviations reaching 0 and 255 (values beyond are clipped)."""
    out = torch.empty_like(images)
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].float()
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1.0)  # a flat frame must not blow up to noise
        z = (x - mean) / std
        out[start : start + chunk] = (127.5 + z * (127.5 / num_std)).round_().clamp_(0, 255).to(torch.uint8)
    return out
