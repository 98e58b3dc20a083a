"""The small interface every dialect implements, and the SQL they share.

Nothing above ``dialects/`` knows a driver's API: the session talks to a `DriverPool`
and the `Connection` objects it hands out, and compiles queries through a
`Dialect`. A dialect turns a flush plan's steps into statements and translates its
driver's exceptions into the ``aiouow.errors`` tree.
"""

from __future__ import annotations

import abc
import enum
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .._txoptions import DEFAULT, TransactionOptions
from ..errors import AiouowError, ConnectionLostError, DatabaseError
from ._dialect import Converter as Converter
from ._dialect import Dialect as Dialect
from ._dialect import checked_param as checked_param
from ._dialect import derived_name as derived_name

if TYPE_CHECKING:
    from .._unitofwork import Step

sql_log = logging.getLogger("aiouow.sql")

T = TypeVar("T")

Row = Sequence[Any]


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A snapshot of a pool: connections open, idle, lent out, and tasks waiting for one."""

    size: int
    idle: int
    in_use: int
    waiting: int


class Observer(Protocol):
    """Told about every statement a connection runs (the session's statistics)."""

    def statement(self, kind: str, elapsed: float, rows_read: int, rows_written: int) -> None: ...


class _Unobserved:
    """The observer of a connection that no session holds: its statements are not counted."""

    __slots__ = ()

    def statement(self, kind: str, elapsed: float, rows_read: int, rows_written: int) -> None:
        return None


class CommitOutcome(enum.Enum):
    """What a COMMIT did: ``COMMITTED``; ``NOT_COMMITTED`` (a statement or the COMMIT failed, and
    the transaction was rolled back); ``UNKNOWN`` (the COMMIT was interrupted or lost its
    connection in flight: it may or may not have gone through, and nothing is retried)."""

    COMMITTED = "committed"
    NOT_COMMITTED = "not committed"
    UNKNOWN = "unknown"


#: A connection's observer while no session holds it (never None, so that counting a
#: statement is one call).
UNOBSERVED: Observer = _Unobserved()


class SavepointVerb(enum.Enum):
    """What a savepoint statement does (the value is its SQL, both dialects): open one, release
    it (its work joins the enclosing level), or roll back to it (it stays open)."""

    OPEN = "SAVEPOINT"
    RELEASE = "RELEASE SAVEPOINT"
    ROLLBACK_TO = "ROLLBACK TO SAVEPOINT"

    @property
    def action(self) -> str:
        """What the statement does, for its error messages ("cannot ...")."""
        return _SAVEPOINT_ACTIONS[self]


_SAVEPOINT_ACTIONS = {
    SavepointVerb.OPEN: "open a savepoint",
    SavepointVerb.RELEASE: "release a savepoint",
    SavepointVerb.ROLLBACK_TO: "roll back to a savepoint",
}


class Connection(abc.ABC):
    """One driver connection, lent by a `DriverPool` to one session at a time."""

    dialect: Dialect
    observer: Observer = UNOBSERVED
    #: True once the connection must not go back to the pool (lost, interrupted, unknown state).
    broken: bool = False
    #: True once the pool has counted the connection back (released or discarded).
    returned: bool = False
    #: Log every statement (the pool's ``echo``).
    echo: bool = False
    #: The driver's exception classes that `translate` turns into aiouow errors.
    driver_errors: tuple[type[BaseException], ...] = ()
    #: Whether the COMMIT of the last `commit_steps` (or `commit`) call was sent (see `commit_outcome`).
    commit_sent: bool = False

    @staticmethod
    @abc.abstractmethod
    def translate(exc: BaseException, action: str) -> AiouowError:
        """The aiouow error for a driver exception met while trying to ``action``."""

    @abc.abstractmethod
    async def begin(self, options: TransactionOptions = DEFAULT) -> None:
        """Open a transaction (at the options' isolation level; read-only if they say so)."""

    @abc.abstractmethod
    async def commit(self) -> None: ...

    @abc.abstractmethod
    async def rollback(self) -> None: ...

    @abc.abstractmethod
    async def savepoint(self, verb: SavepointVerb, name: str) -> None:
        """Open, release or roll back to savepoint ``name`` of the open transaction."""

    @abc.abstractmethod
    async def fetch(self, sql: str, params: Sequence[Any], *, write: bool = False) -> list[Row]:
        """Run a query and return its rows (``write``: a locking read, ``FOR UPDATE``, which must
        see the latest committed rows; SQLite takes its write lock first)."""

    @abc.abstractmethod
    async def execute_raw(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """Run any statement with the driver's placeholders; rows as dicts."""

    @abc.abstractmethod
    def stream(
        self, sql: str, params: Sequence[Any], batch_size: int, *, write: bool = False
    ) -> AsyncGenerator[list[Row], None]:
        """Run a query and yield its rows in batches (``write``: as for `fetch`)."""

    @abc.abstractmethod
    async def run_steps(self, steps: Sequence[Step]) -> list[Any]:
        """Run a flush's steps in order, in the open transaction.

        One result per step: an insert's generated keys in row order (None when it asks for
        none), an update's or a delete's count of matched rows.
        """

    async def commit_steps(self, steps: Sequence[Step], written: Callable[[list[Any]], None]) -> None:
        """Run a flush's steps, hand their results to ``written`` (which checks them, raising to
        stop the commit, and settles them), then COMMIT. When this raises, `commit_outcome` says
        whether the COMMIT went through, once the cleanup has run.

        Here the steps and the COMMIT are statements of their own; a dialect may send them in
        one call (SQLite), holding the COMMIT back when a step matched other rows than expected.
        """
        self.commit_sent = False
        if self.broken:  # closed under the session (its pool was closed): nothing can be sent
            raise ConnectionLostError("cannot commit: the connection is closed (was its pool closed?)")
        if steps:
            written(await self.run_steps(steps))
        self.commit_sent = True
        try:
            await self.commit()
        except BaseException as exc:
            if not isinstance(exc, DatabaseError) or isinstance(exc, ConnectionLostError):
                self.broken = True  # interrupted or lost in flight: its state is unknown, never reuse it
            raise

    def commit_outcome(self, steps: Sequence[Step], exc: BaseException) -> tuple[CommitOutcome, list[Any] | None]:
        """After ``commit_steps(steps, ...)`` raised ``exc`` and the cleanup ran: whether its COMMIT
        went through (then with the steps' results if ``written`` never got them)."""
        if not self.commit_sent:
            return CommitOutcome.NOT_COMMITTED, None
        if isinstance(exc, DatabaseError) and not isinstance(exc, ConnectionLostError):
            return CommitOutcome.NOT_COMMITTED, None  # the database refused the COMMIT: rolled back
        return CommitOutcome.UNKNOWN, None  # interrupted or lost in flight

    @abc.abstractmethod
    async def execute_script(self, statements: Sequence[str]) -> None:
        """Run DDL statements in order, in their own transaction."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the driver connection."""

    @abc.abstractmethod
    async def abort(self) -> None:
        """A statement on this connection was interrupted (cancelled, timed out): stop it now.

        Afterwards the connection is either clean enough for a ROLLBACK (SQLite: the running
        statement is interrupted) or marked ``broken`` so that it is closed, never reused.
        """

    @abc.abstractmethod
    def close_now(self) -> None:
        """Close the connection without awaiting anything (last resort; also from ``__del__``)."""

    # -- shared helpers -------------------------------------------------------------------
    async def _call(
        self,
        kind: str,
        sql: str,
        params: object,
        action: str,
        call: Callable[..., Awaitable[T]],
        *args: Any,
        counts: Callable[[T], tuple[int, int]] | None = None,
    ) -> T:
        """Await ``call(*args)``, one driver call, the one way every statement is sent: logged when
        the pool echoes, timed, driver errors translated (also those the call itself raises, such
        as asyncpg's on a released connection), and counted in the statistics as ``kind``, with
        ``counts(result)`` = (rows read, rows written) when it succeeds (a failed one counts too)."""
        if self.echo and sql:
            log_statement(sql, params)
        started = time.perf_counter()
        try:
            result = await call(*args)
        except self.driver_errors as exc:
            raise self._failed(kind, started, exc, action) from exc
        read, written = (0, 0) if counts is None else counts(result)
        self._observe(kind, started, read, written)
        return result

    def _failed(self, kind: str, started: float, exc: BaseException, action: str) -> AiouowError:
        """A driver call failed: count the statement, and the error to raise instead."""
        self._observe(kind, started)
        return self.translate(exc, action)

    def _observe(self, kind: str, started: float, rows_read: int = 0, rows_written: int = 0) -> None:
        self.observer.statement(kind, time.perf_counter() - started, rows_read, rows_written)


def rows_read(rows: Any) -> tuple[int, int]:
    """`Connection._call`'s ``counts`` for a call returning the rows it read."""
    return len(rows), 0


def log_statement(sql: str, params: object) -> None:
    """Log a statement on ``aiouow.sql`` (pools made with ``echo=True`` call this)."""
    shown = repr(params)
    if len(shown) > 500:
        shown = shown[:497] + "..."
    sql_log.debug("%s | %s", sql, shown)


def statement_kind(sql: str) -> str:
    """select / insert / update / delete / other, from a statement's first word."""
    word = sql.lstrip().split(None, 1)[0].lower() if sql.strip() else ""
    return word if word in ("select", "insert", "update", "delete") else "other"


class DriverPool(abc.ABC):
    """A pool of `Connection` objects for one database."""

    dialect: Dialect
    #: Seconds a rollback or release may take during cleanup before the connection is closed.
    cleanup_timeout: float = 5.0
    #: A read replica's pool (``create_pool(replicas=...)``), not a primary's.
    standby: bool = False

    @abc.abstractmethod
    async def acquire(self) -> Connection:
        """Lend a connection, waiting up to the pool's ``acquire_timeout``."""

    @abc.abstractmethod
    async def release(self, conn: Connection) -> None:
        """Take a connection back (closing it when broken).

        The release of a healthy connection must finish even when the awaiting task is
        cancelled: sessions await it without a cancel scope of their own after a COMMIT.
        (SQLite pools it without suspending; asyncpg shields its own reset.)
        """

    @abc.abstractmethod
    def discard(self, conn: Connection) -> None:
        """Close a lent connection at once and stop counting it, without awaiting.

        The last resort when a release cannot finish (a cancellation pierced the cleanup, or a
        session was garbage-collected). Safe to call after ``release`` has begun: a connection is
        only ever counted back once.
        """

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def stats(self) -> PoolStats: ...
