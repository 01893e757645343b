"""User-facing errors: raised early, printed as one line (what, where, how to fix) without a traceback; and the
one check of a whole-number setting."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class UserError(Exception):
    """A mistake in the user's config, data or files; train.py prints it as one line and exits 1."""


class TrainingDiverged(UserError):
    """Training produced a non-finite loss; the run stops and keeps its last good checkpoint."""


def is_whole_number(value: Any) -> bool:
    """An ``int`` that is not a ``bool`` (Python's ``True`` is the integer 1; a setting never means that)."""
    return isinstance(value, int) and not isinstance(value, bool)


def whole_number(
    key: str,
    value: Any,
    minimum: int | None = None,
    maximum: int | None = None,
    also: Sequence[Any] = (),
    hint: str = "",
) -> Any:
    """``value`` when it is an integer (never true/false) in [``minimum``, ``maximum``] or one of ``also``
    (e.g. ``None``, ``"auto"``, ``-1``); otherwise one :class:`UserError` line naming ``key``."""
    if not isinstance(value, bool) and any(value is other or value == other for other in also):
        return value
    if (
        is_whole_number(value)
        and (minimum is None or value >= minimum)
        and (maximum is None or value <= maximum)
    ):
        return value
    if minimum is not None and maximum is not None:
        allowed = f"an integer from {minimum} to {maximum}"
    elif minimum is not None:
        allowed = f"an integer >= {minimum}"
    elif maximum is not None:
        allowed = f"an integer <= {maximum}"
    else:
        allowed = "an integer"
    others = ", ".join("null" if other is None else str(other) for other in also)
    shown = str(value).lower() if isinstance(value, bool) else value
    raise UserError(f"{key}={shown} must be {allowed}{f' (or {others})' if others else ''}{hint}")


def exit_on_user_error(run: Callable[[], T], overrides: Sequence[str] | None = None) -> T:
    """Runs ``run``; a :class:`UserError` becomes one ``error:`` line on stderr and exit status 1, a stop by
    SIGTERM exit status 143.

    With the command line's ``overrides``, any other exception becomes one line too, naming the exception and
    the overrides (a value that slipped past the start-up checks is the likely cause); a bug shows its
    traceback with ``HYDRA_FULL_ERROR=1``, which re-raises every error instead.
    """
    try:
        return run()
    except SystemExit as stop:
        # Lightning's stop on SIGTERM (its state saved by Checkpoint.on_exception) exits 0; the shell's status
        # for a SIGTERM says the run did not finish. (Looked up, not imported: `import dcgan_lit` stays light.)
        lightning = sys.modules.get("lightning.pytorch.utilities.exceptions")
        if lightning is not None and isinstance(stop, lightning.SIGTERMException):
            sys.exit(128 + signal.SIGTERM)
        raise
    except UserError as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except Exception as error:
        if overrides is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        detail = " ".join(str(error).split())[:300]
        given = " ".join(overrides) or "none"
        print(
            f"error: {type(error).__name__}: {detail} (overrides: {given}; check them, or rerun with "
            "HYDRA_FULL_ERROR=1 for the traceback)",
            file=sys.stderr,
        )
        sys.exit(1)
