"""Statements that run back to back in aiosqlite's thread, in one call (one hop)."""

from __future__ import annotations

import enum
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from .._base import (
    statement_kind,
)


def reads_only(sql: str) -> bool:
    """Whether raw SQL surely only reads (anything else takes the write lock first)."""
    words = sql.lstrip().split(None, 1)
    first = words[0].lower() if words else ""
    if first in ("select", "explain", "values"):
        return True
    return first == "pragma" and "=" not in sql and "(" not in sql


class Mode(enum.Enum):
    """How a batched statement runs, and what it leaves in `Statement.result`."""

    #: A query: its rows.
    FETCH = "fetch"
    #: ``executemany`` over the rows of a step: the row count.
    MANY = "many"
    #: One ``execute``: the row count.
    ONE = "one"
    #: A COMMIT, sent only when the statements before it matched the rows they were expected to.
    COMMIT_IF = "commit-if"
    #: Raw SQL: its column names, rows and row count.
    RAW = "raw"
    #: An INSERT ... RETURNING the generated key: the keys, sorted (SQLite returns them in no set
    #: order, and they grow in VALUES order). The rows are not kept, so that the objects for them
    #: do not pile up (and set off garbage collections).
    KEYS = "keys"


FETCH, MANY, ONE, COMMIT_IF, RAW, KEYS = Mode.FETCH, Mode.MANY, Mode.ONE, Mode.COMMIT_IF, Mode.RAW, Mode.KEYS


class Statement:
    """One statement of a batch that runs in aiosqlite's thread in one go (see `run_batch`)."""

    __slots__ = ("action", "done", "elapsed", "kind", "mode", "params", "result", "sql", "written")

    def __init__(self, sql: str, params: Any, mode: Mode, action: str, written: int = -1) -> None:
        self.kind = statement_kind(sql)
        self.sql = sql
        self.params = params
        self.mode = mode
        self.action = action  # what the error message says could not be done
        self.written = written  # rows written, when known before running (inserts); -1: the row count
        self.result: Any = None
        self.elapsed = 0.0
        self.done = False


class Batch:
    """Statements handed to aiosqlite's thread in one call; ``ended`` once that call is over."""

    __slots__ = ("ended", "started", "statements", "stopped")

    def __init__(self, statements: Sequence[Statement]) -> None:
        self.statements = statements
        #: Set in aiosqlite's thread as the call begins: a batch that never started sent nothing
        #: (aiosqlite refuses calls on a closed connection before queuing them).
        self.started = False
        self.ended = False
        #: Set by `SQLiteConnection.abort`: no further statement starts (sqlite3's interrupt()
        #: stops only the statement running at that moment).
        self.stopped = False


def run_batch(db: sqlite3.Connection, batch: Batch) -> None:
    """Run statements back to back; this runs in aiosqlite's thread (one hop for all of them)."""
    batch.started = True
    clock = time.perf_counter
    statements = batch.statements
    try:
        for st in statements:
            if batch.stopped:
                raise sqlite3.OperationalError("interrupted")
            started = clock()
            if st.mode is KEYS:
                st.result = sorted([row[0] for row in db.execute(st.sql, st.params)])
            elif st.mode is FETCH:
                st.result = db.execute(st.sql, st.params).fetchall()
            elif st.mode is MANY:
                st.result = db.executemany(st.sql, st.params).rowcount
            elif st.mode is ONE:
                st.result = db.execute(st.sql, st.params).rowcount
            elif st.mode is RAW:
                cur = db.execute(st.sql, st.params)
                rows = cur.fetchall()
                st.result = ([d[0] for d in cur.description or ()], rows, cur.rowcount)
            else:  # COMMIT_IF: params are (statements of a step, rows they must match) pairs
                if any(sum(s.result for s in part) != n for part, n in st.params):
                    return  # a step matched other rows than expected: the caller raises, then rolls back
                db.execute(st.sql)
            st.elapsed = clock() - started
            st.done = True
    finally:
        batch.ended = True
