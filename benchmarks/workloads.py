"""The workloads, the measurements (metrics) they produce, and the targets aiouow is held to."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from .models import cycle_keys, make_values, spread_keys
from .system import Sample, System

#: Lookups of the identity-map hit workload.
GET_CALLS = 100_000
#: Iterations of the request loop.
REQUESTS = 1_000
#: Rounds of the flush-scaling workload (each changes `FLUSH_CHANGES` objects, then flushes).
FLUSH_ROUNDS = 20
FLUSH_CHANGES = 10

Unit = Literal["ms", "us", "B"]
#: What the runner checks after a system ran a metric.
Check = Literal["insert", "load", "state", "none"]


@dataclass(frozen=True, slots=True)
class Metric:
    """One measured quantity: every system runs it once per repetition, on a fresh table."""

    key: str
    workload: str  # the name ``--only`` selects
    label: str
    unit: Unit
    seed: int  # rows in the table before the system starts
    run: Callable[[System], Awaitable[Sample]]
    check: Check


WORKLOADS = ("insert", "load", "update", "delete", "get_hit", "request_loop", "flush_scaling", "memory")


def build_metrics(rows: int, only: frozenset[str] | None = None) -> list[Metric]:
    """The metrics of the selected workloads, for a table of ``rows`` rows.

    ``flush_scaling`` and ``memory`` use ``10 * rows`` rows (100,000 by default) and track
    ``rows // 10`` (1,000) objects in their small case.
    """
    n = rows
    changes = max(1, rows // 10)
    big = rows * 10
    small = max(FLUSH_CHANGES, rows // 10)
    values = make_values(n)
    update_keys = spread_keys(changes, n)
    delete_keys = spread_keys(changes, n, offset=4)
    get_keys = cycle_keys(GET_CALLS, n)
    request_keys = cycle_keys(min(REQUESTS, n), n)

    def rounds(tracked: int) -> list[list[int]]:
        return [spread_keys(FLUSH_CHANGES, tracked, offset=r) for r in range(FLUSH_ROUNDS)]

    small_rounds, big_rounds = rounds(small), rounds(big)
    all_metrics = [
        Metric("insert", "insert", f"insert {n:,} rows, keys returned", "ms", 0, lambda s: s.insert(values), "insert"),
        Metric("load", "load", f"load {n:,} rows into objects", "ms", n, lambda s: s.load(n), "load"),
        Metric(
            "update",
            "update",
            f"update {len(update_keys):,} of {n:,} loaded, commit",
            "ms",
            n,
            lambda s: s.update(n, update_keys),
            "state",
        ),
        Metric(
            "delete",
            "delete",
            f"delete {len(delete_keys):,} of {n:,} loaded, commit",
            "ms",
            n,
            lambda s: s.delete(n, delete_keys),
            "state",
        ),
        Metric("get_hit", "get_hit", "identity-map hit, per get()", "us", n, lambda s: s.get_hit(n, get_keys), "none"),
        Metric(
            "request_loop",
            "request_loop",
            f"{len(request_keys):,} x (session, get, change, commit)",
            "ms",
            n,
            lambda s: s.request_loop(request_keys),
            "state",
        ),
        Metric(
            "flush_small",
            "flush_scaling",
            f"flush {FLUSH_CHANGES} changes, {small:,} tracked",
            "ms",
            big,
            lambda s: s.flush(small, small_rounds),
            "state",
        ),
        Metric(
            "flush_big",
            "flush_scaling",
            f"flush {FLUSH_CHANGES} changes, {big:,} tracked",
            "ms",
            big,
            lambda s: s.flush(big, big_rounds),
            "state",
        ),
        Metric("memory", "memory", f"memory per object, {big:,} loaded", "B", big, lambda s: s.memory(big), "none"),
    ]
    return [m for m in all_metrics if only is None or m.workload in only]


@dataclass(frozen=True, slots=True)
class Goal:
    """A target: ``numerator`` of ``system`` over ``denominator`` (of ``base``) at most ``limit``,
    or, without a denominator, ``numerator`` below ``limit`` (seconds)."""

    label: str
    numerator: str
    denominator: str | None
    system: str
    base: str
    limit: float
    strict: bool = False  # "<" instead of "<="


GOALS = (
    Goal("insert vs hand-written", "insert", "insert", "aiouow", "hand", 1.3),
    Goal("load vs hand-written", "load", "load", "aiouow", "hand", 1.5),
    Goal("update vs hand-written", "update", "update", "aiouow", "hand", 1.3),
    Goal("delete vs hand-written", "delete", "delete", "aiouow", "hand", 1.3),
    Goal("request loop vs hand-written", "request_loop", "request_loop", "aiouow", "hand", 1.1),
    Goal("identity-map hit", "get_hit", None, "aiouow", "aiouow", 1e-6, strict=True),
    Goal("flush, large vs small tracked set", "flush_big", "flush_small", "aiouow", "aiouow", 2.0),
    Goal("memory per object vs SQLAlchemy", "memory", "memory", "aiouow", "sqlalchemy", 0.5),
)
