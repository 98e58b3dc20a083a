"""N+1 detection: one call site sending the same single-row statement over and over.

The classic N+1 is a loop that reads one row per iteration (``for order in orders: await
s.get(User, order.user_id)``) where one statement for all of them would do. The session asks this
detector before each statement that reads rows by one key (a `get` that misses the identity map,
a query whose only condition is ``key_column == value``); past `THRESHOLD` such statements of one
shape from one line of the program, it warns with `NPlusOneWarning`, raises `NPlusOneError`, or
does nothing, as the session was told (``AsyncSession(pool, n_plus_one=...)``). Each shape and
call site is reported once per session, and counted in ``s.stats().n_plus_one``.
"""

from __future__ import annotations

import asyncio
import enum
import os
import sys
import warnings
from types import FrameType

from .errors import ConfigurationError, NPlusOneError, NPlusOneWarning

#: Single-row statements of one shape from one call site before the detector speaks.
THRESHOLD = 10

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
#: Frames skipped on the way to the program's line: aiouow's own, and asyncio's (a session method
#: run as a task of its own, by gather, has the event loop as its caller).
_SKIPPED = (_PACKAGE_DIR, os.path.dirname(os.path.abspath(asyncio.__file__)))


class NPlusOneMode(enum.Enum):
    WARN = "warn"
    RAISE = "raise"
    IGNORE = "ignore"


class NPlusOneDetector:
    """Counts single-row statements per (call site, statement) for one session."""

    __slots__ = ("counts", "found", "mode")

    def __init__(self, mode: str) -> None:
        try:
            self.mode = NPlusOneMode(mode)
        except ValueError:
            raise ConfigurationError(
                f"cannot make a session: n_plus_one must be 'warn', 'raise' or 'ignore', got {mode!r}"
            ) from None
        self.counts: dict[tuple[str, int, str], int] = {}
        #: How many shapes and call sites were reported.
        self.found = 0

    def single_row(self, sql: str, batched: str) -> None:
        """A statement reading rows by one key is about to be sent; ``batched`` says how to read
        them all in one statement instead. Warns or raises the first time a call site passes the
        threshold."""
        if self.mode is NPlusOneMode.IGNORE:
            return
        frame, level = _caller()
        site = (frame.f_code.co_filename, frame.f_lineno, sql) if frame is not None else ("<a task>", 0, sql)
        count = self.counts.get(site, 0) + 1
        self.counts[site] = count
        if count != THRESHOLD + 1:
            return
        self.found += 1
        message = (
            f"N+1 queries: {site[0]}:{site[1]} sent `{sql}` {count} times in this session, one key at a time; "
            f"read them in one statement instead: {batched}"
        )
        if self.mode is NPlusOneMode.RAISE:
            raise NPlusOneError(message)
        warnings.warn(message, NPlusOneWarning, stacklevel=level)


def _caller() -> tuple[FrameType | None, int]:
    """The innermost frame outside aiouow, the line of the program that asked, and its
    ``stacklevel`` as seen from `NPlusOneDetector.single_row` (for ``warnings.warn``)."""
    level = 1
    frame: FrameType | None = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_SKIPPED):
        level, frame = level + 1, frame.f_back
    return frame, level + 1
