"""The database transaction of a session: its leased connection, from BEGIN to its one end.

A `Transaction` is made when a session first needs the database and ends once: committed
(`commit`, which returns a `CommitOutcome`), rolled back (`rollback`), or failed (`fail`: a
statement failed or was interrupted, and the database transaction was rolled back). Whichever
way it ends, the connection goes back to the pool, or is closed when its state is unknown;
cleanup is shielded from cancellation and bounded by the pool's ``cleanup_timeout``.
"""

from __future__ import annotations

import asyncio
import enum
import warnings
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import anyio

from ._state import SessionState
from ._txoptions import DEFAULT, TransactionOptions
from .dialects._base import CommitOutcome
from .errors import CommitOutcomeUnknownError, ConnectionLostError, DatabaseError, SessionError

if TYPE_CHECKING:
    from ._flush import Flush
    from ._replicas import Replica
    from ._session import AsyncSession
    from ._state import SessionLifecycle
    from .dialects._base import Connection, DriverPool, Observer, Row


class TransactionState(enum.Enum):
    """``OPEN``: a connection is leased and BEGIN sent. Then, once: ``COMMITTED``,
    ``ROLLED_BACK``, or ``FAILED`` (a statement failed or was interrupted; rolled back)."""

    OPEN = "open"
    COMMITTED = "committed"
    ROLLED_BACK = "rolled back"
    FAILED = "failed"


__all__ = ["CommitOutcome", "CommitResult", "Transaction", "TransactionBlock", "TransactionState"]


class CommitResult(NamedTuple):
    outcome: CommitOutcome
    #: What interrupted or failed the commit (to raise once the session has settled), if anything.
    #: With ``COMMITTED``: a cancellation that came after the COMMIT went through.
    error: BaseException | None = None


