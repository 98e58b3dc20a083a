"""What every measured system implements: one coroutine per workload.

Each coroutine does its own untimed preparation (building objects, loading them into a
session), then times only the measured part, and returns a `Sample`. The runner has already
given it a fresh table with the rows the workload needs.
"""

from __future__ import annotations

import abc
import gc
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .database import Target
from .models import Values

#: (key, name) of each of the caller's objects after the workload, for the runner's checks.
Seen = list[tuple[Any, str]]


@dataclass(frozen=True, slots=True)
class Sample:
    """One measurement.

    ``value`` is seconds (per call for ``get_hit``, per flush for ``flush``), or bytes per object
    for ``memory``. ``statements`` counts the data statements sent during the measured part
    (SELECT, INSERT, UPDATE, DELETE; BEGIN, COMMIT, ROLLBACK are not counted).
    """

    value: float
    statements: int | None = None
    seen: Seen | None = None


class System(abc.ABC):
    """One way of doing the work: hand-written driver code, aiouow, or SQLAlchemy."""

    #: Short name used in tables and option values.
    key: str
    #: Column heading.
    title: str

    def __init__(self, target: Target) -> None:
        self.target = target

    @abc.abstractmethod
    async def open(self) -> None:
        """Open the system's pool (or connection)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def insert(self, values: list[Values]) -> Sample:
        """Insert one object per value tuple (made before timing); keys assigned to the objects."""

    @abc.abstractmethod
    async def load(self, n: int) -> Sample:
        """Load every row of the table into objects kept by key."""

    @abc.abstractmethod
    async def update(self, n: int, keys: list[int]) -> Sample:
        """With all ``n`` rows loaded (untimed), rename the objects of ``keys`` and commit."""

    @abc.abstractmethod
    async def delete(self, n: int, keys: list[int]) -> Sample:
        """With all ``n`` rows loaded (untimed), delete the objects of ``keys`` and commit."""

    @abc.abstractmethod
    async def get_hit(self, n: int, keys: list[int]) -> Sample:
        """With all ``n`` rows loaded (untimed), look each key up by primary key; seconds per call."""

    @abc.abstractmethod
    async def request_loop(self, keys: list[int]) -> Sample:
        """Per key: new session, get by key, ``qty += 1``, commit."""

    @abc.abstractmethod
    async def flush(self, tracked: int, rounds: list[list[int]]) -> Sample:
        """With rows ``1..tracked`` loaded, per round add 1 to ``qty`` of its keys and flush;
        the median round in seconds. Committed (untimed) at the end."""

    @abc.abstractmethod
    async def memory(self, n: int) -> Sample:
        """Bytes (tracemalloc) per object kept after loading ``n`` rows."""


def settle() -> None:
    """Before a timed part: collect garbage, so that collections inside are the workload's own."""
    gc.collect()


def clock() -> float:
    return time.perf_counter()


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


async def traced_bytes(load: Callable[[], Awaitable[Any]]) -> tuple[int, Any]:
    """Bytes still allocated after ``load()`` (its result kept alive), and that result."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = await load()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before, result
