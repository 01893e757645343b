"""Progress of a long loop, for a person on a terminal or tailing a log: Rich's bar on a terminal, otherwise one
plain INFO line every ``interval_seconds`` (``"FID reference: 3,400/10,000 images (34%), 4.1 images/s, ETA
0:26:50"``). The training loop's own form is ``callbacks.progress_bar.LogProgress``; both pace themselves
with :class:`Pace`."""

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


class Pace:
    """The rate of a count since it started, the time left to a total, and whether a report is due (at most one
    every ``interval_seconds``)."""

    def __init__(self, interval_seconds: float = INTERVAL_SECONDS, start_count: int = 0) -> None:
        self.interval_seconds = interval_seconds
        self.start_count = start_count
        self.start = self.last = time.perf_counter()

    def due(self) -> bool:
        """True at most once every ``interval_seconds`` (and then the interval starts again)."""
        now = time.perf_counter()
        if now - self.last < self.interval_seconds:
            return False
        self.last = now
        return True

    def rate(self, count: float) -> float:
        """Units per second since the start."""
        return (count - self.start_count) / max(time.perf_counter() - self.start, 1e-9)

    def eta(self, count: float, total: float) -> str:
        """The time left to ``total`` at the rate so far (``?`` before any progress)."""
        rate = self.rate(count)
        return duration((total - count) / rate if rate > 0 else float("inf"))


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
    pace = Pace(interval_seconds)
    for done, item in enumerate(items, 1):
        yield item
        if done < total and pace.due():
            log.info(
                "%s: %s/%s %s (%.0f%%), %.1f %s/s, ETA %s",
                description,
                f"{done * per_item:,}",
                f"{total * per_item:,}",
                unit,
                100 * done / total,
                pace.rate(done * per_item),
                unit,
                pace.eta(done * per_item, total * per_item),
            )


def checked(items: Iterable[T], check: Callable[[], None]) -> Iterator[T]:
    for item in items:
        check()
        yield item
