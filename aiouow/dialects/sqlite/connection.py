"""One aiosqlite connection: lazy BEGIN, the pool's write lock, flushes and the fused commit."""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import TYPE_CHECKING, Any

import aiosqlite

from ..._txoptions import DEFAULT, Isolation, TransactionOptions
from ..._unitofwork import InsertStep, Step, UpdateStep, expected_rows
from ...errors import (
    ConnectionLostError,
    DatabaseError,
    OperationalError,
    SerializationError,
)
from .._base import CommitOutcome, Connection, Row, SavepointVerb, log_statement, rows_read, statement_kind
from .batch import COMMIT_IF, FETCH, ONE, RAW, Batch, Statement, reads_only, run_batch
from .dialect import SQLiteDialect
from .errors import DRIVER_ERRORS, translate
from .statements import delete_statements, insert_statements, update_statement

if TYPE_CHECKING:
    from .pool import SQLitePool


class Phase(enum.Enum):
    """Where a connection's transaction stands, and whether it holds the pool's write lock.

    ``NOT_BEGUN``: nothing sent yet (the BEGIN goes with the first statement). ``LOCKED``: the
    write lock is held, and ``BEGIN IMMEDIATE`` will go with the first statement. ``READING``: a
    deferred BEGIN was sent (a read snapshot). ``READING_LOCKED``: that, with the write lock held
    (the next write takes SQLite's lock). ``WRITING``: SQLite's write lock is held (``BEGIN
    IMMEDIATE`` was sent, or a write went through), and so is the pool's.
    """

    NOT_BEGUN = "not begun"
    LOCKED = "locked"
    READING = "reading"
    READING_LOCKED = "reading, locked"
    WRITING = "writing"

    @property
    def begun(self) -> bool:
        return self in _BEGUN

    @property
    def locked(self) -> bool:
        return self in _LOCKED


_BEGUN = frozenset({Phase.READING, Phase.READING_LOCKED, Phase.WRITING})
_LOCKED = frozenset({Phase.LOCKED, Phase.READING_LOCKED, Phase.WRITING})


