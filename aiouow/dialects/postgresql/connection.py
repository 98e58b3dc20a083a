"""One asyncpg connection lent to a session: transactions, queries, streams and flush steps."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg.exceptions as pgerr
from asyncpg.pool import PoolConnectionProxy

from ..._expressions import Column
from ..._unitofwork import DeleteStep, InsertStep, Step, UpdateStep
from .._base import (
    Connection,
    Row,
    log_statement,
    statement_kind,
)
from .dialect import PostgresDialect
from .errors import DRIVER_ERRORS, translate

if TYPE_CHECKING:
    from .pool import PostgresPool


def status_count(status: str) -> int:
    """The row count of a command status such as ``UPDATE 3``."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class PostgresConnection(Connection):
    """One asyncpg connection lent by a :class:`PostgresPool`."""

    dialect: PostgresDialect
    driver_errors = DRIVER_ERRORS
    translate = staticmethod(translate)
    #: Raw SQL ran on the connection (it may have changed session state: settings, LISTEN,
    #: advisory locks, cursors), so its release runs asyncpg's reset query.
    ran_sql = False

    def __init__(self, pool: PostgresPool, raw: PoolConnectionProxy[Any]) -> None:
        self.pool = pool
        self.dialect = pool.dialect
        self.raw = raw
        self._tx = False
        self.echo = pool.echo

    # The statements of every transaction (BEGIN, the queries, the flush, COMMIT) await asyncpg
    # directly rather than through `_driver`: a coroutine less per statement is measurable in a
    # request. Each logs, counts and translates as `_driver` does.
    async def _status(self, sql: str, action: str, kind: str = "other") -> str:
        """Run a statement without parameters (``kind``: how the statistics count it)."""
        if self.echo:
            log_statement(sql, ())
        started = time.perf_counter()
        try:
            status: str = await self.raw.execute(sql)
        except DRIVER_ERRORS as exc:
            raise self._failed(kind, started, exc, action) from exc
        self.observer.statement(kind, time.perf_counter() - started, 0, 0)
        return status

    async def begin(self) -> None:
        await self._status("BEGIN", "begin a transaction")
        self._tx = True

    async def commit(self) -> None:
        try:
            await self._status("COMMIT", "commit")
        finally:
            self._tx = False

    async def rollback(self) -> None:
        self._tx = False
        await self._status("ROLLBACK", "roll back")

    async def fetch(self, sql: str, params: Sequence[Any], *, write: bool = False) -> list[Row]:
        # (``write`` changes nothing: PostgreSQL's row locks and READ COMMITTED reads serve both.)
        if self.echo:
            log_statement(sql, params)
        started = time.perf_counter()
        try:
            rows: list[Row] = await self.raw.fetch(sql, *params)
        except DRIVER_ERRORS as exc:
            raise self._failed("select", started, exc, "run query") from exc
        self.observer.statement("select", time.perf_counter() - started, len(rows), 0)
        return rows

    async def execute_raw(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        self.ran_sql = True
        kind = statement_kind(sql)
        dml = kind in ("insert", "update", "delete")
        started = time.perf_counter()
        # Both go through asyncpg's statement cache; a DML statement without RETURNING reports
        # its row count in the command status.
        if dml and "returning" not in sql.lower():
            written = status_count(await self._driver(sql, params, "execute SQL", self.raw.execute, sql, *params))
            records = []
        else:
            records = await self._driver(sql, params, "execute SQL", self.raw.fetch, sql, *params)
            written = len(records) if dml else 0
        self._observe(kind, started, rows_read=0 if dml else len(records), rows_written=written)
        return [dict(r.items()) for r in records]

    async def stream(
        self, sql: str, params: Sequence[Any], batch_size: int, *, write: bool = False
    ) -> AsyncGenerator[list[Row], None]:
        started = time.perf_counter()
        cursor = await self._driver(sql, params, "run query", self.raw.cursor, sql, *params)
        self._observe("select", started)
        while True:
            started = time.perf_counter()
            try:
                rows: list[Row] = await cursor.fetch(batch_size)
            except DRIVER_ERRORS as exc:
                raise translate(exc, "fetch rows") from exc
            self._observe("fetch", started, rows_read=len(rows))
            if not rows:
                return
            yield rows
            if len(rows) < batch_size:
                return

    @staticmethod
    def _arrays(columns: Sequence[Column[Any]], rows: list[tuple[Any, ...]]) -> list[Any]:
        """Driver parameters of a step whose rows hold driver values already: the row's values
        for a single row, else one array per column."""
        if not columns:
            return [len(rows)]  # rows of defaults only: their count
        if len(rows) == 1:
            return list(rows[0])
        return [list(values) for values in zip(*rows, strict=True)]

    async def run_steps(self, steps: Sequence[Step]) -> list[Any]:
        # One prepared statement, so one round trip, per step (the COMMIT is a statement of its own).
        out: list[Any] = []
        for step in steps:
            out.append(await (self.insert(step) if isinstance(step, InsertStep) else self._matched(step)))
        return out

    async def insert(self, step: InsertStep) -> list[Any] | None:
        mapper = step.mapper
        single = len(step.rows) == 1
        sql = self.dialect.flush_sql("insert", mapper, step.columns, step.returning, single and bool(step.columns))
        params = self._arrays(step.columns, step.rows)
        if self.echo:
            log_statement(sql, params)
        started = time.perf_counter()
        try:
            records = await (self.raw.fetch if step.returning is not None else self.raw.execute)(sql, *params)
        except DRIVER_ERRORS as exc:
            raise self._failed("insert", started, exc, f"insert {mapper.name} into {mapper.table}") from exc
        self.observer.statement("insert", time.perf_counter() - started, 0, len(step.rows))
        if step.returning is None:
            return None
        # Identity values are drawn in insertion order: sorted keys match the input order.
        return sorted(r[0] for r in records)

    def _update_statement(self, step: UpdateStep) -> tuple[str, list[Any]]:
        mapper = step.mapper
        rows = step.rows
        sql = self.dialect.flush_sql("update", mapper, step.columns, step.version, len(rows) == 1)
        if len(rows) == 1:  # the row's values (columns, key, version) are the parameters
            return sql, list(rows[0])
        keyed = [*step.columns, *mapper.pk] + ([step.version] if step.version is not None else [])
        return sql, self._arrays(keyed, rows)

    def _delete_statement(self, step: DeleteStep) -> tuple[str, list[Any]]:
        mapper = step.mapper
        sql = self.dialect.flush_sql("delete", mapper, (), step.version, len(step.ids) == 1)
        if step.single:  # the keys as one array (or the one key)
            return sql, [step.keys] if len(step.keys) > 1 else step.keys
        keyed = [*mapper.pk] + ([step.version] if step.version is not None else [])
        return sql, self._arrays(keyed, step.keys)

    async def _matched(self, step: UpdateStep | DeleteStep) -> int:
        """Run an UPDATE or DELETE step's statement; the rows it matched, from the command status."""
        if isinstance(step, UpdateStep):
            kind, (sql, params) = "update", self._update_statement(step)
        else:
            kind, (sql, params) = "delete", self._delete_statement(step)
        if self.echo:
            log_statement(sql, params)
        started = time.perf_counter()
        try:
            status = await self.raw.execute(sql, *params)
        except DRIVER_ERRORS as exc:
            what = f"{kind} {step.mapper.name} {'in' if kind == 'update' else 'from'} {step.mapper.table}"
            raise self._failed(kind, started, exc, what) from exc
        matched = status_count(status)
        self.observer.statement(kind, time.perf_counter() - started, 0, matched)
        return matched

    async def execute_script(self, statements: Sequence[str]) -> None:
        await self.begin()
        try:
            for sql in statements:
                await self._status(sql, "run DDL", statement_kind(sql))
            await self.commit()
        except BaseException:
            if self._tx:
                await self.rollback()
            raise

    async def close(self) -> None:
        self.close_now()

    async def abort(self) -> None:
        # asyncpg already sent a CancelRequest for the interrupted statement, and its next
        # operation (our ROLLBACK, bounded by the cleanup timeout) waits for that reply and
        # discards it: no stale result can reach a later query. Terminating here would also
        # cancel that CancelRequest and leave the statement running on the server.
        return

    def close_now(self) -> None:
        """Terminate the connection; asyncpg's pool replaces it."""
        self.broken = True
        self._tx = False
        with contextlib.suppress(pgerr.InterfaceError):  # already closed and detached by asyncpg
            self.raw.terminate()
