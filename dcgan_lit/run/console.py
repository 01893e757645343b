"""The first screen of a run. What Lightning prints that tells a DCGAN user nothing is switched off at its
source where a setting exists (the model summary: ``trainer.enable_model_summary``; W&B's ``anonymous``: not
passed); the rest is filtered here, each line with the reason it is harmless."""

from __future__ import annotations

import logging
import warnings

# (logger, message start, why it is safe to drop)
HARMLESS = (
    ("lightning.pytorch.utilities.rank_zero", "💡 Tip:", "an advertisement for another logging package"),
    (
        "lightning.pytorch.utilities.rank_zero",
        "`Trainer.fit` stopped: `max_steps=",
        "it counts optimizer steps (d_steps + 1 per iteration); run/fit.py ends with the same fact in iterations",
    ),
)


class DropHarmless(logging.Filter):
    def __init__(self, starts: tuple[str, ...]) -> None:
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.starts)


def quiet_first_screen() -> None:
    """Installs the filters of :data:`HARMLESS` (once) and the warning filters below."""
    by_logger: dict[str, list[str]] = {}
    for name, start, _why in HARMLESS:
        by_logger.setdefault(name, []).append(start)
    for name, starts in by_logger.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropHarmless) for f in logger.filters):
            logger.addFilter(DropHarmless(tuple(starts)))
    # Lightning's own pytree helper calls a torch API that torch deprecated; nothing a user can change.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
