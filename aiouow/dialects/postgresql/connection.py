"""One asyncpg connection lent to a session: transactions, queries, streams and flush steps."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg.exceptions as pgerr
from asyncpg.pool import PoolConnectionProxy

from ..._expressions import Column
from ..._txoptions import DEFAULT, TransactionOptions
from ..._unitofwork import DeleteStep, InsertStep, Step, UpdateStep
from ...errors import AiouowError, ConnectionLostError, DataError, with_details
from .._base import Connection, Row, SavepointVerb, rows_read, statement_kind
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
        self._read_only_tx = False
        self.echo = pool.echo

    async def _status(self, sql: str, action: str, kind: str = "other") -> str:
        """Run a statement without parameters (``kind``: how the statistics count it)."""
        status: str = await self._call(kind, sql, (), action, self.raw.execute, sql)
        return status

    async def begin(self, options: TransactionOptions = DEFAULT) -> None:
        sql = "BEGIN"
        if options.isolation is not None:
            sql += f" ISOLATION LEVEL {options.isolation.value.upper()}"
        if options.read_only:
            sql += " READ ONLY"
        self._read_only_tx = options.read_only
        await self._status(sql, "begin a transaction")
        self._tx = True

    def _failed(self, kind: str, started: float, exc: BaseException, action: str) -> AiouowError:
        """A statement failed: its error; and when the server is gone, shutting down or no longer the
        primary, the connection is closed (never pooled again) and the pool's others are replaced
        at their next acquire (after a failover they all point at the old server)."""
        err = super()._failed(kind, started, exc, action)
        if (
            isinstance(exc, pgerr.ReadOnlySQLTransactionError) and not self._read_only_tx and not self.pool.standby
        ):  # (25006 is a standby's
            # answer to a write: on a replica's pool it says nothing about a failover)
            # SQLSTATE 25006 in a transaction that is not read-only, on the pool's primary: the
            # server is in recovery now, a demoted primary (asyncpg checks target_session_attrs
            # only when it connects, so its pool would keep lending connections to it).
            err = ConnectionLostError(
                f"cannot {action}: the server is read-only, so it is no longer the primary (a failover or "
                "switchover demoted it); the connection is closed, and new ones go to the server the URL's "
                "hosts and target_session_attrs=read-write find [SQLSTATE 25006]"
            )
        if isinstance(err, ConnectionLostError):
            self.broken = True
            self.pool.server_gone()
        return err

    async def commit(self) -> None:
        try:
            await self._status("COMMIT", "commit")
        finally:
            self._tx = False

    async def rollback(self) -> None:
        self._tx = False
        await self._status("ROLLBACK", "roll back")

    async def savepoint(self, verb: SavepointVerb, name: str) -> None:
        await self._status(f"{verb.value} {name}", verb.action)

    async def fetch(self, sql: str, params: Sequence[Any], *, write: bool = False) -> list[Row]:
        # (``write`` changes nothing: PostgreSQL's row locks and READ COMMITTED reads serve both.)
        rows: list[Row] = await self._call(
            "select", sql, params, "run query", self.raw.fetch, sql, *params, counts=rows_read
        )
        return rows

    async def execute_raw(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        self.ran_sql = True
        kind = statement_kind(sql)
        dml = kind in ("insert", "update", "delete")
        # Both go through asyncpg's statement cache; a DML statement without RETURNING reports
        # its row count in the command status.
        if dml and "returning" not in sql.lower():
            await self._call(kind, sql, params, "execute SQL", self.raw.execute, sql, *params, counts=_status_written)
            return []
        counts = _records_written if dml else rows_read
        records = await self._call(kind, sql, params, "execute SQL", self.raw.fetch, sql, *params, counts=counts)
        return [dict(r.items()) for r in records]

    async def stream(
        self, sql: str, params: Sequence[Any], batch_size: int, *, write: bool = False
    ) -> AsyncGenerator[list[Row], None]:
        cursor = await self._call("select", sql, params, "run query", self.raw.cursor, sql, *params)
        while True:
            rows: list[Row] = await self._call(
                "fetch", "", (), "fetch rows", cursor.fetch, batch_size, counts=rows_read
            )
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
        call = self.raw.fetch if step.returning is not None else self.raw.execute
        n = len(step.rows)
        what = f"insert {mapper.name} into {mapper.table}"
        try:
            records = await self._call("insert", sql, params, what, call, sql, *params, counts=lambda _: (0, n))
        except DataError as err:
            raise naming_field(err, step.columns) from err.__cause__
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
        mapper = step.mapper
        keyed = [*mapper.pk] + ([step.version] if step.version is not None else [])
        if isinstance(step, UpdateStep):
            kind, (sql, params), columns = "update", self._update_statement(step), [*step.columns, *keyed]
        else:
            kind, (sql, params), columns = "delete", self._delete_statement(step), keyed
        what = f"{kind} {mapper.name} {'in' if kind == 'update' else 'from'} {mapper.table}"
        try:
            status = await self._call(kind, sql, params, what, self.raw.execute, sql, *params, counts=_status_written)
        except DataError as err:
            raise naming_field(err, columns) from err.__cause__
        return status_count(status)

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


_ARGUMENT_NUMBER = re.compile(r"query argument \$(\d+)|bind parameter (\d+)")


def naming_field(err: DataError, columns: Sequence[Column[Any]]) -> DataError:
    """A flush step's DataError that names its parameter by number (asyncpg: "query argument
    $3"; the server: "bind parameter 3") with the field it carries named too."""
    found = _ARGUMENT_NUMBER.search(str(err))
    if found is None:
        return err
    index = int(found.group(1) or found.group(2)) - 1
    if not 0 <= index < len(columns):
        return err
    action, _, reason = str(err).partition(": ")
    column = columns[index]
    return with_details(
        DataError(f"{action}: field {column.name!r} holds a value the database refused: {reason}"),
        entity=column.entity.__name__,
        field=column.name,
    )


def _status_written(status: str) -> tuple[int, int]:
    return 0, status_count(status)


def _records_written(records: Sequence[Any]) -> tuple[int, int]:
    return 0, len(records)
