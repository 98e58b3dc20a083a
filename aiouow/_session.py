"""The session: the public API of the unit of work, coordinating the parts that do the work.

Per entity, an `EntityTracker` (``_tracking``) holds the objects and their changes; a flush is
taken, planned and settled by ``_flush``; the database transaction and its connection are a
`Transaction` (``_transaction``); what a commit settles and a rollback puts back is in
``_restore``. See ``docs/internals.md``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from types import TracebackType
from typing import Any, TypeVar, TypeVarTuple

import anyio

from . import _dispatch, _flush, _graph, _savepoint
from ._expire import SessionExpiry
from ._flush import Flush
from ._identity import IdentityMap
from ._inspection import SessionInspection
from ._loading import load_objects
from ._mapping import Mapper, describe, key_argument, mapper_of
from ._merge import merge_into
from ._nplusone import NPlusOneDetector
from ._pool import Pool
from ._query import Select
from ._reads import SessionReads
from ._relations import unload_touching
from ._replicas import checked_token, later
from ._savepoint import Savepoint, SavepointState
from ._shortcuts import QueryShortcuts, checked
from ._state import STATE_ATTR, SessionLifecycle, SessionState
from ._stats import StatsRecorder
from ._tracking import NOT_HELD, EntityTracker
from ._transaction import CommitOutcome, Transaction, TransactionBlock
from ._txoptions import Isolation, TransactionOptions
from .dialects._base import Row
from .errors import (
    ConfigurationError,
    DetachedInstanceError,
    SessionClosedError,
    SessionError,
)

E = TypeVar("E")
T = TypeVar("T")
R = TypeVar("R")
Ts = TypeVarTuple("Ts")

_IDLE, _ACTIVE, _FAILED, _CLOSED = SessionState.IDLE, SessionState.ACTIVE, SessionState.FAILED, SessionState.CLOSED


class AsyncSession(QueryShortcuts, SessionReads, SessionInspection, SessionExpiry):
    """A unit of work: an identity map, tracked changes, and one pooled connection.

    ```python
    async with AsyncSession(pool) as s:
        user = User(name="alice", email="a@example.org")
        s.add(user)
        await s.flush()          # INSERT; user.id is set
        user.name = "alice2"
        await s.commit()         # UPDATE, COMMIT
    ```

    The connection is acquired on first use and released by ``commit()``, ``rollback()`` and
    ``close()``. Leaving ``async with`` closes the session, rolling back what was not committed.
    Operations awaited from several tasks at once are serialized.

    ``after``: a `commit_token` (of another session, request or process): on a pool with read
    replicas, the session reads only from replicas that have replayed that commit (else from the
    primary). See "Scale-out" in the documentation.
    """

    def __init__(
        self,
        pool: Pool,
        *,
        autoflush: bool = True,
        isolation: Isolation | str | None = None,
        read_only: bool = False,
        n_plus_one: str = "warn",
        identity_map: str = "strong",
        after: str | None = None,
    ) -> None:
        if not isinstance(pool, Pool):
            raise TypeError(f"AsyncSession() takes an aiouow Pool, got {type(pool).__name__}")
        self._pool = pool
        #: What ``fork()`` gives its sessions.
        self._fork_options: dict[str, Any] = {
            "autoflush": autoflush,
            "isolation": isolation,
            "read_only": read_only,
            "n_plus_one": n_plus_one,
            "identity_map": identity_map,
        }
        self._driver = pool.driver
        self._dialect = self._driver.dialect
        #: How every transaction of the session begins (see "Isolation and read-only sessions").
        self._options = TransactionOptions.of(isolation, read_only, self._dialect.name)
        #: Read replicas (a pool made with ``replicas=``): reads may go to one, unless a stricter
        #: isolation than read committed must hold across a transaction that may move to the
        #: primary (a read-only one never moves: repeatable read holds on a standby; serializable
        #: is refused there, so it stays on the primary).
        isolation = self._options.isolation
        self._may_read_replicas = isolation in (None, Isolation.READ_COMMITTED) or (
            read_only and isolation is Isolation.REPEATABLE_READ
        )
        #: Reads from a replica wait until it has replayed this commit position (``after=``, then
        #: the session's own commits: it always reads its own writes).
        self._after = None if after is None else checked_token(after)
        self._commit_token: str | None = None
        self.autoflush = autoflush
        self._autoflush_off = 0
        self._life = SessionLifecycle()
        self._tx: Transaction | None = None
        self._lock = asyncio.Lock()
        if identity_map not in ("strong", "weak"):
            raise ConfigurationError(
                f'identity_map must be "strong" (every object stays until the session ends) or "weak" '
                f"(objects nobody refers to leave the session), got {identity_map!r}"
            )
        self._objects = IdentityMap(self, weak=identity_map == "weak")
        self._savepoints: list[Savepoint] = []  # the open ones, outermost first
        #: Event listeners of this session (`aiouow.event`); the pool's apply too.
        self._listeners: _dispatch.Listeners = {}
        self._stats = StatsRecorder()
        self._n_plus_one = NPlusOneDetector(n_plus_one)

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def session_state(self) -> SessionState:
        """``IDLE``, ``ACTIVE`` (a transaction is open), ``FAILED`` or ``CLOSED``."""
        return self._life.state

    @property
    def pool(self) -> Pool:
        """The pool this session takes its connection from."""
        return self._pool

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._close_at_once():
            await self.close()

    async def _transaction(self, *, writing: bool = True) -> Transaction:
        """The open transaction, begun on first use (a failed BEGIN fails the session). On a pool
        with replicas, one that is not ``writing`` may begin on a replica, and one that began
        there moves to the primary when it starts writing (`aiouow._replicas`)."""
        tx = self._tx
        routing = self._pool._routing
        if tx is None:
            if routing is None:
                tx = self._tx = await Transaction.lease(self._driver, self._stats)
                await self._guarded(tx.begin(self._options))
            else:
                tx = await routing.begin(self, writing=writing or not self._may_read_replicas)
            self._life.state = SessionState.ACTIVE
        elif writing and tx.replica is not None:
            assert routing is not None
            tx = await routing.to_the_primary(self, tx)
        return tx

    async def _transaction_for(self, flush: Flush | None) -> Transaction:
        """The open transaction, begun now if need be, for a taken flush (aborted if that fails)."""
        try:
            tx = self._tx
            return tx if tx is not None and tx.replica is None else await self._transaction()
        except BaseException:
            if flush is not None:
                flush.abort()
            raise

    async def _fail(self, exc: BaseException) -> None:
        """A statement failed or was interrupted: the session is FAILED, its transaction rolled
        back; or, for a database error while savepoints are open, the innermost one is (see
        `aiouow._savepoint.recover`)."""
        pierced = None
        if self._savepoints:
            recovered, pierced = await _savepoint.recover(self, exc)
            if recovered:
                return
        self._life.failed(exc)
        self._end_savepoints()
        tx, self._tx = self._tx, None
        if tx is not None:
            await tx.fail(exc)
        if pierced is not None:
            raise pierced

    def _end_savepoints(self) -> None:
        """The transaction ended: so did every savepoint still open in it."""
        for sp in self._savepoints:
            sp.state = SavepointState.ENDED
        self._savepoints.clear()

    async def _guarded(self, awaitable: Awaitable[T]) -> T:
        """Await a statement; any failure or interruption fails the session (see `_fail`)."""
        try:
            return await awaitable
        except StopAsyncIteration:
            raise
        except BaseException as exc:
            await self._fail(exc)
            raise

    @property
    def commit_outcome_unknown(self) -> bool:
        """True after a COMMIT was interrupted or lost its connection while in flight.

        The transaction may or may not be committed; the session is FAILED until ``rollback()``
        or ``close()`` (which put objects back as if it was not), and nothing is retried.
        """
        return self._life.commit_unknown

    async def commit(self) -> None:
        """Flush, then COMMIT; the connection goes back to the pool. Objects keep their values.

        A COMMIT interrupted in flight (cancelled, timed out) has an unknown outcome: the
        connection is closed, `commit_outcome_unknown` is set, and the cancellation propagates. A
        connection lost during COMMIT raises `CommitOutcomeUnknownError`. Where the pool sends the
        flush and the COMMIT in one call (SQLite), the outcome is known once the cleanup has run
        (see "Cancellation and failures" in the documentation).
        """
        self._life.enter("commit")
        lock = self._lock
        await lock.acquire()  # (not `async with`: two coroutines less on a hot path)
        try:
            flushed = await self._commit()
        finally:
            lock.release()
        if self._listeners or self._pool._listeners:
            await _dispatch.after_commit(self, flushed)

    async def _commit(self) -> bool:
        """`commit` under the lock; whether it sent a flush."""
        self._life.check("commit")
        if self._savepoints:
            raise SessionError(
                "cannot commit inside a begin_nested() block: the savepoint is still open; leave the block "
                "(which releases it), then commit"
            )
        if self._listeners or self._pool._listeners:
            await _dispatch.fire(self, "before_commit", locked=True)
        self._refuse_writes("commit")
        flush = await self._rounds_before_the_last()
        if flush is None and self._tx is None:
            self._committed()  # nothing to commit
            return False
        tx = await self._transaction_for(flush)
        self._tx = None
        try:
            outcome, error = await tx.commit(flush)
        except BaseException as exc:  # its cleanup was interrupted: the connection is gone
            self._life.failed(exc, commit_unknown=tx.conn.commit_sent)
            raise
        if outcome is CommitOutcome.COMMITTED:
            # Once COMMIT has succeeded the session is committed, whatever came after it.
            if tx.wrote and tx.wants_token:
                self._saw_commit(tx.commit_token)
            self._committed()
            if error is not None:
                raise error
            return flush is not None
        assert error is not None
        self._life.failed(error, commit_unknown=outcome is CommitOutcome.UNKNOWN)
        raise error

    def _saw_commit(self, token: str | None) -> None:
        """A commit that wrote, on a pool with replicas: the session's later reads must see it."""
        self._commit_token = token
        if token is None:  # its position is not known: read from the primary from now on
            self._may_read_replicas = False
        else:
            self._after = later(self._after, token)

    @property
    def commit_token(self) -> str | None:
        """After a commit that wrote, on a pool with replicas: its WAL position, for
        ``AsyncSession(pool, after=token)`` elsewhere (another request, another process), which
        then reads only what has it. None otherwise (and when the position could not be read)."""
        return self._commit_token

    def _refuse_writes(self, op: str) -> None:
        if self._options.read_only and self._objects.has_changes():
            raise SessionError(
                f"cannot {op}: the session is read-only (AsyncSession(..., read_only=True)), and objects have changes "
                "to write; roll back, or write in a session that is not read-only"
            )

    def _committed(self) -> None:
        self._objects.after_commit()
        self._life.ended()

    async def rollback(self) -> None:
        """Roll back; every object in the session again holds what the database holds."""
        self._life.enter_to_end("rollback")
        async with self._lock:
            if self._life.state is _CLOSED:
                raise SessionClosedError("cannot rollback: the session is closed")
            tx, self._tx = self._tx, None
            try:
                if tx is not None:
                    await tx.rollback()
            finally:
                self._end_savepoints()
                self._objects.restore(wrote=tx is None or tx.wrote)  # (no transaction: not known)
                self._life.ended()
        if self._listeners or self._pool._listeners:
            await _dispatch.fire(self, "after_rollback", locked=False)

    async def close(self) -> None:
        """Roll back what was not committed, release the connection, detach every object.

        A closed session is finished: using it again raises `SessionClosedError`. Closing twice
        is allowed. Closing is shielded from cancellation; should a native ``Task.cancel()``
        interrupt it even so, the connection is closed at once rather than leaked.
        """
        if self._close_at_once():
            return
        self._life.enter_to_end("close")
        if self._tx is None and not self._lock.locked():  # nothing to give back: nothing to await
            self._finish_close()
            return
        wrote = True  # (until its transaction says otherwise)
        try:
            with anyio.CancelScope(shield=True):
                async with self._lock:
                    if self._life.closed():
                        return
                    tx, self._tx = self._tx, None
                    wrote = tx is None or tx.wrote
                    try:
                        if tx is not None:
                            await tx.rollback()
                    finally:
                        self._finish_close(wrote=wrote)
        except BaseException:
            tx, self._tx = self._tx, None
            if tx is not None:
                wrote = wrote or tx.wrote
                tx.discard()
            self._finish_close(wrote=wrote)
            raise

    def _close_at_once(self) -> bool:
        """Close without awaiting anything if there is nothing to wait for (True), as after a
        commit: an idle session, on its own event loop, holding no connection, not locked."""
        state = self._life.state
        if state is _CLOSED:
            return True
        if state is not _IDLE or self._tx is not None or self._life.loop is not asyncio.get_running_loop():
            return False
        if self._lock.locked():
            return False
        self._finish_close()
        return True

    def _finish_close(self, *, wrote: bool = True) -> None:
        """Detach everything; ``wrote``: whether the transaction being rolled back wrote (True when
        not known), which decides whether the relationships it loaded are unloaded."""
        self._end_savepoints()
        if self._life.state is not _CLOSED:
            self._objects.close(wrote=wrote)
            self._life.state = _CLOSED

    def __del__(self) -> None:
        tx = getattr(self, "_tx", None)
        if tx is not None:
            self._tx = None
            tx.discard_unclosed(self._life.loop, self)

    def begin(self) -> TransactionBlock:
        """``async with s.begin():`` commits when the block succeeds and rolls back when it raises.

        The block owns one transaction from start to end: it cannot begin over work the session
        already holds, and a ``commit()`` or ``rollback()`` inside it is a `SessionError` when
        the block ends (what was done after it is rolled back, never committed by the block).
        """
        return TransactionBlock(self, self._life)

    def fork(self) -> AbstractAsyncContextManager[AsyncSession]:
        """``async with s.fork() as child:`` a new session on the same pool, with the same options and
        an identity map and transaction of its own, bound to the current task for the block (what a
        child task uses instead of its parent's session; see "Task-local sessions")."""
        from ._tasklocal import forked

        return forked(self)

    def begin_nested(self) -> Savepoint:
        """``async with s.begin_nested() as sp:`` flushes and opens a SAVEPOINT; leaving the block
        releases it, and an exception (or ``await sp.rollback()``) rolls back to it, with memory
        put back exactly as it was when it opened. A database error inside the block rolls back
        to it at once, and the transaction stays usable. See "Savepoints" in the session guide."""
        self._life.check("begin_nested")
        return Savepoint(self)

    @contextmanager
    def no_autoflush(self) -> Iterator[AsyncSession]:
        """Within this block, queries do not flush pending changes first."""
        self._autoflush_off += 1
        try:
            yield self
        finally:
            self._autoflush_off -= 1

    # -- writes ---------------------------------------------------------------------------------
    def add(self, *objs: Any) -> None:
        """Add objects: new ones are inserted at the next flush; detached ones are attached again.

        Adding an object already in the session does nothing.
        """
        self._life.check("add")
        self._objects.add(objs)

    def add_all(self, objs: Iterable[Any]) -> None:
        """Add every object of an iterable."""
        self.add(*objs)

    def delete(self, obj: Any) -> None:
        """Mark an object for deletion at the next flush; a pending object is just un-added."""
        try:
            holder = obj._aiouow_state
        except AttributeError:  # not an entity, or made without __init__
            holder = None
        if holder is not None and holder.session is self and (self._life.state is _IDLE or self._life.state is _ACTIVE):
            holder.mark_deleted(obj)  # an object of this usable session
            return
        self._life.check("delete")
        self._objects.delete(obj)

    # -- flush ----------------------------------------------------------------------------------
    async def flush(self) -> None:
        """Send pending INSERTs, UPDATEs and DELETEs; the transaction stays open."""
        self._life.enter("flush")
        async with self._lock:
            self._life.check("flush")
            await self._flush()

    async def _flush(self) -> None:
        flush = await self._rounds_before_the_last()
        if flush is not None:
            tx = await self._transaction_for(flush)
            await self._guarded(tx.run(flush))
            if self._listeners or self._pool._listeners:
                await _dispatch.fire(self, "after_flush", locked=True)

    async def _rounds_before_the_last(self) -> Flush | None:
        """A flush runs in rounds when objects wait for keys that a round generates (a pending
        child of a pending parent whose key the database generates goes in the round after it):
        run every round but the last, and return the last one taken (None: nothing to send), for
        `_flush` to run, or `commit` to send with its COMMIT. Listeners of ``before_flush`` and the
        entity events run first (see `aiouow._dispatch`)."""
        if (self._listeners or self._pool._listeners or _dispatch.entity_listeners) and self._objects.has_changes():
            await _dispatch.before_flush(self)
        self._refuse_writes("flush")
        flush = _flush.take(self._objects, self._dialect, self._stats)
        while flush is not None and flush.more:
            tx = await self._transaction_for(flush)
            await self._guarded(tx.run(flush))
            flush = _flush.take(self._objects, self._dialect, self._stats)
        return flush

    async def _ready_to_read(self, op: str) -> None:
        """Under the lock, before a statement that reads: the session is usable, and pending
        changes are flushed first (autoflush) so that the statement sees them."""
        self._life.check(op)
        if self.autoflush and not self._autoflush_off and self._objects.has_changes():
            await self._flush()

    # -- reads ----------------------------------------------------------------------------------
    async def get(self, entity: type[E], pk: Any, *, for_update: bool = False) -> E | None:
        """The object with primary key ``pk`` (a tuple for composite keys), or None.

        Answered from the identity map without SQL when the object is there. ``for_update=True``
        always asks the database and locks the row until the transaction ends (on SQLite the
        write lock is taken); the object's unchanged fields are refreshed from the row.
        """
        if not for_update:  # the identity-map hit: a key of the exact type, a usable session, its loop
            tracker = self._objects.by_class.get(entity)
            if tracker is not None and type(pk) is tracker.key_type:
                found = tracker.lookup(pk)
                life = self._life
                if (
                    found is not NOT_HELD
                    and (life.state is _IDLE or life.state is _ACTIVE)
                    and life.loop is asyncio.get_running_loop()
                ):
                    hit: E | None = found
                    return hit
        mapper = mapper_of(entity)
        key = key_argument(mapper, pk)
        self._life.enter("get")
        tracker = self._objects.tracker(mapper)
        if not for_update:
            found = tracker.lookup(key)
            if found is not NOT_HELD:
                known: E | None = found
                return known
        lock = self._lock
        await lock.acquire()  # (not `async with`: two coroutines less on a hot path)
        try:
            await self._ready_to_read("get")
            self._n_plus_one.single_row(
                self._dialect.select_by_pk_sql(mapper, for_update=for_update),
                f"select({mapper.name}).where({mapper.pk[0]!r}.in_(keys))",
            )
            rows = await self._fetch_by_key(mapper, key, for_update=for_update)
            objs = self._load(mapper, rows, refresh=for_update)
            if not objs and for_update:  # another transaction deleted the row: its object goes
                tracker.evict(key)
        finally:
            lock.release()
        return objs[0] if objs else None

    async def scalars(self, stmt: Select[E]) -> list[E]:
        """Run a `aiouow.select` and return its objects."""
        sql, params = self._dialect.compile_select(checked(stmt, "run"))
        self._life.enter("query")
        async with self._lock:
            await self._ready_to_read("query")
            keyed = stmt.keyed_column
            if keyed is not None:
                self._n_plus_one.single_row(sql, f"select({stmt.mapper.name}).where({keyed!r}.in_(values))")
            rows = await self._fetch(sql, params, write=stmt.locking)
            objs = self._load(stmt.mapper, rows, refresh=stmt.locking)
            if stmt.joins_many:  # a join to a collection repeats an object per related row: once each
                objs = list(dict.fromkeys(objs))
            if stmt.loads and objs:
                paths = _graph.paths_of(stmt.entity, stmt.loads)
                await _graph.load_paths(self._objects, self._dialect, self._fetch_rows, objs, paths)
            return objs

    async def _read(self, op: str, sql: str, params: Sequence[Any], *, write: bool) -> list[Row]:
        """Under the lock, after autoflush: a query's driver rows."""
        self._life.enter(op)
        async with self._lock:
            await self._ready_to_read(op)
            return await self._fetch(sql, params, write=write)

    async def merge(self, obj: E) -> E:
        """Copy a detached (or new) object's state onto this session's object for the same row.

        Returns the session's object: loaded from the identity map or the database, or, when no
        row exists, a new pending copy. ``obj`` itself is left as it was.
        """
        return await merge_into(self, obj)

    def expunge(self, obj: Any) -> None:
        """Remove one object from the session: pending becomes transient, persistent becomes detached."""
        self._own(obj, "expunge", allow_pending=True).forget(obj)

    def expunge_all(self) -> None:
        """Remove every object from the session."""
        self._life.check("expunge")
        self._objects.expunge_all()

    def _own(self, obj: Any, op: str, *, allow_pending: bool = False) -> EntityTracker:
        """The tracker of an object of this session (else `DetachedInstanceError`)."""
        self._life.check(op)
        mapper_of(obj)
        holder = getattr(obj, STATE_ATTR, None)
        if holder is None or holder.session is not self:
            raise DetachedInstanceError(f"cannot {op} {type(obj).__name__}: the object is not in this session")
        tracker: EntityTracker = holder
        if not allow_pending and id(obj) in tracker.new:
            raise DetachedInstanceError(f"cannot {op} {describe(obj)}: the object is pending (flush it first)")
        return tracker

    async def _fetch(self, sql: str, params: Sequence[Any], *, write: bool) -> list[Row]:
        tx = self._tx
        if tx is None or (write and tx.replica is not None):
            tx = await self._transaction(writing=write)
            routing = self._pool._routing
            if routing is not None and tx.replica is not None:  # (its first read: a replica that died is skipped)
                return await routing.first_read(self, tx, sql, params)
        return await self._guarded(tx.fetch(sql, params, write=write))

    async def _fetch_by_key(self, mapper: Mapper, key: Any, *, for_update: bool) -> list[Row]:
        sql = self._dialect.select_by_pk_sql(mapper, for_update=for_update)
        return await self._fetch(sql, self._dialect.key_params(mapper, key), write=for_update)

    def _load(self, mapper: Mapper, rows: Sequence[Row], *, refresh: bool) -> list[Any]:
        objs = load_objects(self._objects.tracker(mapper), self._dialect, rows, refresh=refresh)
        if refresh and rows:  # rows read again: what loaded relationships hold may have changed
            unload_touching(self._objects, [mapper])
        return objs

    def __repr__(self) -> str:
        return f"<AsyncSession {self._life.state.value} objects={len(self)}>"
