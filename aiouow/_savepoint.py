"""Savepoints: ``async with s.begin_nested() as sp:``, a SAVEPOINT whose rollback puts memory back.

Opening one flushes, sends ``SAVEPOINT``, and takes a `SavepointMark` of the identity map (where
each tracker's transaction log stands, the expired keys, where the relationship log stands).
Rolling back to it sends ``ROLLBACK TO SAVEPOINT`` and undoes from the logs what was done since
the mark, newest first, as a rollback of the whole transaction does from its start
(`IdentityMap.restore_to`): no object is expired, nothing is read again. Releasing it flushes
and sends ``RELEASE SAVEPOINT``; what was logged since joins the enclosing level.

A database error in a statement run while savepoints are open (a constraint violated by a flush,
a bad raw query) rolls back to the innermost one at once (`recover`, called by the session's
failure path): the outer transaction stays usable, and the savepoint stays open. Failures that
end the whole transaction even so: a lost or interrupted connection (its state is unknown), a
serialization failure or deadlock (the transaction must run again from its start:
``run_transaction``), a savepoint statement that fails itself. A restart savepoint (CockroachDB's
retry protocol, ``run_transaction(restart_savepoint="cockroach_restart")``) survives a
serialization failure too: the work runs again inside it, in the same transaction.
"""

from __future__ import annotations

import enum
import itertools
from types import TracebackType
from typing import TYPE_CHECKING

import anyio

from .dialects._base import SavepointVerb
from .errors import (
    CommitOutcomeUnknownError,
    ConnectionLostError,
    DatabaseError,
    OperationalError,
    PoolTimeoutError,
    SerializationError,
    SessionError,
)

if TYPE_CHECKING:
    from ._identity import SavepointMark
    from ._session import AsyncSession
    from ._transaction import Transaction

_names = itertools.count(1)


class SavepointState(enum.Enum):
    """``OPEN`` until the block ends it: ``RELEASED`` or ``ROLLED_BACK``; ``ENDED`` when the
    transaction it belonged to ended first (committed, rolled back, or failed)."""

    OPEN = "open"
    RELEASED = "released"
    ROLLED_BACK = "rolled back"
    ENDED = "ended"


class Savepoint:
    """One savepoint of a session's transaction (``async with s.begin_nested() as sp``).

    Leaving the block normally flushes and releases it; leaving it with an exception, or
    ``await sp.rollback()``, rolls back to it and puts memory back to what it was when the
    savepoint opened. Nesting works to any depth.
    """

    __slots__ = ("_mark", "_session", "_statements_then", "_tx", "name", "restart", "state")

    def __init__(self, session: AsyncSession, *, restart_name: str | None = None) -> None:
        self._session = session
        self.name = restart_name or f"aiouow_sp_{next(_names)}"
        #: A restart savepoint (CockroachDB's retry protocol, ``run_transaction(restart_savepoint=)``):
        #: a serialization failure rolls back to it instead of ending the transaction, a failed
        #: RELEASE too, and `restart_work` runs the work again inside it.
        self.state = SavepointState.OPEN
        self._mark: SavepointMark | None = None
        self._tx: Transaction | None = None
        #: How many statements the session had sent when a database error last rolled back to this
        #: savepoint (-1: none did): while that is still the count, the database stands at the
        #: savepoint, and leaving the block needs no second ROLLBACK TO. (A count, not the error:
        #: an error kept here would keep its traceback's frames, and their objects, alive.)
        self._statements_then = -1
        self.restart = restart_name is not None

    def __repr__(self) -> str:
        return f"<Savepoint {self.name} {self.state.value}>"

    async def __aenter__(self) -> Savepoint:
        s = self._session
        s._life.enter("begin_nested")
        async with s._lock:
            s._life.check("begin_nested")
            await s._flush()
            tx = await s._transaction()  # (on the primary: a savepoint is for writing)
            await s._guarded(send(s, tx, SavepointVerb.OPEN, self.name))
            self._tx = tx
            self._mark = s._objects.mark()
            s._savepoints.append(self)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.state is SavepointState.OPEN:
            if exc is None:
                await self._release()
            else:
                await self._end_by_rollback()
            return
        if exc is None and self.state is SavepointState.ENDED:
            raise SessionError(
                f"cannot release savepoint {self.name}: the transaction it belonged to ended inside the "
                "begin_nested() block (by commit(), rollback(), or a failure), so what the block did is not kept"
            )

    async def rollback(self) -> None:
        """Roll back to the savepoint now and end it: the database and memory are as they were when
        it opened. What follows in the block belongs to the enclosing level."""
        if self.state is not SavepointState.OPEN:
            raise SessionError(f"cannot roll back savepoint {self.name}: it is {self.state.value}")
        await self._end_by_rollback()

    # -- the ends ----------------------------------------------------------------------------------
    async def _release(self) -> None:
        s = self._session
        s._life.enter("release a savepoint")
        async with s._lock:
            if self.state is not SavepointState.OPEN:
                return
            try:
                s._life.check("release a savepoint")
                await s._flush()  # what the block changed and did not flush is part of it
            except BaseException:
                # The transaction lives on: roll back to it (a restart savepoint stays open, rolled
                # back to by the failure, for `restart_work`).
                if self.state is SavepointState.OPEN and not self.restart:
                    await self._rolled_back()
                raise
            assert self._tx is not None
            # (A restart savepoint stays on the stack until its RELEASE succeeds: one that fails
            # with a serialization failure rolls back to it, and the work runs again.)
            inner = [] if self.restart else self._pop()
            released = False
            try:
                await s._guarded(send(s, self._tx, SavepointVerb.RELEASE, self.name))
                released = True
            finally:
                # (A restart savepoint whose RELEASE failed and rolled back to it stays open, for
                # `restart_work`: the error propagates to run_transaction.)
                if not (self.restart and not released and self.state is SavepointState.OPEN):
                    if self.restart and released:
                        inner = self._pop()
                    for sp in [*reversed(inner), self]:  # (a RELEASE releases the savepoints inside it too)
                        if released and sp._mark is not None:
                            s._objects.released(sp._mark)
                            sp.state = SavepointState.RELEASED
                        elif sp.state is SavepointState.OPEN:  # (rolled back with an enclosing one instead)
                            sp.state = SavepointState.ROLLED_BACK

    async def _end_by_rollback(self) -> None:
        s = self._session
        s._life.enter("roll back to a savepoint")
        async with s._lock:
            if self.state is SavepointState.OPEN:
                await self._rolled_back()

    async def _rolled_back(self) -> None:
        """Under the lock: roll back to the savepoint (unless a database error already did, and
        nothing was sent since) and end it, with the savepoints inside it."""
        s = self._session
        assert self._tx is not None
        assert self._mark is not None
        inner = self._pop()
        try:
            if _statements(s) != self._statements_then:
                await s._guarded(send(s, self._tx, SavepointVerb.ROLLBACK_TO, self.name))
            s._objects.restore_to(self._mark)  # (also what the program changed in memory since)
        finally:
            for sp in [*inner, self]:
                if sp.state is SavepointState.OPEN:  # (ENDED if the whole transaction failed instead)
                    sp.state = SavepointState.ROLLED_BACK

    async def restart_work(self) -> None:
        """A restart savepoint after a serialization failure: the database and memory back to it
        (unless the failure already rolled back to it and nothing was sent since), and it stays
        open, for the work to run again in the same transaction."""
        s = self._session
        assert self.restart
        assert self._tx is not None
        assert self._mark is not None
        if self.state is not SavepointState.OPEN:
            raise SessionError(f"cannot restart at savepoint {self.name}: it is {self.state.value}")
        async with s._lock:
            for sp in self._pop():  # (savepoints the failed work left open inside it)
                sp.state = SavepointState.ROLLED_BACK
            s._savepoints.append(self)  # (it stays open)
            if _statements(s) != self._statements_then:
                await s._guarded(send(s, self._tx, SavepointVerb.ROLLBACK_TO, self.name))
            s._objects.restore_to(self._mark)
            self._statements_then = _statements(s)

    def _pop(self) -> list[Savepoint]:
        """Take this savepoint off the session's stack, with those opened inside it (returned)."""
        stack = self._session._savepoints
        at = stack.index(self)
        inner = stack[at + 1 :]
        del stack[at:]
        return inner