class SQLiteConnection(Connection):
    """One aiosqlite connection of a `SQLitePool`.

    Transactions start lazily: ``BEGIN`` (or ``BEGIN IMMEDIATE`` when the pool's write lock is
    already held) goes out with the first statement. A read transaction that starts writing is
    upgraded in place; only when its snapshot turns out stale (another writer committed since it
    began) is it restarted as ``BEGIN IMMEDIATE``, which is safe because it has written nothing.
    """

    dialect: SQLiteDialect
    driver_errors = DRIVER_ERRORS
    translate = staticmethod(translate)

    def __init__(self, pool: SQLitePool, db: aiosqlite.Connection) -> None:
        self.pool = pool
        self.dialect = pool.dialect
        self.db = db
        self.phase = Phase.NOT_BEGUN
        self.options = DEFAULT  # (of the open transaction)
        self.echo = pool.echo
        self._last_batch: Batch | None = None  # the last call to aiosqlite's thread
        #: The last run_steps(commit=True): its steps, their statement spans, its results once committed.
        self._fused: tuple[Sequence[Step], list[tuple[int, int]], list[Any] | None] = ((), [], None)

    async def _exec(self, sql: str, action: str, params: Sequence[Any] = ()) -> aiosqlite.Cursor:
        cur: aiosqlite.Cursor = await self._call(statement_kind(sql), sql, params, action, self.db.execute, sql, params)
        return cur

    async def begin(self, options: TransactionOptions = DEFAULT) -> None:
        """Nothing to send yet: the BEGIN goes with the transaction's first statement.

        ``serializable``: a read transaction whose snapshot went stale is not restarted for
        writing (which would let it write over what it did not see): its write raises
        `SerializationError`. (A read-only session refuses writes itself: `TransactionOptions`.)"""
        self.options = options

    def _begin_statements(self) -> list[Statement]:
        """The BEGIN to send ahead of the next statement, in the same hop, if none was sent yet."""
        phase = self.phase
        if phase.begun:
            return []
        # The phase first: an interrupted BEGIN still runs in aiosqlite's thread, and the ROLLBACK
        # of the cleanup must follow it (rollback() tolerates a BEGIN that did not happen).
        if phase is Phase.LOCKED:
            self.phase = Phase.WRITING
            return [Statement("BEGIN IMMEDIATE", (), ONE, "begin a write transaction")]
        self.phase = Phase.READING
        return [Statement("BEGIN", (), ONE, "begin a transaction")]

    async def _ensure_begun(self) -> None:
        begin = self._begin_statements()
        if begin:
            await self._batch(begin)

    async def _batch(self, statements: Sequence[Statement]) -> None:
        """Run statements in one hop to aiosqlite's thread; driver errors translated, each statement observed.

        aiosqlite has no public call for several statements at once, so this queues one function
        through its ``_execute``, the call all of its own methods use (tests pin that it exists).
        """
        if self.broken:  # closed under the session (its pool was closed): nothing is sent
            raise ConnectionLostError(f"cannot {statements[0].action}: the connection is closed (was its pool closed?)")
        if self.echo:
            for st in statements:
                log_statement(st.sql, st.params)
        batch = self._last_batch = Batch(statements)
        try:
            await self.db._execute(run_batch, self.db._conn, batch)  # type: ignore[no-untyped-call]
        except DRIVER_ERRORS as exc:
            if not batch.started:  # refused before it reached the thread (a closed connection): nothing was sent
                self._last_batch = None
            failed = next((st for st in statements if not st.done), statements[-1])
            self._observe_batch(statements, failed)
            raise translate(exc, failed.action) from exc
        self._last_batch = None  # ended well: nothing to stop or ask about (and its rows are not kept)
        self._observe_batch(statements, None)

    def _observe_batch(self, statements: Sequence[Statement], failed: Statement | None) -> None:
        obs = self.observer
        for st in statements:
            if st.done:
                if st.mode is COMMIT_IF:
                    obs.statement(st.kind, st.elapsed, 0, 0)
                elif st.mode is RAW:
                    _, rows, count = st.result
                    written = count if st.kind in ("insert", "update", "delete") and count > 0 else 0
                    obs.statement(st.kind, st.elapsed, len(rows), written)
                elif st.mode is FETCH and st.written < 0:
                    obs.statement(st.kind, st.elapsed, len(st.result), 0)
                else:
                    obs.statement(st.kind, st.elapsed, 0, st.written if st.written >= 0 else max(st.result, 0))
            elif st is failed:
                obs.statement(st.kind, 0.0, 0, 0)  # a failed statement counts too

    async def prepare_write(self, *, fresh_reads: bool = False) -> None:
        """Make the open transaction able to write: take the pool's write lock (waiting up to the
        pool's ``busy_timeout``). ``fresh_reads``: the next reads must see the latest committed
        rows, as a locking read does (a read transaction is restarted for writing)."""
        if not self.phase.locked:
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
            self.phase = Phase.READING_LOCKED if self.phase is Phase.READING else Phase.LOCKED
        if fresh_reads and self.phase is Phase.READING_LOCKED and not self._serializable:
            await self._restart_for_writing()

    async def _restart_for_writing(self) -> None:
        # Only a transaction that has written nothing gets here: dropping its snapshot loses nothing.
        await self._rollback_statement("restart the transaction for writing")
        self.phase = Phase.WRITING
        await self._exec("BEGIN IMMEDIATE", "begin a write transaction")

    async def _rollback_statement(self, action: str) -> None:
        try:
            await self._exec("ROLLBACK", action)
        except OperationalError as exc:
            # After an interrupted BEGIN or a failed COMMIT there may be no transaction left.
            if "no transaction is active" not in str(exc):
                raise

    async def _write_batch(self, make: Callable[[], list[Statement]]) -> list[Statement]:
        """Run write statements in one hop (with the BEGIN, when none was sent yet).

        The first write of a read transaction upgrades it; if its snapshot is stale, the
        transaction is restarted (it has written nothing) and the statements run again.
        """
        begin = self._begin_statements()
        statements = make()
        if begin or self.phase is Phase.WRITING:
            await self._batch(begin + statements)
            self.phase = Phase.WRITING
            return statements
        try:
            await self._batch(statements)
        except (SerializationError, OperationalError) as exc:
            # SQLite does not wait for its write lock when a read transaction starts writing: it
            # answers SQLITE_BUSY at once (or SQLITE_BUSY_SNAPSHOT, when another writer committed
            # since the snapshot). Nothing was written: restart as BEGIN IMMEDIATE, which waits
            # up to busy_timeout like any other writer.
            busy = getattr(exc.__cause__, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT")
            if statements[0].done or not busy:
                raise
            if self._serializable:
                raise SerializationError(
                    f"cannot {statements[0].action}: another connection committed since this serializable "
                    "transaction read; run the whole transaction again (aiouow.run_transaction does)"
                ) from exc
            await self._restart_for_writing()
            statements = make()
            await self._batch(statements)
        self.phase = Phase.WRITING
        return statements

    @property
    def _serializable(self) -> bool:
        return self.options.isolation is Isolation.SERIALIZABLE

    def _end(self) -> None:
        locked = self.phase.locked
        self.phase = Phase.NOT_BEGUN
        if locked:
            self.pool.write_lock.release()

    async def commit(self) -> None:
        try:
            if self.phase.begun:
                await self._exec("COMMIT", "commit")
        finally:
            self._end()

    async def rollback(self) -> None:
        try:
            if self.phase.begun:
                await self._rollback_statement("roll back")
        finally:
            self._end()

    async def savepoint(self, verb: SavepointVerb, name: str) -> None:
        statement = Statement(f"{verb.value} {name}", (), ONE, verb.action)
        if verb is SavepointVerb.OPEN and not self.options.read_only:
            # A savepoint opens a write transaction: the restart that a stale read snapshot needs
            # before its first write (ROLLBACK, BEGIN IMMEDIATE) would drop the savepoint, so it
            # happens now, before there is one. (Serializable transactions are never restarted.)
            await self.prepare_write(fresh_reads=True)
        await self._batch([*self._begin_statements(), statement])

    async def fetch(self, sql: str, params: Sequence[Any], *, write: bool = False) -> list[Row]:
        if write:
            await self.prepare_write(fresh_reads=True)
        query = Statement(sql, params, FETCH, "run query")
        await self._batch([*self._begin_statements(), query])  # the BEGIN, if any, in the same hop
        rows: list[Row] = query.result
        return rows

    async def execute_raw(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        if reads_only(sql):
            statement = Statement(sql, params, RAW, "execute SQL")
            await self._batch([*self._begin_statements(), statement])  # the BEGIN, if any, in the same hop
        else:
            await self.prepare_write()
            (statement,) = await self._write_batch(lambda: [Statement(sql, params, RAW, "execute SQL")])
        names, rows, _ = statement.result
        return [dict(zip(names, r, strict=True)) for r in rows]

    async def stream(
        self, sql: str, params: Sequence[Any], batch_size: int, *, write: bool = False
    ) -> AsyncGenerator[list[Row], None]:
        if write:
            await self.prepare_write(fresh_reads=True)
        await self._ensure_begun()
        cur = await self._call("select", sql, params, "run query", self.db.execute, sql, params)
        try:
            while True:
                fetched = await self._call("fetch", "", (), "fetch rows", cur.fetchmany, batch_size, counts=rows_read)
                rows: list[Row] = list(fetched)
                if not rows:
                    return
                yield rows
        finally:
            await cur.close()

    async def commit_steps(self, steps: Sequence[Step], written: Callable[[list[Any]], None]) -> None:
        """The fused commit: the flush's statements and the COMMIT in one call to aiosqlite's
        thread (one hop instead of two), the COMMIT held back when a step matched other rows
        than expected; ``written`` gets the results after the COMMIT."""
        if not steps:
            await super().commit_steps(steps, written)
            return
        self.commit_sent = False
        written(await self.run_steps(steps, commit=True))

    def commit_outcome(self, steps: Sequence[Step], exc: BaseException) -> tuple[CommitOutcome, list[Any] | None]:
        if not steps:
            return super().commit_outcome(steps, exc)
        committed, results = self._fused_outcome(steps)
        if committed:
            return CommitOutcome.COMMITTED, results
        return (CommitOutcome.NOT_COMMITTED if committed is False else CommitOutcome.UNKNOWN), None

    async def run_steps(self, steps: Sequence[Step], *, commit: bool = False) -> list[Any]:
        # Every statement of the flush, and with commit=True the COMMIT, go to aiosqlite's thread in one hop.
        await self.prepare_write()
        spans: list[tuple[int, int]] = []
        expected = expected_rows(steps)

        def make() -> list[Statement]:
            statements: list[Statement] = []
            spans.clear()
            for step in steps:
                first = len(statements)
                if isinstance(step, InsertStep):
                    statements.extend(insert_statements(self.dialect, step))
                elif isinstance(step, UpdateStep):
                    statements.append(update_statement(self.dialect, step))
                else:
                    statements.extend(delete_statements(self.dialect, step))
                spans.append((first, len(statements)))
            if commit:
                checks = [(statements[a:b], n) for (a, b), n in zip(spans, expected, strict=True) if n is not None]
                statements.append(Statement("COMMIT", checks, COMMIT_IF, "commit"))
            return statements

        if commit:  # _fused_outcome() answers for this call, and may be asked after an interruption
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
        self, steps: Sequence[Step], spans: list[tuple[int, int]], statements: Sequence[Statement]
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

    def _fused_outcome(self, steps: Sequence[Step]) -> tuple[bool | None, list[Any] | None]:
        """After ``run_steps(steps, commit=True)`` was interrupted and the cleanup ran: (True,
        its results) when its COMMIT went through, (False, None) when it did not, (None, None)
        when that cannot be known (the call may still be running)."""
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
        if last.mode is not COMMIT_IF or not last.done:
            return False, None
        return True, self._results(steps, spans, statements)

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
        with contextlib.suppress(*DRIVER_ERRORS):  # a connection that already failed has nothing to release
            await self.db.close()

    async def abort(self) -> None:
        # sqlite3's interrupt() is thread-safe: it stops the statement running in aiosqlite's
        # thread, so the ROLLBACK queued behind it runs at once instead of waiting it out.
        batch = self._last_batch
        if batch is not None:
            batch.stopped = True
        with contextlib.suppress(*DRIVER_ERRORS):
            await self.db.interrupt()

    def close_now(self) -> None:
        self.broken = True
        self._end()
        with contextlib.suppress(*DRIVER_ERRORS):
            self.db.stop()  # closes the sqlite3 connection in its thread once queued calls are done
