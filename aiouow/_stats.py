"""Per-session statistics: statements by kind, rows, flushes, time spent in the database."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class SessionStats:
    """A snapshot of what a session has done so far.

    - ``statements``: statements by kind: ``select``, ``insert``, ``update``, ``delete``,
      ``fetch`` (one fetch of rows from a stream's cursor) and ``other`` (BEGIN, COMMIT,
      ROLLBACK, DDL, and raw SQL that is none of the above).
    - ``rows_read`` / ``rows_written``: rows returned by queries / rows inserted, updated, deleted.
    - ``flushes``: flushes that sent statements.
    - ``db_time``: seconds spent awaiting the database.
    - ``identity_map_size``, ``pending_new``, ``pending_dirty``, ``pending_deleted``: what the
      session holds now.
    - ``n_plus_one``: call sites found reading rows one key at a time, over and over (N+1).
    """

    statements: Mapping[str, int]
    rows_read: int
    rows_written: int
    flushes: int
    db_time: float  # seconds spent awaiting the database
    identity_map_size: int
    pending_new: int
    pending_dirty: int
    pending_deleted: int
    n_plus_one: int = 0

    @property
    def total_statements(self) -> int:
        """All statements, of every kind."""
        return sum(self.statements.values())


class StatsRecorder:
    """Counts what the session's connection runs (the connection's ``Observer``)."""

    __slots__ = ("db_time", "flushes", "rows_read", "rows_written", "statements")

    def __init__(self) -> None:
        self.statements: dict[str, int] = {}
        self.rows_read = 0
        self.rows_written = 0
        self.flushes = 0
        self.db_time = 0.0

    def statement(self, kind: str, elapsed: float, rows_read: int, rows_written: int) -> None:
        self.statements[kind] = self.statements.get(kind, 0) + 1
        self.rows_read += rows_read
        self.rows_written += rows_written
        self.db_time += elapsed

    def snapshot(self, identity_map_size: int, new: int, dirty: int, deleted: int, n_plus_one: int) -> SessionStats:
        return SessionStats(
            statements=MappingProxyType(dict(self.statements)),
            rows_read=self.rows_read,
            rows_written=self.rows_written,
            flushes=self.flushes,
            db_time=self.db_time,
            identity_map_size=identity_map_size,
            pending_new=new,
            pending_dirty=dirty,
            pending_deleted=deleted,
            n_plus_one=n_plus_one,
        )
