"""Progress of a long loop, for a person on a terminal or tailing a log: Rich's bar on a terminal, otherwise one
plain INFO line every ``interval_seconds`` (``"FID reference: 3,400/10,000 images (34%), 4.1 images/s, ETA
0:26:50"``). The training loop's own form is ``callbacks.progress.LogProgress``."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import TypeVar

from rich.console import Console
from rich.progress import track

log = logging.getLogger(__name__)

T = TypeVar("T")

INTERVAL_SECONDS = 30.0


def on_terminal() -> bool:
    return sys.stdout.isatty()


def duration(seconds: float) -> str:
    """``1:02:03`` (hours, minutes, seconds), ``?`` when unknown."""
    if seconds != seconds or seconds == float("inf"):  # NaN or unbounded
        return "?"
    return str(timedelta(seconds=round(seconds)))


def watch(
    items: Iterable[T],
    description: str,
    total: int,
    per_item: int = 1,
    unit: str = "batches",
    interval_seconds: float = INTERVAL_SECONDS,
    terminal: bool | None = None,
    console: Console | None = None,
    check: Callable[[], None] | None = None,
) -> Iterator[T]:
    """Yields ``items``, showing progress when there is enough work to watch (``total`` >= 4 items).

    ``per_item``: how many ``unit`` one item is (e.g. images per batch), for the counts and the rate.
    ``check``: called before each item; it raises to end the loop (e.g. a stop asked for by SIGTERM).
    """
    if check is not None:
        items = checked(items, check)
    if total < 4:
        yield from items
        return
    if on_terminal() if terminal is None else terminal:
        yield from track(items, description=description, total=total, transient=True, console=console)
        return
    start = last = time.perf_counter()
    for done, item in enumerate(items, 1):
        yield item
        now = time.perf_counter()
        if now - last >= interval_seconds and done < total:
            last = now
            rate = done * per_item / (now - start)
            left = (total - done) * per_item / rate if rate > 0 else float("inf")
            log.info(
                "%s: %s/%s %s (%.0f%%), %.1f %s/s, ETA %s",
                description,
                f"{done * per_item:,}",
                f"{total * per_item:,}",
                unit,
                100 * done / total,
                rate,
                unit,
                duration(left),
            )


def checked(items: Iterable[T], check: Callable[[], None]) -> Iterator[T]:
    for item in items:
        check()
        yield item
