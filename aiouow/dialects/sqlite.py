"""The SQLite dialect, on aiosqlite.

Every connection runs in WAL mode with foreign keys on. Readers share the database; writers
are serialized inside the pool by an asyncio lock taken at a transaction's first write, so
sessions of one pool never meet "database is locked". A transaction that has only read when it
first writes is restarted as ``BEGIN IMMEDIATE`` under the lock: its earlier reads behave as
under PostgreSQL's READ COMMITTED, and the write can never fail on a stale snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import aiosqlite
import anyio

from .._expressions import Column
from .._types import ColumnType, Kind, dump_json
from .._unitofwork import DeleteStep, InsertStep, Step, UpdateStep, expected_rows
from .._url import DatabaseURL, PoolOptions
from ..errors import (
    AiouowError,
    CheckViolationError,
    ConnectionLostError,
    DatabaseError,
    DataError,
    ForeignKeyViolationError,
    IntegrityError,
    NotNullViolationError,
    OperationalError,
    PoolTimeoutError,
    SerializationError,
    UniqueViolationError,
)
from ._base import (
    UNOBSERVED,
    Connection,
    Converter,
    Dialect,
    DriverPool,
    PoolStats,
    Row,
    log_statement,
    statement_kind,
)


def _variable_limit() -> int:
    probe = sqlite3.connect(":memory:")
    try:
        return int(probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    finally:
        probe.close()


T = TypeVar("T")

VARIABLE_LIMIT = _variable_limit()
MAX_ROWS_PER_STATEMENT = 500  # measured: larger VALUES lists cost more CPU per row, not less


def _load_decimal(v: Any) -> Decimal:
    return Decimal(v) if isinstance(v, str) else Decimal(str(v))


_TO_DB: dict[Kind, Converter | None] = {
    Kind.INT: None,
    Kind.FLOAT: float,
    Kind.BOOL: int,
    Kind.STR: None,
    Kind.BYTES: None,
    Kind.DECIMAL: str,
    # Fixed width (microseconds always written), so that text order is time order.
    Kind.DATETIME: lambda v: v.isoformat(sep=" ", timespec="microseconds"),
    Kind.DATE: lambda v: v.isoformat(),
    Kind.TIME: lambda v: v.isoformat(timespec="microseconds"),
    Kind.UUID: str,
    Kind.JSON: dump_json,
}

_FROM_DB: dict[Kind, Converter | None] = {
    Kind.INT: None,
    Kind.FLOAT: float,
    Kind.BOOL: bool,
    Kind.STR: None,
    Kind.BYTES: None,
    Kind.DECIMAL: _load_decimal,
    Kind.DATETIME: dt.datetime.fromisoformat,
    Kind.DATE: dt.date.fromisoformat,
    Kind.TIME: dt.time.fromisoformat,
    Kind.UUID: uuid.UUID,
    Kind.JSON: json.loads,
}

_SQL_TYPES: dict[Kind, str] = {
    Kind.INT: "INTEGER",
    Kind.FLOAT: "REAL",
    Kind.BOOL: "INTEGER",
    Kind.STR: "TEXT",
    Kind.BYTES: "BLOB",
    # Decimal and time values are stored as text so that they stay exact.
    Kind.DECIMAL: "TEXT",
    Kind.DATETIME: "TEXT",
    Kind.DATE: "TEXT",
    Kind.TIME: "TEXT",
    Kind.UUID: "TEXT",
    Kind.JSON: "TEXT",
}


class SQLiteDialect(Dialect):
    """SQL and values for SQLite."""

    name = "sqlite"
    flat_inserts = True  # keys come back from multi-row INSERT ... VALUES ... RETURNING

    def to_db(self, ctype: ColumnType) -> Converter | None:
        if ctype.kind is Kind.ENUM:
            return _enum_value
        return _TO_DB[ctype.kind]

    def from_db(self, ctype: ColumnType) -> Converter | None:
        if ctype.kind is Kind.ENUM:
            return ctype.python_type  # type: ignore[no-any-return]
        return _FROM_DB[ctype.kind]

    @staticmethod
    def quote(identifier: str) -> str:
        # Square brackets, not double quotes: SQLite reads a double-quoted name that matches no
        # column as a string literal (its "double-quoted string" misfeature), so a field whose
        # column is missing from the table would read back its own name, and compare equal to
        # it, with no error. A bracketed name can only be an identifier: "no such column".
        # (Identifiers are checked plain names, so nothing inside needs escaping.)
        return f"[{identifier}]"

    def placeholder(self, index: int) -> str:
        return f"?{index}"  # numbered, so that one parameter can appear twice in an expression

    def compare_sql(self, column: Column[Any], sql: str) -> str:
        kind = column.ctype.kind
        if kind is Kind.DECIMAL:
            # Decimals are stored as exact text; compare and order them as numbers.
            return f"CAST({sql} AS NUMERIC)"
        if kind is Kind.DATETIME and column.ctype.timezone:
            # Aware datetimes keep their own offset in the text; compare them as UTC instants,
            # exact to the microsecond (strftime normalizes the seconds, the fraction is kept).
            return f"(strftime('%Y-%m-%d %H:%M:%S', {sql}) || substr({sql}, 20, 7))"
        return sql

    def for_update_clause(self) -> str:
        return ""  # the session takes the pool's write lock instead

    def column_type_sql(self, column: Column[Any]) -> str:
        if column.ctype.kind is Kind.ENUM:
            return "INTEGER" if column.ctype.enum_values_are_int else "TEXT"
        return _SQL_TYPES[column.ctype.kind]

    def generated_pk_sql(self, column: Column[Any]) -> str:
        return f"{self.quote(column.column_name)} INTEGER PRIMARY KEY AUTOINCREMENT"


def _connect_daemon(path: str) -> aiosqlite.Connection:
    """``aiosqlite.connect()``, its worker thread made a daemon before it starts.

    aiosqlite's threads are not daemons (since 0.22): a program that ends without closing its
    pool (an exception escaping ``asyncio.run``, a forgotten ``close()``) would hang at exit,
    waiting for them. SQLite needs no goodbye: an unfinished transaction is rolled back from the
    WAL when the file is next opened, as after a crash, and committed ones are on disk.
    """
    db = aiosqlite.connect(path, isolation_level=None)
    thread = getattr(db, "_thread", db)  # aiosqlite >= 0.22 owns a thread; older versions are one
    if isinstance(thread, threading.Thread):
        thread.daemon = True
    return db


def _enum_value(v: Any) -> Any:
    return v.value


_CONSTRAINT_ERRORS: dict[str, type[IntegrityError]] = {
    "SQLITE_CONSTRAINT_UNIQUE": UniqueViolationError,
    "SQLITE_CONSTRAINT_PRIMARYKEY": UniqueViolationError,
    "SQLITE_CONSTRAINT_ROWID": UniqueViolationError,
    "SQLITE_CONSTRAINT_FOREIGNKEY": ForeignKeyViolationError,
    "SQLITE_CONSTRAINT_NOTNULL": NotNullViolationError,
    "SQLITE_CONSTRAINT_CHECK": CheckViolationError,
}


def translate(exc: BaseException, action: str) -> AiouowError:
    """Translate an sqlite3/aiosqlite exception into the aiouow tree (the caller sets ``__cause__``)."""
    msg = str(exc)
    name = getattr(exc, "sqlite_errorname", "") or ""
    if isinstance(exc, sqlite3.IntegrityError):
        cls = _CONSTRAINT_ERRORS.get(name, IntegrityError)
        err: IntegrityError = cls(f"cannot {action}: {_constraint_reason(cls, msg)} ({msg})")
        err.constraint = msg.split(": ", 1)[1] if ": " in msg else None
        return err
    if isinstance(exc, (sqlite3.DataError, OverflowError)):
        return DataError(f"cannot {action}: a value does not fit its column ({msg})")
    if name == "SQLITE_BUSY_SNAPSHOT":
        return SerializationError(f"cannot {action}: another connection wrote since this transaction read ({msg})")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return OperationalError(f"cannot {action}: the database is locked by another process ({msg})")
    if isinstance(exc, sqlite3.OperationalError):
        return OperationalError(f"cannot {action}: {msg}")
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in msg.lower():
        return ConnectionLostError(f"cannot {action}: the connection is closed ({msg})")
    if isinstance(exc, ValueError) and "closed" in msg.lower():
        return ConnectionLostError(f"cannot {action}: the connection is closed ({msg})")
    if isinstance(exc, (sqlite3.Error, ValueError)):
        return DatabaseError(f"cannot {action}: {msg}")
    return DatabaseError(f"cannot {action}: {type(exc).__name__}: {msg}")


def _constraint_reason(cls: type[IntegrityError], msg: str) -> str:
    where = msg.split(": ", 1)[1] if ": " in msg else ""
    if cls is UniqueViolationError:
        return f"unique constraint on {where} violated"
    if cls is ForeignKeyViolationError:
        return "foreign key constraint violated (a referenced row is missing, or a row still references this one)"
    if cls is NotNullViolationError:
        return f"{where} may not be NULL"
    if cls is CheckViolationError:
        return f"check constraint {where} violated"
    return "constraint violated"


#: What translate() maps each sqlite3 exception class to (tests check none is left out).
TRANSLATED: tuple[type[BaseException], ...] = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.OperationalError,
    sqlite3.ProgrammingError,
    sqlite3.NotSupportedError,
    sqlite3.InternalError,
    sqlite3.InterfaceError,
    sqlite3.DatabaseError,
    sqlite3.Error,
    sqlite3.Warning,
)

_DRIVER_ERRORS = (sqlite3.Error, sqlite3.Warning, OverflowError, ValueError)


def _reads_only(sql: str) -> bool:
    """Whether raw SQL surely only reads (anything else takes the write lock first)."""
    words = sql.lstrip().split(None, 1)
    first = words[0].lower() if words else ""
    if first in ("select", "explain", "values"):
        return True
    return first == "pragma" and "=" not in sql and "(" not in sql


#: How a batched statement runs: its rows fetched, or its row count read (executemany or execute),
#: or (a COMMIT) only when the statements before it matched the rows they were expected to, or (raw
#: SQL) its column names, rows and row count, or (an INSERT ... RETURNING the generated key) the
#: keys, sorted: SQLite returns them in no set order, and they grow in VALUES order. The rows are
#: not kept, so that the objects for them do not pile up (and set off garbage collections).
FETCH, MANY, ONE, COMMIT_IF, RAW, KEYS = 0, 1, 2, 3, 4, 5


class _Statement:
    """One statement of a batch that runs in aiosqlite's thread in one go (see `_run_batch`)."""

    __slots__ = ("action", "done", "elapsed", "kind", "mode", "params", "result", "sql", "written")

    def __init__(self, sql: str, params: Any, mode: int, action: str, written: int = -1) -> None:
        self.kind = statement_kind(sql)
        self.sql = sql
        self.params = params
        self.mode = mode
        self.action = action  # what the error message says could not be done
        self.written = written  # rows written, when known before running (inserts); -1: the row count
        self.result: Any = None
        self.elapsed = 0.0
        self.done = False


