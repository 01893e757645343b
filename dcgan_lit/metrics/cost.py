"""What FID costs on the device in use: seconds per image measured at start-up, and the counts and schedule
that keep FID a small share of a run (``auto`` in conf/metrics/default.yaml)."""

from __future__ import annotations

import math
import time

import torch
from omegaconf import DictConfig
from torch import nn

from dcgan_lit.errors import UserError, whole_number

# ``auto`` image counts per device kind: the published protocol (50,000 fakes against the training set) on an
# accelerator; on a CPU, where the TF Inception costs ~0.1 s per image, counts a run can afford. FIDs from
# different counts are not comparable (FID is biased upwards for small counts): every value is logged with them.
AUTO_COUNTS = {
    "cpu": {"num_fake": 2_000, "num_real": 5_000},
    "accelerator": {"num_fake": 50_000, "num_real": 50_000},
}


def resolve_counts(
    num_fake: int | str, num_real: int | str | None, device: torch.device | str
) -> tuple[int, int | None]:
    """``num_fake`` and ``num_real`` with ``auto`` replaced by :data:`AUTO_COUNTS` for ``device``."""
    auto = AUTO_COUNTS["cpu" if torch.device(device).type == "cpu" else "accelerator"]
    return (
        auto["num_fake"] if num_fake == "auto" else int(num_fake),
        auto["num_real"] if num_real == "auto" else num_real,
    )


def synchronize(device: torch.device) -> None:
    """Waits for the device's queued work (timings on CUDA measure nothing without it)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def seconds_per_image(extractor: nn.Module, images: torch.Tensor, repeats: int = 1) -> float:
    """The extractor's time per image on ``images`` (uint8, on its device): one untimed warm-up pass (lazy
    initialisation, a compile), then the mean over ``repeats`` timed passes."""
    extractor(images)
    synchronize(images.device)
    start = time.perf_counter()
    for _ in range(repeats):
        extractor(images)
    synchronize(images.device)
    return (time.perf_counter() - start) / (repeats * images.size(0))


def evaluations_every(
    eval_seconds: float, epoch_seconds: float, budget: float, total_epochs: int | None = None
) -> int:
    """The fewest epochs N between evaluations that keep ``eval_seconds`` within ``budget`` of training time.

    With ``total_epochs`` known, the evaluation after the last epoch (always made) counts too: N is the
    smallest whose evaluations (every N-th epoch, plus the last) fit in the budget of the whole run.
    """
    if epoch_seconds <= 0:
        return 1
    if not total_epochs or total_epochs <= 0:
        return max(1, math.ceil(eval_seconds / (budget * epoch_seconds)))
    allowed = budget * total_epochs * epoch_seconds
    for every in range(1, total_epochs + 1):
        count = total_epochs // every + (1 if total_epochs % every else 0)
        if count * eval_seconds <= allowed:
            return every
    return total_epochs  # only the last epoch is scored


def minutes(seconds: float) -> str:
    """``0.4 min``, ``12 min``: a rough duration for a log line."""
    value = seconds / 60
    return f"{value:.1f} min" if value < 10 else f"{value:.0f} min"


def cost_report(seconds_per_image: float, num_fake: int, num_real: int, cached: bool) -> str:
    """``0.071 s per image, so ~2.4 min per evaluation (2000 fakes) and ~5.9 min for the reference (...)``."""
    reference = "nothing" if cached else "~" + minutes(seconds_per_image * num_real)
    return (
        f"{seconds_per_image:.3f} s per image, so ~{minutes(seconds_per_image * num_fake)} per evaluation "
        f"({num_fake} fakes) and {reference} for the reference ({num_real} real images"
        f"{', cached' if cached else ', once: then cached'})"
    )


def check_fid_settings(fid: DictConfig) -> None:
    """``metrics.fid`` counts and budget that would only fail at the first evaluation fail at start-up."""
    whole_number("metrics.fid.num_fake", fid.get("num_fake", "auto"), 2, also=("auto",))
    whole_number("metrics.fid.batch_size", fid.get("batch_size", 100), 1)
    whole_number("metrics.fid.every_n_epochs", fid.get("every_n_epochs", "auto"), 0, also=("auto",))
    whole_number(
        "metrics.fid.num_real", fid.get("num_real", "auto"), 2, also=(None, "auto"), hint="; null: all images"
    )
    whole_number("metrics.fid.seed", fid.get("seed", 0), 0)
    budget = fid.get("budget", 0.1)
    if not (isinstance(budget, (int, float)) and not isinstance(budget, bool) and 0 < budget <= 1):
        raise UserError(
            f"metrics.fid.budget={budget} must be a fraction of training time in (0, 1], e.g. 0.1"
        )