def survives(exc: BaseException, savepoint: Savepoint) -> bool:
    """Whether a failed statement leaves the transaction usable once rolled back to ``savepoint``
    (a serialization failure does only for a restart savepoint: CockroachDB's retry protocol)."""
    if isinstance(exc, SerializationError):
        return savepoint.restart
    return isinstance(exc, DatabaseError) and not isinstance(
        exc, (ConnectionLostError, PoolTimeoutError, CommitOutcomeUnknownError)
    )


async def recover(session: AsyncSession, exc: BaseException) -> tuple[bool, BaseException | None]:
    """A statement failed while savepoints are open: roll back to the innermost one, memory too.

    Returns whether that worked (the transaction lives on, and ``exc`` propagates as it is), and
    what interrupted the ROLLBACK TO itself, if anything (to raise once the session has failed).
    """
    tx = session._tx
    innermost = session._savepoints[-1]
    if tx is None or tx.conn.broken or not survives(exc, innermost):
        return False, None
    assert innermost._mark is not None
    try:
        await send(session, tx, SavepointVerb.ROLLBACK_TO, innermost.name)
    except DatabaseError:
        return False, None  # (SQLite may have rolled the whole transaction back: it ends)
    except BaseException as pierced:  # a native cancellation through the shield: state unknown
        tx.conn.broken = True
        return False, pierced
    session._objects.restore_to(innermost._mark)
    innermost._statements_then = _statements(session)
    return True, None


async def send(session: AsyncSession, tx: Transaction, verb: SavepointVerb, name: str) -> None:
    """A savepoint statement, shielded from cancellation and bounded by the pool's
    ``cleanup_timeout`` (as a rollback is): one that does not answer in time leaves the
    connection in an unknown state, and the transaction fails."""
    timeout = session._driver.cleanup_timeout
    with anyio.CancelScope(shield=True):
        with anyio.move_on_after(timeout) as scope:
            await tx.conn.savepoint(verb, name)
    if scope.cancelled_caught:
        tx.conn.broken = True
        raise OperationalError(
            f"cannot {verb.action}: the database did not answer within the pool's cleanup_timeout ({timeout} s)"
        )


def _statements(session: AsyncSession) -> int:
    return sum(session._stats.statements.values())
