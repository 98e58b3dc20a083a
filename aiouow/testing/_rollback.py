"""A driver pool whose every transaction is a savepoint of one outer transaction, rolled back at the end.

`RollbackDriver` stands in for a pool's `DriverPool` while a test runs. It leases one real
connection, sends BEGIN and a SAVEPOINT on it, and lends it to one session transaction at a
time through `NestedConnection`: that connection's BEGIN, COMMIT and ROLLBACK are a savepoint
of the outer transaction, its RELEASE and its ROLLBACK TO. A session sees its own commits and
those of the sessions before it (it is the same transaction); the database sees nothing of it
once `close` has rolled the outer transaction back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any

from .._txoptions import DEFAULT, TransactionOptions
from ..dialects._base import UNOBSERVED, Connection, DriverPool, Observer, PoolStats, Row, SavepointVerb
from ..errors import AiouowError, ConnectionLostError, PoolTimeoutError, SessionError

if TYPE_CHECKING:
    from .._unitofwork import Step

#: The outer transaction's own savepoint (so that DDL and a first session's work sit inside one).
OUTER_SAVEPOINT = "aiouow_testing"
#: The savepoint that stands for a session's transaction.
SESSION_SAVEPOINT = "aiouow_testing_tx"


class RollbackDriver(DriverPool):
    """Lends one connection, in one outer transaction, to one session transaction at a time."""

    def __init__(self, real: DriverPool, *, owns_real: bool) -> None:
        self.real = real
        #: Close the real pool too (it was opened for the test) rather than hand it back.
        self.owns_real = owns_real
        self.dialect = real.dialect
        self.cleanup_timeout = real.cleanup_timeout
        self.acquire_timeout: float = getattr(real, "acquire_timeout", 30.0)
        self._outer: Connection | None = None  # the real connection, once leased
        self._turn: asyncio.Lock | None = None  # made in the loop that uses the pool
        self._holder: asyncio.Task[Any] | None = None
        self._waiting = 0
        #: Why the outer transaction cannot go on (a connection lost or interrupted in it), if so.
        self._lost: str | None = None
        self.closed = False

    @property
    def in_turn(self) -> bool:
        """Whether a session transaction holds the connection now."""
        return self._holder is not None

    async def acquire(self) -> Connection:
        if self.closed:
            raise SessionError("cannot start a transaction: this test's rolled-back pool is closed")
        task = asyncio.current_task()
        if self._holder is not None and self._holder is task:
            raise SessionError(
                "cannot start a second transaction in this task: a test's rolled-back pool lends its one "
                "connection to one session transaction at a time, and another session of this task has an "
                "open transaction (commit or close it first; two sessions at once in one task cannot both "
                "run inside the test's transaction)"
            )
        turn = self._turn = self._turn or asyncio.Lock()
        self._waiting += 1
        try:
            async with asyncio.timeout(self.acquire_timeout):
                await turn.acquire()
        except TimeoutError:
            raise PoolTimeoutError(
                f"no turn on the test's rolled-back connection within {self.acquire_timeout} s: another "
                "session transaction held it all that time (does a task wait for a child task whose session "
                "needs the connection?)"
            ) from None
        finally:
            self._waiting -= 1
        try:
            if self._lost is not None:
                raise ConnectionLostError(f"cannot start a transaction: {self._lost}")
            if self._outer is None:
                self._outer = await self._open_outer()
        except BaseException:
            turn.release()
            raise
        self._holder = task
        return NestedConnection(self, self._outer)

    async def _open_outer(self) -> Connection:
        conn = await self.real.acquire()
        try:
            await conn.begin()
            await conn.savepoint(SavepointVerb.OPEN, OUTER_SAVEPOINT)
        except BaseException:
            await self.real.release(conn)
            raise
        return conn

    def _end_turn(self, conn: Connection) -> None:
        if conn.returned:
            return
        conn.returned = True
        if conn.broken and self._lost is None:
            self._lost = (
                "an earlier transaction of this test was interrupted or lost its connection, and with it "
                "the test's outer transaction (everything of the test so far was rolled back)"
            )
        self._holder = None
        if self._outer is not None:
            self._outer.observer = UNOBSERVED
        assert self._turn is not None
        self._turn.release()

    async def release(self, conn: Connection) -> None:
        assert isinstance(conn, NestedConnection)
        try:
            if conn.open and not conn.broken and not self.closed:
                await conn.rollback()  # (a session always ends its transaction first; this is a safety net)
        finally:
            self._end_turn(conn)

    def discard(self, conn: Connection) -> None:
        conn.broken = True
        self._end_turn(conn)

    async def close(self) -> None:
        """Roll the outer transaction back and give its connection back to the real pool (closing
        that too when it was opened for the test)."""
        if self.closed:
            return
        self.closed = True
        outer, self._outer = self._outer, None
        try:
            if outer is not None:
                if self._lost is not None:
                    outer.broken = True
                else:
                    try:
                        await outer.rollback()
                    except AiouowError:
                        outer.broken = True  # closed, never pooled: the transaction dies with it
                await self.real.release(outer)
        finally:
            if self.owns_real:
                await self.real.close()

    def stats(self) -> PoolStats:
        """As sessions see it: one connection, lent to a session transaction or not."""
        lent = int(self._holder is not None)
        return PoolStats(size=1, idle=1 - lent, in_use=lent, waiting=self._waiting)


class NestedConnection(Connection):
    """A session transaction inside the test's outer transaction: BEGIN, COMMIT and ROLLBACK
    are SAVEPOINT, RELEASE and ROLLBACK TO on the one real connection.

    The isolation level and read-only flag of a session's options cannot be set on a savepoint:
    the outer transaction's (the server's default) apply, and a read-only session still refuses
    its own writes before sending them.
    """

    def __init__(self, driver: RollbackDriver, outer: Connection) -> None:
        self.driver = driver
        self._outer = outer
        self.dialect = outer.dialect
        self.echo = outer.echo
        self.open = False

    @property
    def outer(self) -> Connection:
        """The real connection, while the test's pool lasts."""
        if self.driver.closed:
            self.broken = True
            raise ConnectionLostError(
                "the test's rolled-back pool has ended: this session's transaction was rolled back with it"
            )
        return self._outer

    @property
    def observer(self) -> Observer:
        return self._outer.observer

    @observer.setter
    def observer(self, value: Observer) -> None:
        self._outer.observer = value

    @staticmethod
    def translate(exc: BaseException, action: str) -> AiouowError:
        # Every statement goes through the outer connection, which translates its driver's errors:
        # nothing reaches here (the interface requires the method).
        raise TypeError(f"a nested connection has no driver errors of its own to translate: {exc!r}")

    async def _savepoint(self, verb: SavepointVerb) -> None:
        try:
            await self.outer.savepoint(verb, SESSION_SAVEPOINT)
        finally:
            self.broken = self.broken or self._outer.broken

    async def begin(self, options: TransactionOptions = DEFAULT) -> None:
        await self._savepoint(SavepointVerb.OPEN)
        self.open = True

    async def commit(self) -> None:
        await self._savepoint(SavepointVerb.RELEASE)
        self.open = False

    async def rollback(self) -> None:
        if self.open:
            await self._savepoint(SavepointVerb.ROLLBACK_TO)
            await self._savepoint(SavepointVerb.RELEASE)
            self.open = False

    async def savepoint(self, verb: SavepointVerb, name: str) -> None:
        await self.outer.savepoint(verb, name)

    async def fetch(self, sql: str, params: Sequence[Any], *, write: bool = False) -> list[Row]:
        return await self.outer.fetch(sql, params, write=write)

    async def execute_raw(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        return await self.outer.execute_raw(sql, params)

    def stream(
        self, sql: str, params: Sequence[Any], batch_size: int, *, write: bool = False
    ) -> AsyncGenerator[list[Row], None]:
        return self.outer.stream(sql, params, batch_size, write=write)

    async def run_steps(self, steps: Sequence[Step]) -> list[Any]:
        return await self.outer.run_steps(steps)

    async def execute_script(self, statements: Sequence[str]) -> None:
        """DDL inside the outer transaction (both dialects roll DDL back)."""
        await self.begin()
        try:
            for sql in statements:
                await self.outer.execute_raw(sql, ())
            await self.commit()
        except BaseException:
            await self.rollback()
            raise

    async def close(self) -> None:
        self.broken = True

    async def abort(self) -> None:
        if not self.driver.closed:
            await self._outer.abort()
        self.broken = self.broken or self._outer.broken

    def close_now(self) -> None:
        self.broken = True