class Transaction:
    """One database transaction on one leased connection."""

    __slots__ = ("commit_token", "conn", "driver", "replica", "state", "wants_token", "wrote")

    def __init__(self, driver: DriverPool, conn: Connection) -> None:
        self.driver = driver
        self.conn = conn
        self.state = TransactionState.OPEN
        #: The read replica it runs on (`aiouow._replicas`), or None: the pool's primary.
        self.replica: Replica | None = None
        #: Whether its commit should report its WAL position (a primary with replicas).
        self.wants_token = False
        #: Whether it wrote (a flush with statements, raw SQL): only then has a commit a position.
        self.wrote = False
        #: After a commit that wrote, its WAL position (``pg_current_wal_insert_lsn()``), if known.
        self.commit_token: str | None = None

    @classmethod
    async def lease(cls, driver: DriverPool, observer: Observer) -> Transaction:
        """Take a connection from the pool (an acquire that fails holds nothing); `begin` next."""
        conn = await driver.acquire()
        conn.observer = observer
        return cls(driver, conn)

    async def begin(self, options: TransactionOptions = DEFAULT) -> None:
        await self.conn.begin(options)

    # -- statements -------------------------------------------------------------------------------
    async def fetch(self, sql: str, params: Sequence[Any], *, write: bool) -> list[Row]:
        """Run a query (``write``: one that locks rows)."""
        return await self.conn.fetch(sql, params, write=write)

    async def stream(
        self, sql: str, params: Sequence[Any], batch_size: int, *, write: bool
    ) -> AsyncGenerator[list[Row], None]:
        """A query whose rows come in batches (``write``: as `fetch`)."""
        return self.conn.stream(sql, params, batch_size, write=write)

    async def execute_raw(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        self.wrote = True
        return await self.conn.execute_raw(sql, params)

    async def run(self, flush: Flush) -> None:
        """Run a flush's steps and settle it; on any failure the flush is aborted and re-raised
        (the caller fails the transaction)."""
        try:
            self.wrote = True
            results = await self.conn.run_steps(flush.plan.steps)
            flush.check(results)
        except BaseException:
            flush.abort()
            raise
        flush.settle(results)

    # -- the ends -----------------------------------------------------------------------------------
    async def commit(self, flush: Flush | None) -> CommitResult:
        """Run what ``flush`` holds, then COMMIT: the one commit path. It raises only when its own
        cleanup is interrupted; otherwise the result says whether the transaction committed, and
        what to raise once the session has settled.

        The flush is settled as soon as its statements' results are in (before the COMMIT where
        the COMMIT is a statement of its own, so that objects show what was sent should the
        COMMIT's outcome be unknown); a flush that did not settle is aborted unless the COMMIT
        went through. After an interruption the connection is cleaned up first; then it tells
        whether its COMMIT went through (SQLite sends the flush and the COMMIT in one call).
        """
        conn = self.conn
        steps = flush.plan.steps if flush is not None else ()
        self.wrote = self.wrote or bool(steps)
        settled = False

        def written(results: list[Any]) -> None:
            nonlocal settled
            assert flush is not None
            flush.check(results)  # a stale step stops the commit
            flush.settle(results)
            settled = True

        try:
            await conn.commit_steps(steps, written)
        except BaseException as exc:
            try:
                await self.fail(exc)
            except BaseException:  # a native cancellation pierced the cleanup's shield
                if flush is not None and not settled:
                    flush.abort()
                raise
            outcome, results = conn.commit_outcome(steps, exc)
            lost = isinstance(exc, ConnectionLostError)
            if outcome is CommitOutcome.COMMITTED:
                if flush is not None and not settled:
                    flush.settle(results or [])
                self.state = TransactionState.COMMITTED
                return CommitResult(outcome, None if lost else exc)  # (only the connection is gone)
            if flush is not None and not settled:
                flush.abort()
            if outcome is CommitOutcome.UNKNOWN and lost:
                return CommitResult(outcome, _commit_lost(exc))
            return CommitResult(outcome, exc)
        self.state = TransactionState.COMMITTED
        if self.wants_token and self.wrote:
            try:
                self.commit_token = await self._commit_position()
            except BaseException as exc:  # interrupted while asking: committed even so
                conn.broken = True  # (a question in flight: never pooled)
                await self._release(rollback=False)
                return CommitResult(CommitOutcome.COMMITTED, exc)
        try:
            await self._release(rollback=False)
        except BaseException as exc:  # a cancellation in the release: committed even so
            return CommitResult(CommitOutcome.COMMITTED, exc)
        return CommitResult(CommitOutcome.COMMITTED)

    async def _commit_position(self) -> str | None:
        """The WAL position the COMMIT reached, asked on its connection just after it (a replica
        that has replayed it has the commit); None if the question cannot be answered, and the
        caller reads from the primary instead."""
        try:
            with anyio.fail_after(self.driver.cleanup_timeout):
                rows = await self.conn.fetch("SELECT pg_current_wal_insert_lsn()::text", (), write=False)
        except TimeoutError:
            self.conn.broken = True  # (the question may still be in flight: never pooled)
            return None
        except DatabaseError:
            return None
        position: str = rows[0][0]
        return position

    async def rollback(self) -> None:
        """ROLLBACK and give the connection back."""
        self.state = TransactionState.ROLLED_BACK
        await self._release(rollback=True)

    async def fail(self, exc: BaseException) -> None:
        """A statement failed or was interrupted: roll the database back now and hold nothing.

        A database error leaves the connection usable for the ROLLBACK. An interruption (a
        cancellation, a timeout) or a lost connection leaves it in an unknown state: it is
        aborted first (SQLite: the running statement is interrupted; PostgreSQL: terminated).
        """
        if self.state is not TransactionState.OPEN:
            return
        self.state = TransactionState.FAILED
        if self.replica is not None and isinstance(exc, ConnectionLostError):
            self.replica.failed()  # (sessions skip it for a while)
        conn = self.conn
        interrupted = not isinstance(exc, DatabaseError) or isinstance(exc, ConnectionLostError)
        if interrupted and not conn.broken:
            try:
                with anyio.CancelScope(shield=True):
                    await conn.abort()
            except BaseException:
                conn.broken = True  # a native cancellation pierced the shield: close, never reuse
                raise
            finally:
                await self._release(rollback=True)
            return
        await self._release(rollback=True)

    async def fail_quietly(self) -> None:
        """`fail`, for a replica transaction abandoned before the session used it."""
        await self.fail(ConnectionLostError("the replica could not begin the transaction"))

    def discard(self) -> None:
        """Close the connection at once, without awaiting (the last resort)."""
        self.state = TransactionState.FAILED
        self.driver.discard(self.conn)

    def discard_unclosed(self, loop: asyncio.AbstractEventLoop | None, session: object) -> None:
        """The session was garbage-collected without ``close()``: warn, and `discard_soon`."""
        warnings.warn(
            "an aiouow session holding a connection was garbage-collected without close(); its "
            "connection was closed and its transaction rolled back (use `async with AsyncSession(pool)`)",
            ResourceWarning,
            stacklevel=3,
            source=session,
        )
        self.discard_soon(loop)

    def discard_soon(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """`discard`, from any thread (a session garbage-collected while it held the connection):
        on the session's event loop while it runs."""
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.discard)
        else:
            self.discard()

    async def _release(self, *, rollback: bool) -> None:
        """Give the connection back (rolling back first when asked), shielded and bounded in time.

        Whatever cannot finish within the pool's ``cleanup_timeout``, and whatever a native
        ``Task.cancel()`` interrupts even so, ends with the connection closed, never returned to
        the pool in an unknown state.
        """
        conn, driver = self.conn, self.driver
        if not rollback and not conn.broken:
            # After a COMMIT: nothing to roll back, and the driver's release of a healthy
            # connection finishes even if this task is cancelled meanwhile (see
            # `DriverPool.release`), so no cancel scope of our own is needed around it.
            try:
                await driver.release(conn)
            except BaseException:
                driver.discard(conn)
                raise
            return
        timeout = driver.cleanup_timeout
        try:
            with anyio.CancelScope(shield=True):
                if rollback and not conn.broken:
                    with anyio.move_on_after(timeout) as scope:
                        try:
                            await conn.rollback()
                        except Exception:
                            conn.broken = True
                    if scope.cancelled_caught:
                        conn.broken = True
                if conn.broken:  # closing it may wait behind whatever broke it: bound that too
                    with anyio.move_on_after(timeout) as scope:
                        await driver.release(conn)
                    if scope.cancelled_caught:
                        driver.discard(conn)
                else:  # a healthy connection: SQLite pools it at once, asyncpg bounds its own reset
                    await driver.release(conn)
        except BaseException:
            driver.discard(conn)
            raise


class TransactionBlock:
    """What ``async with session.begin():`` runs: one transaction of the session from start to end,
    committed when the block succeeds and rolled back when it raises."""

    __slots__ = ("_ended", "_life", "_session")

    def __init__(self, session: AsyncSession, life: SessionLifecycle) -> None:
        self._session = session
        self._life = life
        self._ended = 0

    async def __aenter__(self) -> AsyncSession:
        life, session = self._life, self._session
        life.enter("begin")
        if life.in_block:
            raise SessionError("cannot begin: a begin() block is already open in this session")
        if life.state is SessionState.ACTIVE or session.new or session.deleted or session.dirty:
            raise SessionError(
                "cannot begin: the session already holds work (an open transaction or unflushed changes) "
                "that the block would take over; commit or roll it back first"
            )
        life.in_block = True
        self._ended = life.transactions_ended
        return session

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        life, session = self._life, self._session
        try:
            if exc_type is not None:
                if not life.closed():
                    await session.rollback()
                return  # (the exception propagates)
            if life.transactions_ended != self._ended:
                if not life.closed():
                    await session.rollback()
                raise SessionError(
                    "cannot commit the begin() block: its transaction was already ended inside it by commit() "
                    "or rollback(), so what was done after that was rolled back (let the block commit instead)"
                )
            await session.commit()
        finally:
            life.in_block = False


def _commit_lost(exc: BaseException) -> CommitOutcomeUnknownError:
    err = CommitOutcomeUnknownError(
        "cannot commit: the connection was lost while COMMIT was in flight, so the "
        "transaction may or may not be committed (check in a new session; aiouow never retries)"
    )
    err.__cause__ = exc
    return err
