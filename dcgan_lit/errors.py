"""User-facing errors: raised early, printed as one line (what, where, how to fix) without a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class UserError(Exception):
    """A mistake in the user's config, data or files; train.py prints it as one line and exits 1."""


class TrainingDiverged(UserError):
    """Training produced a non-finite loss; the run stops and keeps its last good checkpoint."""


def exit_on_user_error(run: Callable[[], T]) -> T:
    """Runs ``run``; a :class:`UserError` becomes one ``error:`` line on stderr and exit status 1.

    ``HYDRA_FULL_ERROR=1`` re-raises it instead, with the full traceback.
    """
    try:
        return run()
    except UserError as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