class _Batch:
    """Statements handed to aiosqlite's thread in one call; ``ended`` once that call is over."""

    __slots__ = ("ended", "statements", "stopped")

    def __init__(self, statements: Sequence[_Statement]) -> None:
        self.statements = statements
        self.ended = False
        #: Set by `SQLiteConnection.abort`: no further statement starts (sqlite3's interrupt()
        #: stops only the statement running at that moment).
        self.stopped = False


def _run_batch(db: sqlite3.Connection, batch: _Batch) -> None:
    """Run statements back to back; this runs in aiosqlite's thread (one hop for all of them)."""
    clock = time.perf_counter
    statements = batch.statements
    try:
        for st in statements:
            if batch.stopped:
                raise sqlite3.OperationalError("interrupted")
            started = clock()
            if st.mode == KEYS:
                st.result = sorted([row[0] for row in db.execute(st.sql, st.params)])
            elif st.mode == FETCH:
                st.result = db.execute(st.sql, st.params).fetchall()
            elif st.mode == MANY:
                st.result = db.executemany(st.sql, st.params).rowcount
            elif st.mode == ONE:
                st.result = db.execute(st.sql, st.params).rowcount
            elif st.mode == RAW:
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


class SQLiteConnection(Connection):
    """One aiosqlite connection of a `SQLitePool`.

    Transactions start lazily: ``BEGIN`` (or ``BEGIN IMMEDIATE`` when the pool's write lock is
    already held) goes out with the first statement. A read transaction that starts writing is
    upgraded in place; only when its snapshot turns out stale (another writer committed since it
    began) is it restarted as ``BEGIN IMMEDIATE``, which is safe because it has written nothing.
    """

    dialect: SQLiteDialect
    driver_errors = _DRIVER_ERRORS
    translate = staticmethod(translate)

    def __init__(self, pool: SQLitePool, db: aiosqlite.Connection) -> None:
        self.pool = pool
        self.dialect = pool.dialect
        self.db = db
        self._begun = False  # its BEGIN has been sent
        self._write_tx = False  # it holds SQLite's write lock (BEGIN IMMEDIATE, or a write went through)
        self._locked = False  # the pool's write lock is held
        self.echo = pool.echo
        self._last_batch: _Batch | None = None  # the last call to aiosqlite's thread
        #: The last run_steps(commit=True): its steps, their statement spans, its results once committed.
        self._fused: tuple[Sequence[Step], list[tuple[int, int]], list[Any] | None] = ((), [], None)

    async def _exec(self, sql: str, action: str, params: Sequence[Any] = ()) -> aiosqlite.Cursor:
        started = time.perf_counter()
        cur = await self._driver(sql, params, action, self.db.execute, sql, params)
        self._observe(statement_kind(sql), started)
        return cur

    async def begin(self) -> None:
        """Nothing to send yet: the BEGIN goes with the transaction's first statement."""

    def _begin_statements(self) -> list[_Statement]:
        """The BEGIN to send ahead of the next statement, in the same hop, if none was sent yet."""
        if self._begun:
            return []
        # Flags first: an interrupted BEGIN still runs in aiosqlite's thread, and the ROLLBACK of
        # the cleanup must follow it (rollback() tolerates a BEGIN that did not happen).
        self._begun = True
        if self._locked:
            self._write_tx = True
            return [_Statement("BEGIN IMMEDIATE", (), ONE, "begin a write transaction")]
        return [_Statement("BEGIN", (), ONE, "begin a transaction")]

    async def _ensure_begun(self) -> None:
        begin = self._begin_statements()
        if begin:
            await self._batch(begin)

    async def _batch(self, statements: Sequence[_Statement]) -> None:
        """Run statements in one hop to aiosqlite's thread; driver errors translated, each statement observed.

        aiosqlite has no public call for several statements at once, so this queues one function
        through its ``_execute``, the call all of its own methods use (tests pin that it exists).
        """
        if self.echo:
            for st in statements:
                log_statement(st.sql, st.params)
        batch = self._last_batch = _Batch(statements)
        try:
            await self.db._execute(_run_batch, self.db._conn, batch)  # type: ignore[no-untyped-call]
        except _DRIVER_ERRORS as exc:
            failed = next((st for st in statements if not st.done), statements[-1])
            self._observe_batch(statements, failed)
            raise translate(exc, failed.action) from exc
        self._last_batch = None  # ended well: nothing to stop or ask about (and its rows are not kept)
        self._observe_batch(statements, None)

    def _observe_batch(self, statements: Sequence[_Statement], failed: _Statement | None) -> None:
        obs = self.observer
        for st in statements:
            if st.done:
                if st.mode == COMMIT_IF:
                    obs.statement(st.kind, st.elapsed, 0, 0)
                elif st.mode == RAW:
                    _, rows, count = st.result
                    written = count if st.kind in ("insert", "update", "delete") and count > 0 else 0
                    obs.statement(st.kind, st.elapsed, len(rows), written)
                elif st.mode == FETCH and st.written < 0:
                    obs.statement(st.kind, st.elapsed, len(st.result), 0)
                else:
                    obs.statement(st.kind, st.elapsed, 0, st.written if st.written >= 0 else max(st.result, 0))
            elif st is failed:
                obs.statement(st.kind, 0.0, 0, 0)  # a failed statement counts too

    async def prepare_write(self, *, fresh_reads: bool = False) -> None:
        if not self._locked:
            lock = self.pool.write_lock
            try:
                if lock.locked():  # another session writes (or waits to): wait, up to busy_timeout
                    async with asyncio.timeout(self.pool.busy_timeout):
                        await lock.acquire()
                else:
                    await lock.acquire()  # free: returns without suspending
            except TimeoutError:
                raise OperationalError(
                    f"cannot write: the SQLite write lock was not free within {self.pool.busy_timeout} s; "
                    "another session holds an open write transaction (if it is in this same task, "
                    "commit or close it first)"
                ) from None
            self._locked = True
        if fresh_reads and self._begun and not self._write_tx:
            await self._restart_for_writing()

    async def _restart_for_writing(self) -> None:
        # Only a transaction that has written nothing gets here: dropping its snapshot loses nothing.
        await self._rollback_statement("restart the transaction for writing")
        self._write_tx = True
        await self._exec("BEGIN IMMEDIATE", "begin a write transaction")

    async def _rollback_statement(self, action: str) -> None:
        try:
            await self._exec("ROLLBACK", action)
        except OperationalError as exc:
            # After an interrupted BEGIN or a failed COMMIT there may be no transaction left.
            if "no transaction is active" not in str(exc):
                raise

    async def _write_batch(self, make: Callable[[], list[_Statement]]) -> list[_Statement]:
        """Run write statements in one hop (with the BEGIN, when none was sent yet).

        The first write of a read transaction upgrades it; if its snapshot is stale, the
        transaction is restarted (it has written nothing) and the statements run again.
        """
        begin = self._begin_statements()
        statements = make()
        if begin or self._write_tx:
            await self._batch(begin + statements)
            self._write_tx = True
            return statements
        try:
            await self._batch(statements)
        except SerializationError as exc:
            if statements[0].done or getattr(exc.__cause__, "sqlite_errorname", "") != "SQLITE_BUSY_SNAPSHOT":
                raise
            await self._restart_for_writing()
            statements = make()
            await self._batch(statements)
        self._write_tx = True
        return statements

    def _end(self) -> None:
        self._begun = self._write_tx = False
        if self._locked:
            self._locked = False
            self.pool.write_lock.release()

    async def commit(self) -> None:
        try:
            if self._begun:
                await self._exec("COMMIT", "commit")
        finally:
            self._end()

    async def rollback(self) -> None:
        try:
            if self._begun:
                await self._rollback_statement("roll back")
        finally:
            self._end()

    async def fetch(self, sql: str, params: Sequence[Any]) -> list[Row]:
        query = _Statement(sql, params, FETCH, "run query")
        await self._batch([*self._begin_statements(), query])  # the BEGIN, if any, in the same hop
        rows: list[Row] = query.result
        return rows

    async def execute_raw(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        if _reads_only(sql):
            statement = _Statement(sql, params, RAW, "execute SQL")
            await self._batch([*self._begin_statements(), statement])  # the BEGIN, if any, in the same hop
        else:
            await self.prepare_write()
            (statement,) = await self._write_batch(lambda: [_Statement(sql, params, RAW, "execute SQL")])
        names, rows, _ = statement.result
        return [dict(zip(names, r, strict=True)) for r in rows]

    async def stream(self, sql: str, params: Sequence[Any], batch_size: int) -> AsyncGenerator[list[Row], None]:
        await self._ensure_begun()
        started = time.perf_counter()
        cur = await self._driver(sql, params, "run query", self.db.execute, sql, params)
        self._observe("select", started)
        try:
            while True:
                started = time.perf_counter()
                rows: list[Row] = list(await self._driver("", (), "fetch rows", cur.fetchmany, batch_size))
                self._observe("fetch", started, rows_read=len(rows))
                if not rows:
                    return
                yield rows
        finally:
            await cur.close()

    async def run_steps(self, steps: Sequence[Step], *, commit: bool = False) -> list[Any]:
        # Every statement of the flush, and with commit=True the COMMIT, go to aiosqlite's thread in one hop.
        spans: list[tuple[int, int]] = []
        expected = expected_rows(steps)

        def make() -> list[_Statement]:
            statements: list[_Statement] = []
            spans.clear()
            for step in steps:
                first = len(statements)
                if isinstance(step, InsertStep):
                    statements.extend(self._insert_statements(step))
                elif isinstance(step, UpdateStep):
                    statements.append(self._update_statement(step))
                else:
                    statements.extend(self._delete_statements(step))
                spans.append((first, len(statements)))
            if commit:
                checks = [(statements[a:b], n) for (a, b), n in zip(spans, expected, strict=True) if n is not None]
                statements.append(_Statement("COMMIT", checks, COMMIT_IF, "commit"))
            return statements

        if commit:  # fused_outcome() answers for this call, and may be asked after an interruption
            self._fused = (steps, spans, None)
            self._last_batch = None
        statements = await self._write_batch(make)
        results = self._results(steps, spans, statements)
        if commit:
            if statements[-1].done:
                self._fused = (steps, spans, results)
                self._end()
            elif all(r == n for r, n in zip(results, expected, strict=True) if n is not None):
                raise DatabaseError("cannot commit: the COMMIT was not sent although every step matched its rows")
        return results

    def _results(
        self, steps: Sequence[Step], spans: list[tuple[int, int]], statements: Sequence[_Statement]
    ) -> list[Any]:
        out: list[Any] = []
        for step, (first, last) in zip(steps, spans, strict=True):
            part = statements[first:last]
            if isinstance(step, InsertStep):
                # The generated keys, each statement's sorted already (see KEYS).
                out.append(None if step.returning is None else [k for st in part for k in st.result])
            else:
                out.append(sum(st.result for st in part))
        return out

    def forget_calls(self) -> None:
        """Lent to a new session: what the last calls did is no longer anyone's business."""
        self._last_batch = None
        self._fused = ((), [], None)

    def fused_outcome(self, steps: Sequence[Step]) -> tuple[bool | None, list[Any] | None]:
        fused, spans, committed = self._fused
        if fused is not steps:
            return False, None  # that call never started
        if committed is not None:
            return True, committed  # it returned, committed (the interruption came after)
        batch = self._last_batch  # kept when a call to the thread did not return normally
        if batch is None:
            return False, None  # it sent nothing, or its COMMIT was held back (a stale step)
        if not batch.ended:
            return None, None  # still running in aiosqlite's thread (the cleanup gave up waiting)
        statements = batch.statements
        last = statements[-1]
        if last.mode != COMMIT_IF or not last.done:
            return False, None
        return True, self._results(steps, spans, statements)

    def _insert_statements(self, step: InsertStep) -> list[_Statement]:
        q = self.dialect.quote
        mapper = step.mapper
        action = f"insert {mapper.name} into {mapper.table}"
        cols = ", ".join(q(c.column_name) for c in step.columns)
        rows = step.rows  # driver parameters already (planned for this dialect)
        if step.returning is None:
            sql = f"INSERT INTO {q(mapper.table)} ({cols}) VALUES ({', '.join('?' * len(step.columns))})"
            return [_Statement(sql, rows, MANY, action, written=len(rows))]
        ret = q(step.returning.column_name)
        if not step.columns:
            sql = f"INSERT INTO {q(mapper.table)} DEFAULT VALUES RETURNING {ret}"
            return [_Statement(sql, (), KEYS, action, written=1) for _ in rows]
        ncols = len(step.columns)
        per = max(1, min(MAX_ROWS_PER_STATEMENT, VARIABLE_LIMIT // ncols))
        group = "(" + ", ".join("?" * ncols) + ")"
        head = f"INSERT INTO {q(mapper.table)} ({cols}) VALUES "
        tail = f" RETURNING {ret}"
        n = len(step.objs)
        full = head + ", ".join([group] * per) + tail if n >= per else ""
        assert step.flat  # (`flat_inserts`): every row's values in turn
        out = []
        for start in range(0, n, per):
            count = min(per, n - start)
            sql = full if count == per else head + ", ".join([group] * count) + tail
            chunk = rows[start * ncols : (start + count) * ncols]
            out.append(_Statement(sql, chunk, KEYS, action, written=count))
        return out

    def _update_statement(self, step: UpdateStep) -> _Statement:
        q = self.dialect.quote
        mapper = step.mapper
        sets = [f"{q(c.column_name)} = ?" for c in step.columns]
        where = [f"{q(c.column_name)} = ?" for c in mapper.pk]
        param_cols: list[Column[Any]] = [*step.columns, *mapper.pk]
        if step.version is not None:
            v = q(step.version.column_name)
            sets.append(f"{v} = {v} + 1")
            where.append(f"{v} = ?")
            param_cols.append(step.version)
        sql = f"UPDATE {q(mapper.table)} SET {', '.join(sets)} WHERE {' AND '.join(where)}"
        return _Statement(sql, step.rows, MANY, f"update {mapper.name} in {mapper.table}")

    def _delete_statements(self, step: DeleteStep) -> list[_Statement]:
        q = self.dialect.quote
        mapper = step.mapper
        action = f"delete {mapper.name} from {mapper.table}"
        if not step.single:
            param_cols: list[Column[Any]] = list(mapper.pk)
            if step.version is not None:
                param_cols.append(step.version)
            where = " AND ".join(f"{q(c.column_name)} = ?" for c in param_cols)
            return [_Statement(f"DELETE FROM {q(mapper.table)} WHERE {where}", step.keys, MANY, action)]
        # A single-column key: the keys (driver values already) in chunks of ``IN (...)``.
        ids = step.keys
        pk = q(mapper.pk[0].column_name)
        out = []
        for start in range(0, len(ids), VARIABLE_LIMIT):
            chunk = ids[start : start + VARIABLE_LIMIT]
            sql = f"DELETE FROM {q(mapper.table)} WHERE {pk} IN ({', '.join('?' * len(chunk))})"
            out.append(_Statement(sql, chunk, ONE, action))
        return out

    async def execute_script(self, statements: Sequence[str]) -> None:
        await self.prepare_write()
        try:
            await self._ensure_begun()
            for sql in statements:
                await self._exec(sql, "run DDL")
            await self.commit()
        except BaseException:
            await self.rollback()
            raise

    async def close(self) -> None:
        self._end()
        with contextlib.suppress(*_DRIVER_ERRORS):  # a connection that already failed has nothing to release
            await self.db.close()

    async def abort(self) -> None:
        # sqlite3's interrupt() is thread-safe: it stops the statement running in aiosqlite's
        # thread, so the ROLLBACK queued behind it runs at once instead of waiting it out.
        batch = self._last_batch
        if batch is not None:
            batch.stopped = True
        with contextlib.suppress(*_DRIVER_ERRORS):
            await self.db.interrupt()

    def close_now(self) -> None:
        self.broken = True
        self._end()
        with contextlib.suppress(*_DRIVER_ERRORS):
            self.db.stop()  # closes the sqlite3 connection in its thread once queued calls are done


class SQLitePool(DriverPool):
    """A pool of aiosqlite connections to one database file, with one writer at a time."""

    fuses_commit = True  # a commit is one call to aiosqlite's thread: the flush, then COMMIT
    dialect: SQLiteDialect

    def __init__(self, path: str, options: PoolOptions, cleanup: Callable[[], None] | None = None) -> None:
        self.dialect = SQLiteDialect()
        self.path = path
        self.echo = options.echo
        self.min_size = options.min_size
        self.max_size = options.max_size
        self.acquire_timeout = options.acquire_timeout
        self.busy_timeout = options.busy_timeout
        self.cleanup_timeout = options.cleanup_timeout
        # A semaphore of one rather than a Lock: its locked() also counts queued waiters, so an
        # acquire that finds it unlocked never waits (and needs no timeout).
        self.write_lock = asyncio.BoundedSemaphore(1)
        self._idle: list[SQLiteConnection] = []
        self._lent: set[SQLiteConnection] = set()
        self._drained: asyncio.Event | None = None  # set when close() waits for lent connections
        self._in_use = 0
        self._waiting = 0
        self._slots = asyncio.Semaphore(options.max_size)
        self._closed = False
        self._cleanup = cleanup

    async def open(self) -> None:
        first = await self._connect()
        try:
            await first.db.execute_fetchall("PRAGMA journal_mode=WAL")  # fetched: a statement left open blocks COMMIT
        except _DRIVER_ERRORS as exc:
            await first.close()
            raise translate(exc, f"open SQLite database {self.path!r}") from exc
        self._idle.append(first)
        while len(self._idle) < self.min_size:
            self._idle.append(await self._connect())

    async def _connect(self) -> SQLiteConnection:
        try:
            db = await _connect_daemon(self.path)
        except _DRIVER_ERRORS as exc:
            raise translate(exc, f"open SQLite database {self.path!r}") from exc
        try:
            await db.execute_fetchall(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            await db.execute_fetchall("PRAGMA foreign_keys = ON")
            await db.execute_fetchall("PRAGMA synchronous = NORMAL")
        except _DRIVER_ERRORS as exc:
            await db.close()
            raise translate(exc, f"configure SQLite database {self.path!r}") from exc
        return SQLiteConnection(self, db)

    async def acquire(self) -> SQLiteConnection:
        if self._closed:
            raise OperationalError("cannot acquire a connection: the pool is closed")
        if self._slots.locked():  # every connection is lent: wait, up to acquire_timeout
            self._waiting += 1
            try:
                async with asyncio.timeout(self.acquire_timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise PoolTimeoutError(
                    f"cannot acquire a connection: all {self.max_size} connections of the pool stayed in use "
                    f"for {self.acquire_timeout} s (raise max_size or acquire_timeout, or close sessions sooner)"
                ) from None
            finally:
                self._waiting -= 1
        else:
            await self._slots.acquire()  # free: returns without suspending
        try:
            if self._idle:
                conn = self._idle.pop()
            else:
                # Opening runs in aiosqlite's thread and cannot be stopped half-way: shield it, and
                # if we are cancelled meanwhile, keep what it opens as an idle connection.
                opening = asyncio.ensure_future(self._connect())
                try:
                    conn = await asyncio.shield(opening)
                except asyncio.CancelledError:
                    opening.add_done_callback(self._adopt)
                    raise
        except BaseException:
            self._slots.release()
            raise
        self._in_use += 1
        self._lent.add(conn)
        conn.observer = UNOBSERVED
        conn.returned = False
        conn.forget_calls()
        return conn

    def _adopt(self, opening: asyncio.Future[SQLiteConnection]) -> None:
        if opening.cancelled() or opening.exception() is not None:
            return
        conn = opening.result()
        if self._closed:
            conn.close_now()
        else:
            self._idle.append(conn)

    def _count_back(self, conn: Connection) -> SQLiteConnection | None:
        """Stop counting a lent connection; None when it was counted back already."""
        assert isinstance(conn, SQLiteConnection)
        if conn.returned:
            return None
        conn.returned = True
        self._in_use -= 1
        self._lent.discard(conn)
        if not self._lent and self._drained is not None:
            self._drained.set()
        return conn

    async def release(self, conn: Connection) -> None:
        lent = self._count_back(conn)
        if lent is None:
            return
        try:
            if lent.broken or self._closed:
                await lent.close()
            else:
                lent.observer = UNOBSERVED
                self._idle.append(lent)
        except BaseException:
            lent.close_now()
            raise
        finally:
            self._slots.release()

    def discard(self, conn: Connection) -> None:
        lent = self._count_back(conn)
        if lent is not None:
            lent.close_now()
            self._slots.release()

    async def close(self) -> None:
        """Close the idle connections; wait up to ``cleanup_timeout`` for lent ones, then close them too.

        A connection left lent (a session never closed) must not keep aiosqlite's thread, and so
        the process, alive.
        """
        if self._closed:
            return
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()
        if self._lent:
            self._drained = asyncio.Event()
            with anyio.move_on_after(self.cleanup_timeout):
                await self._drained.wait()
        for conn in list(self._lent):
            conn.close_now()
        if self._cleanup is not None:
            self._cleanup()

    def stats(self) -> PoolStats:
        idle = len(self._idle)
        return PoolStats(size=idle + self._in_use, idle=idle, in_use=self._in_use, waiting=self._waiting)


def _memory_dir() -> str | None:
    """Where ``:memory:`` databases live: pooled connections must share one database with WAL
    semantics, so it is a private file (in RAM under /dev/shm where there is one) that lives
    exactly as long as its pool. TemporaryDirectory makes it with mkdtemp (mode 0700)."""
    shm = "/dev/shm"  # noqa: S108
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


async def open_pool(url: DatabaseURL, options: PoolOptions) -> SQLitePool:
    """Open a pool on the database the URL names (``:memory:``: a private database for this pool)."""
    cleanup: Callable[[], None] | None = None
    if url.path == ":memory:":
        tmp = tempfile.TemporaryDirectory(prefix="aiouow-", dir=_memory_dir())
        path = os.path.join(tmp.name, "memory.db")
        cleanup = tmp.cleanup
    else:
        path = url.path
    pool = SQLitePool(path, options, cleanup)
    try:
        await pool.open()
    except BaseException:
        await pool.close()
        raise
    return pool
