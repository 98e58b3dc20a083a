"""The session: a thin coordinator of identity map, change tracking, flush plans and one connection."""

from __future__ import annotations

import asyncio
import copy
import json
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import Any, NamedTuple, TypeVar

import anyio

from . import _tracking
from ._identity import IdentityMap
from ._mapping import Mapper, mapper_of, new_state, set_state_slot
from ._pool import Pool
from ._query import Select, select
from ._state import STATE_ATTR, InstanceState, Loaded, ObjectState, Pending, SessionState, state_of
from ._stats import SessionStats, StatsRecorder
from ._txlog import TransactionLog
from ._types import check
from ._unitofwork import DeleteStep, FlushPlan, InsertStep, UpdateStep, expected_count, plan_flush
from .dialects._base import Connection, Row
from .errors import (
    CommitOutcomeUnknownError,
    ConcurrentUseError,
    ConnectionLostError,
    DatabaseError,
    DetachedInstanceError,
    MultipleResultsError,
    NotFoundError,
    QueryError,
    SessionClosedError,
    SessionError,
    StaleDataError,
)

E = TypeVar("E")
T = TypeVar("T")

_IDLE, _ACTIVE = SessionState.IDLE, SessionState.ACTIVE
_DELETED = ObjectState.DELETED


class AsyncSession:
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
    """

    def __init__(self, pool: Pool, *, autoflush: bool = True) -> None:
        if not isinstance(pool, Pool):
            raise TypeError(f"AsyncSession() takes an aiouow Pool, got {type(pool).__name__}")
        self._pool = pool
        self._driver = pool.driver
        self._dialect = self._driver.dialect
        self.autoflush = autoflush
        self._autoflush_off = 0
        self._state = SessionState.IDLE
        self._failure: BaseException | None = None
        self._conn: Connection | None = None
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._identity = IdentityMap()
        #: Pending objects by ``id``: held by their entity's `Pending` stand-in, or by their own state.
        self._new: dict[int, Any] = {}
        #: Counts the changes to ``_new`` other than a flush's: none while a flush was in flight
        #: means that it inserted every pending object.
        self._new_edits = 0
        self._deleted: dict[InstanceState, None] = {}
        self._modified: set[InstanceState] = set()
        #: What states call on their first recorded change (cleared in place, never replaced).
        self._on_modified: Callable[[InstanceState], None] = self._modified.add
        self._json_mappers: set[Mapper] = set()
        self._marks: dict[Mapper, Loaded] = {}
        self._pendings: dict[Mapper, Pending] = {}
        self._txlog = TransactionLog()
        self._tx_generation = 0
        self._in_begin = False
        #: Counts the transactions ended by commit() or rollback(): a begin() block checks that
        #: nothing ended the transaction it began.
        self._transactions_ended = 0
        self._commit_unknown = False
        self._stats = StatsRecorder()

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def session_state(self) -> SessionState:
        """``IDLE``, ``ACTIVE`` (a transaction is open), ``FAILED`` or ``CLOSED``."""
        return self._state

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

    def _check(self, op: str) -> None:
        state = self._state
        if state is SessionState.CLOSED:
            raise SessionClosedError(f"cannot {op}: the session is closed")
        if state is SessionState.FAILED:
            raise SessionError(
                f"cannot {op}: an earlier statement of this session failed or was interrupted, and its "
                f"transaction was rolled back ({type(self._failure).__name__}: {self._failure}); "
                "call rollback() or close() first"
            )

    def _enter(self, op: str) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                raise ConcurrentUseError(
                    f"cannot {op}: the session belongs to another event loop (sessions are not thread-safe)"
                )
            self._loop = loop
        state = self._state
        if state is not _IDLE and state is not _ACTIVE:
            self._check(op)

    async def _connection(self) -> Connection:
        conn = self._conn
        if conn is None:
            conn = await self._driver.acquire()
            conn.observer = self._stats
            self._conn = conn
            try:
                await conn.begin()
            except BaseException as exc:
                await self._fail(exc)
                raise
            self._state = SessionState.ACTIVE
        return conn

    async def _fail(self, exc: BaseException) -> None:
        """A statement failed or was interrupted: roll the database back now and hold nothing.

        A database error leaves the connection usable for the ROLLBACK. An interruption (a
        cancellation, a timeout) or a lost connection leaves it in an unknown state: it is
        aborted first (SQLite: the running statement is interrupted; PostgreSQL: terminated).
        """
        self._failure = exc
        self._state = SessionState.FAILED
        conn = self._conn
        interrupted = not isinstance(exc, DatabaseError) or isinstance(exc, ConnectionLostError)
        if conn is not None and interrupted and not conn.broken:
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

    async def _release(self, *, rollback: bool) -> None:
        """Give the connection back (rolling back first when asked), shielded and bounded in time.

        Whatever cannot finish within the pool's ``cleanup_timeout``, and whatever a native
        ``Task.cancel()`` interrupts even so, ends with the connection closed, never returned to
        the pool in an unknown state.
        """
        conn, self._conn = self._conn, None
        self._tx_generation += 1
        if conn is None:
            return
        if not rollback and not conn.broken:
            # After a COMMIT: nothing to roll back, and the driver's release of a healthy
            # connection finishes even if this task is cancelled meanwhile (see
            # `DriverPool.release`), so no cancel scope of our own is needed around it.
            try:
                await self._driver.release(conn)
            except BaseException:
                self._driver.discard(conn)
                raise
            return
        timeout = self._driver.cleanup_timeout
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
                        await self._driver.release(conn)
                    if scope.cancelled_caught:
                        self._driver.discard(conn)
                else:  # a healthy connection: SQLite pools it at once, asyncpg bounds its own reset
                    await self._driver.release(conn)
        except BaseException:
            self._driver.discard(conn)
            raise

    @property
    def commit_outcome_unknown(self) -> bool:
        """True after a COMMIT was interrupted or lost its connection while in flight.

        The transaction may or may not be committed; the session is FAILED until ``rollback()``
        or ``close()`` (which put objects back as if it was not), and nothing is retried.
        """
        return self._commit_unknown

    async def commit(self) -> None:
        """Flush, then COMMIT; the connection goes back to the pool. Objects keep their values.

        A COMMIT interrupted in flight (cancelled, timed out) has an unknown outcome: the
        connection is closed, `commit_outcome_unknown` is set, and the cancellation propagates. A
        connection lost during COMMIT raises `CommitOutcomeUnknownError`. Where the pool sends the
        flush and the COMMIT in one call (SQLite), the outcome is known once the cleanup has run
        (see "Cancellation and failures" in the documentation).
        """
        self._enter("commit")
        lock = self._lock
        await lock.acquire()  # (not `async with`: two coroutines less on a hot path)
        try:
            if self._state is not _IDLE and self._state is not _ACTIVE:
                self._check("commit")
            pending = self._take()
            if pending is not None and self._driver.fuses_commit:
                await self._flush_and_commit(pending)
                return
            if pending is not None:
                await self._flush_taken(pending)
            conn = self._conn
            if conn is not None:
                try:
                    await conn.commit()
                except ConnectionLostError as exc:
                    self._commit_unknown = True
                    conn.broken = True
                    err = _commit_lost()
                    await self._fail(err)
                    raise err from exc
                except DatabaseError as exc:
                    await self._fail(exc)
                    raise
                except BaseException as exc:
                    self._commit_unknown = True
                    conn.broken = True
                    await self._fail(exc)
                    raise
            await self._committed()
        finally:
            lock.release()

    async def _committed(self) -> None:
        """COMMIT succeeded (or there was nothing to commit): the session is committed, whatever
        happens to the release of its connection (a cancellation there still propagates)."""
        try:
            if self._conn is not None:
                await self._release(rollback=False)
        finally:
            self._after_commit()
            self._state = SessionState.IDLE

    async def rollback(self) -> None:
        """Roll back; every object in the session again holds what the database holds."""
        self._enter_any("rollback")
        async with self._lock:
            if self._state is SessionState.CLOSED:
                raise SessionClosedError("cannot rollback: the session is closed")
            try:
                await self._release(rollback=True)
            finally:
                self._restore()
                self._state = SessionState.IDLE
                self._failure = None
                self._commit_unknown = False
                self._transactions_ended += 1

    def _closed(self) -> bool:
        # A method call, so that type checkers do not narrow the state across awaits.
        return self._state is SessionState.CLOSED

    def _enter_any(self, op: str) -> None:
        # rollback() and close() are allowed in the FAILED state.
        if self._state is SessionState.FAILED:
            self._loop = self._loop or asyncio.get_running_loop()
            return
        if self._state is not SessionState.CLOSED:
            self._enter(op)

    async def close(self) -> None:
        """Roll back what was not committed, release the connection, detach every object.

        A closed session is finished: using it again raises `SessionClosedError`. Closing twice
        is allowed. Closing is shielded from cancellation; should a native ``Task.cancel()``
        interrupt it even so, the connection is closed at once rather than leaked.
        """
        if self._close_at_once():
            return
        self._enter_any("close")
        if self._conn is None and not self._lock.locked():  # nothing to give back: nothing to await
            self._finish_close()
            return
        try:
            with anyio.CancelScope(shield=True):
                async with self._lock:
                    if self._closed():
                        return
                    try:
                        await self._release(rollback=True)
                    finally:
                        self._finish_close()
        except BaseException:
            conn, self._conn = self._conn, None
            if conn is not None:
                self._driver.discard(conn)
            self._finish_close()
            raise

    def _close_at_once(self) -> bool:
        """Close without awaiting anything if there is nothing to wait for (True), as after a
        commit: an idle session, on its own event loop, holding no connection, not locked."""
        state = self._state
        if state is SessionState.CLOSED:
            return True
        if state is not _IDLE or self._conn is not None or self._loop is not asyncio.get_running_loop():
            return False
        if self._lock.locked():
            return False
        self._finish_close()
        return True

    def _finish_close(self) -> None:
        if self._state is not SessionState.CLOSED:
            self._restore()
            self._detach_all()
            self._state = SessionState.CLOSED

    def __del__(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is None:
            return
        self._conn = None
        warnings.warn(
            "an aiouow session holding a connection was garbage-collected without close(); its "
            "connection was closed and its transaction rolled back (use `async with AsyncSession(pool)`)",
            ResourceWarning,
            stacklevel=2,
            source=self,
        )
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._driver.discard, conn)
        else:
            self._driver.discard(conn)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:
        """``async with s.begin():`` commits when the block succeeds and rolls back when it raises.

        The block owns one transaction from start to end: it cannot begin over work the session
        already holds, and a ``commit()`` or ``rollback()`` inside it is a `SessionError` when
        the block ends (what was done after it is rolled back, never committed by the block).
        """
        self._enter("begin")
        if self._in_begin:
            raise SessionError("cannot begin: a begin() block is already open in this session")
        if self._conn is not None or self._new or self.deleted or self.dirty:
            raise SessionError(
                "cannot begin: the session already holds work (an open transaction or unflushed changes) "
                "that the block would take over; commit or roll it back first"
            )
        self._in_begin = True
        ended = self._transactions_ended
        try:
            yield self
        except BaseException:
            if self._state is not SessionState.CLOSED:
                await self.rollback()
            raise
        else:
            if self._transactions_ended != ended:
                if self._state is not SessionState.CLOSED:
                    await self.rollback()
                raise SessionError(
                    "cannot commit the begin() block: its transaction was already ended inside it by commit() "
                    "or rollback(), so what was done after that was rolled back (let the block commit instead)"
                )
            await self.commit()
        finally:
            self._in_begin = False

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
        self._check("add")
        new = self._new
        self._new_edits += 1
        kind: type | None = None
        mark: Pending | None = None
        for obj in objs:
            if type(obj) is not kind:  # objects come in runs of one class
                kind = type(obj)
                mapper: Mapper | None = kind.__dict__.get("__aiouow_mapper__")
                mark = None if mapper is None else self._pending_mark(mapper)
            held = getattr(obj, STATE_ATTR, None)
            if held is None and mark is not None:
                # Fast path: an entity object no session has seen becomes pending, held by the stand-in.
                set_state_slot(obj, mark)
                new[id(obj)] = obj
            elif held is not mark or mark is None:
                self._add_one(obj)

    def _pending_mark(self, mapper: Mapper) -> Pending:
        mark = self._pendings.get(mapper)
        if mark is None:
            mark = self._pendings[mapper] = Pending(mapper, self, self._on_modified)
        return mark

    def _loaded_mark(self, mapper: Mapper) -> Loaded:
        mark = self._marks.get(mapper)
        if mark is None:
            table = self._identity.table(mapper)
            mark = self._marks[mapper] = Loaded(mapper, self, self._on_modified, table, self._deleted)
        return mark

    def add_all(self, objs: Iterable[Any]) -> None:
        """Add every object of an iterable."""
        self.add(*objs)

    def _add_one(self, obj: Any) -> None:
        st = new_state(obj)
        if st.owner is self:
            if st.status is ObjectState.DELETED and st not in self._deleted:
                raise SessionError(f"cannot add {_describe(st)}: it was deleted by a flush of this transaction")
            return
        if st.owner is not None:
            raise SessionError(
                f"cannot add {_describe(st)}: it belongs to another open session (expunge it there, or use merge())"
            )
        if st.key is None:
            st.status = ObjectState.PENDING
            st.owner = self
            st.listener = self._on_modified
            st.changed = {}  # what it recorded while transient: its INSERT takes its values as they are
            self._new[id(st.obj)] = st.obj
            return
        self._attach(st)

    def _attach(self, st: InstanceState) -> None:
        mapper = st.mapper
        present = self._identity.get(mapper, st.key)
        if present is not None and present is not st.obj:
            raise SessionError(
                f"cannot add {_describe(st)}: another object for the same row is already in this session "
                "(use merge() to copy its state onto that object)"
            )
        st.status = ObjectState.PERSISTENT
        st.owner = self
        st.listener = self._on_modified
        self._identity.add(mapper, st.key, st.obj)
        if st.changed:
            self._modified.add(st)
        if mapper.json_columns:
            if st.json_snap is None:
                _tracking.take_json_snapshot(st)
            self._json_mappers.add(mapper)

    def delete(self, obj: Any) -> None:
        """Mark an object for deletion at the next flush; a pending object is just un-added."""
        try:
            mark = obj._aiouow_state
        except AttributeError:
            mark = None
        if type(mark) is Loaded and mark.owner is self and (self._state is _IDLE or self._state is _ACTIVE):
            # The fast path: a loaded object of this usable session, held by its stand-in.
            if not mark.delete(obj):
                self._deleted[mark.materialize(obj, _DELETED)] = None
            return
        self._check("delete")
        mapper_of(obj)
        st = state_of(obj)
        if st is None or (st.key is None and st.owner is not self):
            raise SessionError(
                f"cannot delete {type(obj).__name__}: the object is not persisted (add and flush it first)"
            )
        if st.owner is self:
            if st.status is ObjectState.PENDING:
                del self._new[id(obj)]
                self._new_edits += 1
                st.status = ObjectState.TRANSIENT
                st.owner = None
                return
            if st.status is ObjectState.DELETED:
                return
        elif st.owner is not None:
            raise SessionError(f"cannot delete {_describe(st)}: it belongs to another open session")
        else:
            self._attach(st)
        st.status = ObjectState.DELETED
        self._deleted[st] = None

    # -- flush ----------------------------------------------------------------------------------
    async def flush(self) -> None:
        """Send pending INSERTs, UPDATEs and DELETEs; the transaction stays open."""
        self._enter("flush")
        async with self._lock:
            self._check("flush")
            await self._flush()

    def _candidates(self) -> list[InstanceState]:
        # (Pending objects with their own state are here too while they record assignments.)
        out = [st for st in self._modified if st.status is ObjectState.PERSISTENT]
        if self._json_mappers:
            seen = set(out)
            for mapper in self._json_mappers:
                for obj in self._identity.of(mapper):
                    st = state_of(obj)
                    assert st is not None
                    if st not in seen and st.status is ObjectState.PERSISTENT:
                        out.append(st)
        return out

    def _take(self) -> _Taken | None:
        """The first half of a flush, before any await: plan it (values are checked here, and a
        `DataError` leaves everything as it was), then take the recorded changes. None: nothing to send."""
        marked = [mark for mark in self._marks.values() if mark.changes or mark.deleted]
        if not (self._new or self._modified or self._deleted or self._json_mappers or marked):
            return None
        candidates = self._candidates() if self._modified or self._json_mappers else []
        plan = plan_flush(  # may raise DataError
            list(self._new.values()) if self._new else [],
            candidates,
            list(self._deleted) if self._deleted else [],
            marked,
            self._dialect,
        )
        # From here on, assignments made while the statements are in flight are tracked
        # against the values being written, so that none is lost: whatever is set on a pending
        # object during its INSERT is an UPDATE for the next flush. What pending objects with
        # their own state recorded before (they are among the modified) is dropped: the INSERT
        # takes their values as they are.
        taken: dict[InstanceState, dict[str, Any]] = {}
        for st in candidates:
            taken[st] = st.changed
            st.changed = {}
        for st in self._modified:
            if st.status is ObjectState.PENDING:
                st.changed = {}
        self._modified.clear()
        for mark in marked:  # the plan's update steps hold what was taken
            mark.changes = {}
        if plan.empty:  # assignments that set fields back: their records were just dropped
            return None
        for step in plan.steps:  # the stand-ins of the objects inserted record assignments meanwhile
            if isinstance(step, InsertStep) or (isinstance(step, UpdateStep) and step.replaced is not None):
                self._pending_mark(step.mapper).inflight = {}
        return _Taken(plan, taken, self._new_edits)

    def _untake(self, pending: _Taken) -> None:
        """The flush did not happen: its changes are recorded again (with any made meanwhile)."""
        for st, changed in pending.taken.items():
            st.changed = {**st.changed, **changed}
            if st.changed:
                self._modified.add(st)
        for step in pending.plan.steps:
            if isinstance(step, UpdateStep) and step.replaced is None:  # (a row switch took nothing)
                for obj, key, original in zip(step.objs, step.keys, step.originals, strict=True):
                    holder = obj._aiouow_state
                    if type(holder) is Loaded:  # the changes were the stand-in's: it holds them again
                        if holder.owner is self:
                            now = holder.changes.get(key)
                            holder.changes[key] = original if now is None else {**now, **original}
                    elif holder not in pending.taken:  # an object given its own state since
                        holder.changed = {**holder.changed, **original}
                        if holder.owner is self:
                            self._modified.add(holder)
        self._end_inflight()
        for st in [st for st in self._modified if st.status is ObjectState.PENDING]:
            st.changed = {}  # still pending: the next INSERT takes its values as they are
            self._modified.discard(st)

    async def _flush(self) -> None:
        pending = self._take()
        if pending is not None:
            await self._flush_taken(pending)

    async def _flush_taken(self, pending: _Taken) -> None:
        plan = pending.plan
        try:
            conn = self._conn or await self._connection()
            if conn.prepares_writes:
                await conn.prepare_write()
            keys = _step_results(plan, await conn.run_steps(plan.steps))
        except BaseException as exc:
            self._untake(pending)
            await self._fail(exc)
            raise
        self._apply(pending, keys)
        self._stats.flushes += 1

    async def _flush_and_commit(self, pending: _Taken) -> None:
        """Commit with the flush's statements and the COMMIT in one driver call (`DriverPool.fuses_commit`).

        A database error means nothing was committed. An interruption (a cancellation, a
        timeout) or a lost connection is cleaned up first (the statement interrupted, the
        transaction rolled back); by then the call has ended and the connection says whether
        its COMMIT went through. If it did, the commit is completed here and a cancellation
        still propagates; if it cannot say (the cleanup timed out), the outcome is unknown.
        """
        plan = pending.plan
        try:
            conn = await self._connection()
            await conn.prepare_write()
        except BaseException as exc:
            self._untake(pending)
            await self._fail(exc)
            raise
        try:
            keys = _step_results(plan, await conn.run_steps(plan.steps, commit=True))
        except ConnectionLostError as exc:
            if await self._interrupted_commit(conn, pending, exc):
                return  # committed: only the connection is gone (the pool replaces it)
            if self._commit_unknown:
                raise _commit_lost() from exc
            raise
        except DatabaseError as exc:
            self._untake(pending)
            await self._fail(exc)
            raise
        except BaseException as exc:
            await self._interrupted_commit(conn, pending, exc)
            raise
        self._apply(pending, keys)
        self._stats.flushes += 1
        await self._committed()

    async def _interrupted_commit(self, conn: Connection, pending: _Taken, exc: BaseException) -> bool:
        """Clean up after an interrupted fused commit; True when its COMMIT went through (then
        the session is committed, as if the interruption had come just after)."""
        await self._fail(exc)
        committed, results = conn.fused_outcome(pending.plan.steps)
        if committed:
            self._apply(pending, _step_results(pending.plan, results or []))
            self._stats.flushes += 1
            self._after_commit()
            self._state = SessionState.IDLE
            self._failure = None
            return True
        self._untake(pending)
        if committed is None:
            self._commit_unknown = True
        return False

    def _apply(self, pending: _Taken, keys: list[list[Any] | None]) -> None:
        """The flush succeeded: record what the database now holds."""
        log = self._txlog
        inserts = iter(keys)
        # The flush inserted every pending object unless some were added or removed meanwhile.
        every_new = pending.new_edits == self._new_edits
        for step in pending.plan.steps:
            mapper = step.mapper
            if isinstance(step, InsertStep):
                log.record_inserts(mapper, self._apply_insert(step, next(inserts), every_new), step.objs)
            elif isinstance(step, UpdateStep) and step.replaced is not None:
                # A row switch: the new objects took over the rows of the deleted ones. For a
                # rollback the rows were updated (what they held is the deleted objects' row),
                # the old objects deleted, and the new ones leave the session.
                names = tuple(c.name for c in step.columns)
                log.record_updates(mapper, step.keys, [_row_of(obj, names) for obj in step.replaced.objs])
                self._apply_delete(step.replaced)
                inserted = InsertStep(mapper, step.columns, [], step.objs, None)
                log.record_switches(mapper, self._apply_insert(inserted, None, every_new), step.objs)
                if mapper.version is not None:
                    name = mapper.version.name
                    for obj, replaced in zip(step.objs, step.replaced.objs, strict=True):
                        obj.__dict__[name] = replaced.__dict__[name] + 1
            elif isinstance(step, UpdateStep):
                version = mapper.version
                if version is None and not mapper.json_columns:
                    # What the fields held before: the taken originals (a field set back to its
                    # original holds that value anyway).
                    log.record_updates(mapper, step.keys, step.originals)
                    continue
                names = tuple(c.name for c in step.columns)
                befores: list[dict[str, Any]] = []
                for obj, original in zip(step.objs, step.originals, strict=True):
                    own = state_of(obj) if mapper.json_columns else None  # objects with JSON have their own
                    before = _before_update(mapper, names, original, own)
                    if version is not None:
                        before[version.name] = obj.__dict__[version.name]
                        obj.__dict__[version.name] += 1
                    if own is not None:
                        _tracking.take_json_snapshot(own)
                    befores.append(before)
                log.record_updates(mapper, step.keys, befores)
            elif isinstance(step, DeleteStep):
                self._apply_delete(step)
        if every_new:
            self._new = {}
        for st in pending.taken:
            if st.changed:
                self._modified.add(st)
        self._end_inflight()

    def _apply_delete(self, step: DeleteStep) -> None:
        """The rows of a delete step are gone: their objects leave the identity map, deleted by a flush."""
        mapper = step.mapper
        table = self._identity.table(mapper)
        deleted = self._deleted
        mark = self._marks.get(mapper)
        held: dict[Any, Any] = mark.deleted if mark is not None else {}
        removed: dict[Any, Any] = mark.removed if mark is not None else {}
        for key, obj in zip(step.ids, step.objs, strict=True):
            table.pop(key, None)
            if held.pop(key, None) is obj:  # held by the stand-in: deleted by a flush now
                earlier = removed.get(key)
                if earlier is not None and earlier is not obj:
                    # An object of the same key deleted by an earlier flush (its row was switched
                    # over to the one deleted now): it keeps its deletion in a state of its own.
                    assert mark is not None
                    mark.materialize(earlier, _DELETED)
                removed[key] = obj
            else:  # one with its own state (maybe given since the flush took it)
                holder = obj._aiouow_state
                if type(holder) is InstanceState:
                    deleted.pop(holder, None)
        self._txlog.record_deletes(mapper, step.ids, step.objs)

    def _end_inflight(self) -> None:
        """No flush is inserting: the stand-ins of pending objects stop recording assignments."""
        if self._pendings:
            for pending in self._pendings.values():
                pending.inflight = None

    def _apply_insert(self, step: InsertStep, generated: list[Any] | None, every_new: bool) -> list[Any]:
        """The rows of an insert step exist: their objects are persistent, held by the entity's
        `Loaded` stand-in (or by their own state, if they have one). They leave the pending
        objects here, unless ``every_new`` (the caller then empties them at once)."""
        mapper = step.mapper
        gen = step.returning
        version = mapper.version
        table = self._identity.table(mapper)
        new = self._new
        pending = self._pendings.get(mapper)
        loaded = self._loaded_mark(mapper)
        objs = step.objs
        persistent = ObjectState.PERSISTENT
        # The usual case: the generated key is the identity key (set in the loop below).
        name = gen.name if generated is not None and gen is not None and version is None else None
        keys: list[Any]
        if name is not None:
            assert generated is not None
            keys = generated
        else:  # the values the database gave (generated key, first version), then the keys
            keys = []
            for i, obj in enumerate(objs):
                d = obj.__dict__
                if generated is not None and gen is not None:
                    d[gen.name] = generated[i]
                if version is not None:
                    d[version.name] = 1
                keys.append(mapper.key_of_values(d))
        for obj, key in zip(objs, keys, strict=True):
            if name is not None:
                obj.__dict__[name] = key
            holder = obj._aiouow_state
            if holder is pending:
                set_state_slot(obj, loaded)
            else:
                assert type(holder) is InstanceState
                holder.key = key
                holder.status = persistent
            table[key] = obj
        if not every_new:
            for obj in objs:
                new.pop(id(obj), None)
        if pending is not None and pending.inflight:
            # Assignments made while the INSERT was in flight: changes for the next flush, kept
            # by the object's own state.
            for obj, key in zip(objs, keys, strict=True):
                changed = pending.inflight.pop(id(obj), None)
                if changed is not None:
                    st = state_of(obj)
                    assert st is not None
                    st.key = key
                    st.changed = changed
                    self._modified.add(st)
        if mapper.json_columns:
            for obj in objs:
                st = state_of(obj)
                assert st is not None
                _tracking.take_json_snapshot(st)
            self._json_mappers.add(mapper)
        return keys

    def _after_commit(self) -> None:
        self._transactions_ended += 1
        log = self._txlog
        if not log:
            return
        for mapper, objs in log.deleted_objects():
            mark = self._marks.get(mapper)
            for obj in objs:
                holder = obj._aiouow_state
                if holder is mark:  # held by the stand-in: it leaves the session without a state
                    set_state_slot(obj, None)
                elif holder is not None and holder.owner is self:
                    _make_object_transient(obj, holder)
        for mark in self._marks.values():
            if mark.removed:
                mark.removed = {}
        log.clear()

    def _restore(self) -> None:
        """After a rollback: put every object back to what the database holds.

        What a flush wrote is undone for the object that was flushed and, when that one was
        expunged and its row loaded again in the same transaction, for the object loaded since.
        """
        log = self._txlog
        if not (log or self._new or self._modified or self._deleted or self._json_mappers):
            for mark in self._marks.values():
                if mark.changes or mark.deleted or mark.removed:
                    break
            else:
                return  # nothing written, nothing changed (a close after a commit)
        updated = log.updated()
        # Rows inserted in this transaction no longer exist: every object standing for one
        # becomes transient, its generated key cleared (also one loaded again and deleted since).
        for mapper, key, obj in log.inserted():
            for target in self._objects_for(mapper, key, obj):
                self._make_inserted_transient(mapper, key, target)
        # New objects that took over the rows of deleted ones leave the session; the rows are
        # back to what they held (below), and so are their old objects.
        switched_in: set[int] = set()
        for mapper, key, obj in log.switched():
            switched_in.add(id(obj))
            holder = obj._aiouow_state
            if holder is not None and holder.owner is self:
                self._make_inserted_transient(mapper, key, obj)
        for obj in self._new.values():
            holder = obj._aiouow_state
            if holder is not None:
                _make_object_transient(obj, holder)
        self._new = {}
        self._end_inflight()
        touched: list[InstanceState] = []
        for st in self._candidates():
            st.obj.__dict__.update(_tracking.originals(st))
            touched.append(st)
        for mark in self._marks.values():  # what the stand-ins hold for objects without their own state
            table = mark.table
            for key, changed in mark.changes.items():
                table[key].__dict__.update(changed)
            mark.changes = {}
            mark.deleted = {}  # deletes not flushed are forgotten; flushed ones are undone below
            mark.removed = {}
        for st in self._deleted:
            st.obj.__dict__.update(_tracking.originals(st))
            touched.append(st)
        for mapper, key, obj, new_row in log.deleted():
            holder = obj._aiouow_state
            if holder is None or holder.owner is not self or id(obj) in switched_in:
                continue
            if new_row:  # the row no longer exists
                _forget_generated_key(mapper, obj)
                _make_object_transient(obj, holder)
            else:  # the row is back: so is its object (one held by its stand-in has no changes)
                if self._identity.get(mapper, key) is not obj:
                    # Another object was loaded for the key since: the row the transaction put
                    # there (by raw SQL) is gone, so that object leaves the session, detached.
                    self._evict(mapper, key)
                self._identity.add(mapper, key, obj)
                if type(holder) is InstanceState:
                    obj.__dict__.update(_tracking.originals(holder))
                    touched.append(holder)
        for (mapper, key), before in updated.items():
            # The row's object in this session now (maybe not the one that was updated: that one
            # may have been expunged and the row loaded again).
            obj = self._identity.get(mapper, key)
            if obj is None:
                continue
            holder = obj._aiouow_state
            if type(holder) is Loaded:  # nothing of its own to reset
                if holder.owner is self:
                    obj.__dict__.update(before)
            elif holder is not None and holder.owner is self:
                obj.__dict__.update(before)
                touched.append(holder)
        for st in touched:
            if st.owner is self:
                st.status = ObjectState.PERSISTENT
                _tracking.reset(st)
        self._deleted.clear()  # (in place: the stand-ins put the states they make here)
        self._modified.clear()
        log.clear()

    def _make_inserted_transient(self, mapper: Mapper, key: Any, target: Any) -> None:
        """``target`` stood for a row the rollback removes (for this session): it becomes
        transient, its generated key cleared, with whatever was recorded for it."""
        if self._identity.get(mapper, key) is target:
            self._identity.discard(mapper, key)
        _forget_generated_key(mapper, target)
        holder = target._aiouow_state
        assert holder is not None
        if type(holder) is Loaded:  # whatever its stand-in holds for the row goes too
            holder.changes.pop(key, None)
            holder.deleted.pop(key, None)
            holder.removed.pop(key, None)
        else:
            self._modified.discard(holder)
            self._deleted.pop(holder, None)
        _make_object_transient(target, holder)

    def _objects_for(self, mapper: Mapper, key: Any, obj: Any) -> list[Any]:
        """The objects in this session that stand for the row ``key`` that ``obj`` was inserted
        as: ``obj`` itself, and the object loaded for the same row after ``obj`` was expunged."""
        out = []
        holder = obj._aiouow_state
        keyed = type(holder) is not InstanceState or holder.key is not None  # (an own state may be transient)
        if holder is not None and holder.owner is self and keyed:
            out.append(obj)
        now = self._identity.get(mapper, key)
        if now is not None and now is not obj:
            other = now._aiouow_state
            if other is not None and other.owner is self:
                out.append(now)
        return out

    def _detach_all(self) -> None:
        for obj in self._identity.objects():
            st = obj._aiouow_state
            if type(st) is InstanceState:
                st.owner = None
                st.listener = None
                st.status = ObjectState.DETACHED
        for mark in self._marks.values():
            mark.detach()
        self._marks.clear()
        for pending in self._pendings.values():
            pending.detach()
        self._pendings.clear()
        self._identity.clear()
        self._json_mappers.clear()

    # -- reads ----------------------------------------------------------------------------------
    async def get(self, entity: type[E], pk: Any, *, for_update: bool = False) -> E | None:
        """The object with primary key ``pk`` (a tuple for composite keys), or None.

        Answered from the identity map without SQL when the object is there. ``for_update=True``
        always asks the database and locks the row until the transaction ends (on SQLite the
        write lock is taken); the object's unchanged fields are refreshed from the row.
        """
        if not for_update:
            # The identity-map hit, kept to a few dict lookups: a key of the exact type of a
            # single-column primary key, a usable session, on its own event loop.
            entry = self._identity.by_entity.get(entity)
            if entry is not None and type(pk) is entry[1]:
                hit = entry[0].get(pk)
                if (
                    hit is not None
                    and (self._state is _IDLE or self._state is _ACTIVE)
                    and self._loop is asyncio.get_running_loop()
                    and not self._marked_deleted(hit)
                ):
                    found: E = hit
                    return found
        mapper = mapper_of(entity)
        key = _key_arg(mapper, pk)
        self._enter("get")
        if not for_update:
            obj = self._identity.get(mapper, key)
            if obj is not None:
                if self._marked_deleted(obj):
                    return None
                known: E = obj
                return known
        lock = self._lock
        await lock.acquire()  # (not `async with`: two coroutines less on a hot path)
        try:
            if self._state is not _IDLE and self._state is not _ACTIVE:
                self._check("get")
            if self._autoflush_due():
                await self._flush()
            sql = self._dialect.select_by_pk_sql(mapper, for_update=for_update)
            rows = await self._fetch(sql, self._key_params(mapper, key), write=for_update)
            objs = self._load(mapper, rows, refresh=for_update)
            if not objs and for_update:  # another transaction deleted the row: its object goes
                self._evict(mapper, key)
        finally:
            lock.release()
        return objs[0] if objs else None

    def _evict(self, mapper: Mapper, key: Any) -> None:
        """The object the identity map holds for ``key``, if any, no longer stands for the row:
        it leaves the session, detached, with its unflushed changes."""
        obj = self._identity.get(mapper, key)
        if obj is not None:
            st = state_of(obj)
            assert st is not None
            self._forget(st)

    def _key_params(self, mapper: Mapper, key: Any) -> list[Any]:
        """An identity key as the driver parameters of a SELECT by primary key."""
        pk = mapper.pk
        values = (key,) if len(pk) == 1 else key
        return [self._dialect.param(c, v) for c, v in zip(pk, values, strict=True)]

    def _marked_deleted(self, obj: Any) -> bool:
        """Whether an object of the identity map is marked for deletion (not flushed yet)."""
        held = obj._aiouow_state
        if type(held) is Loaded:
            return bool(held.deleted) and held.is_deleted(obj, flushed=False)
        return bool(self._deleted) and held in self._deleted

    async def get_one(self, entity: type[E], pk: Any, *, for_update: bool = False) -> E:
        """Like `get`, but raises `NotFoundError` when there is no such row."""
        obj = await self.get(entity, pk, for_update=for_update)
        if obj is None:
            raise NotFoundError(f"cannot get {entity.__name__}: no row with primary key {pk!r}")
        return obj

    async def all(self, entity: type[E]) -> list[E]:
        """Every row of an entity's table."""
        return await self.scalars(select(entity))

    async def filter(self, entity: type[E], **equals: Any) -> list[E]:
        """Rows whose fields equal the given values: ``await s.filter(User, name="alice")``."""
        mapper = mapper_of(entity)
        stmt = select(entity)
        conds = [mapper.column(name, purpose=f"filter {mapper.name}") == value for name, value in equals.items()]
        return await self.scalars(stmt.where(*conds) if conds else stmt)

    async def scalars(self, stmt: Select[E]) -> list[E]:
        """Run a `aiouow.select` and return its objects."""
        if not isinstance(stmt, Select):
            raise QueryError(f"cannot run {stmt!r}: expected a statement made by aiouow.select()")
        sql, params = self._dialect.compile_select(stmt)
        self._enter("query")
        async with self._lock:
            self._check("query")
            if self._autoflush_due():
                await self._flush()
            rows = await self._fetch(sql, params, write=stmt.locking)
            return self._load(stmt.mapper, rows, refresh=stmt.locking)

    async def first(self, stmt: Select[E]) -> E | None:
        """The first object of a statement's result, or None."""
        if stmt.row_limit is None:
            stmt = stmt.limit(1)
        objs = await self.scalars(stmt)
        return objs[0] if objs else None

    async def one(self, stmt: Select[E]) -> E:
        """The only object of a statement's result: `NotFoundError` for none,
        `MultipleResultsError` for more than one."""
        objs = await self.scalars(stmt if stmt.row_limit is not None and stmt.row_limit < 2 else stmt.limit(2))
        if not objs:
            raise NotFoundError(f"cannot get one {stmt.mapper.name}: the query matched no row")
        if len(objs) > 1:
            raise MultipleResultsError(f"cannot get one {stmt.mapper.name}: the query matched more than one row")
        return objs[0]

    async def stream(self, stmt: Select[E], *, batch_size: int = 500) -> AsyncIterator[E]:
        """Iterate a statement's objects, fetching ``batch_size`` rows at a time.

        Other operations of the session may run between batches; ending the transaction
        (commit, rollback) ends the stream with a `SessionError`.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise QueryError(f"cannot stream: batch_size must be a positive int, got {batch_size!r}")
        sql, params = self._dialect.compile_select(stmt)
        self._enter("stream")
        async with self._lock:
            self._check("stream")
            if self._autoflush_due():
                await self._flush()
            conn = await self._connection()
            if stmt.locking:
                await self._guarded(conn.prepare_write(fresh_reads=True))
            batches = conn.stream(sql, params, batch_size)
            generation = self._tx_generation
        try:
            while True:
                async with self._lock:
                    self._check("stream")
                    if generation != self._tx_generation:
                        raise SessionError("cannot continue the stream: the transaction it ran in has ended")
                    try:
                        rows = await self._guarded(anext(batches))
                    except StopAsyncIteration:
                        return
                    objs = self._load(stmt.mapper, rows, refresh=stmt.locking)
                for obj in objs:
                    yield obj
        finally:
            if generation == self._tx_generation:
                await batches.aclose()

    async def execute(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Run raw SQL with the driver's own placeholders (``?`` on SQLite, ``$1`` on PostgreSQL).

        Pending changes are flushed first; rows come back as dicts.
        """
        self._enter("execute")
        async with self._lock:
            self._check("execute")
            if self._autoflush_due():
                await self._flush()
            conn = await self._connection()
            return await self._guarded(conn.execute_raw(sql, params))

    async def refresh(self, obj: Any) -> None:
        """Read the object's row again, discarding its unflushed changes."""
        st = self._own(obj, "refresh")
        self._enter("refresh")
        async with self._lock:
            self._check("refresh")
            mapper = st.mapper
            if st.status is ObjectState.DELETED and st not in self._deleted:
                # Its DELETE was flushed: its row is gone for this transaction, even where a row
                # switch gave the key's row to another object.
                raise NotFoundError(f"cannot refresh {_describe(st)}: its row was deleted by a flush")
            sql = self._dialect.select_by_pk_sql(mapper, for_update=False)
            rows = await self._fetch(sql, self._key_params(mapper, st.key), write=False)
            if not rows:
                raise NotFoundError(f"cannot refresh {_describe(st)}: its row no longer exists")
            st.changed = {}
            self._modified.discard(st)
            self._load(mapper, rows, refresh=True)

    async def merge(self, obj: E) -> E:
        """Copy a detached (or new) object's state onto this session's object for the same row.

        Returns the session's object: loaded from the identity map or the database, or, when no
        row exists, a new pending copy. ``obj`` itself is left as it was.
        """
        mapper = mapper_of(obj)
        st = state_of(obj)
        if st is not None and st.owner is self:
            return obj
        d = obj.__dict__
        values = {c.name: copy.deepcopy(d[c.name]) if c.json else d[c.name] for c in mapper.columns}
        gen = mapper.generated_pk
        target: E | None = None
        if gen is None or values[gen.name] is not None:
            target = await self.get(type(obj), mapper.key_of_values(values))
        if target is None:
            target = object.__new__(type(obj))
            target.__dict__.update(values)
            self.add(target)
            return target
        for c in mapper.columns:
            if not c.primary_key and not c.version:
                setattr(target, c.name, values[c.name])
        return target

    def expunge(self, obj: Any) -> None:
        """Remove one object from the session: pending becomes transient, persistent becomes detached."""
        st = self._own(obj, "expunge", allow_pending=True)
        self._forget(st)

    def expunge_all(self) -> None:
        """Remove every object from the session."""
        self._check("expunge")
        for st in [*map(state_of, self._new.values()), *map(state_of, self._identity.objects()), *self._deleted]:
            assert st is not None
            self._forget(st)

    def _forget(self, st: InstanceState) -> None:
        if self._new.pop(id(st.obj), None) is not None:
            self._new_edits += 1
        self._deleted.pop(st, None)
        self._modified.discard(st)
        if st.key is not None and self._identity.get(st.mapper, st.key) is st.obj:
            self._identity.discard(st.mapper, st.key)
        st.owner = None
        st.listener = None
        st.status = ObjectState.DETACHED if st.key is not None else ObjectState.TRANSIENT

    def _own(self, obj: Any, op: str, *, allow_pending: bool = False) -> InstanceState:
        self._check(op)
        mapper_of(obj)
        st = state_of(obj)
        if st is None or st.owner is not self:
            raise DetachedInstanceError(f"cannot {op} {type(obj).__name__}: the object is not in this session")
        if st.status is ObjectState.PENDING and not allow_pending:
            raise DetachedInstanceError(f"cannot {op} {_describe(st)}: the object is pending (flush it first)")
        return st

    def _autoflush_due(self) -> bool:
        """Whether a query flushes first: autoflush is on and the session may hold changes (the
        flush finds out which; a session that loaded nothing and added nothing holds none)."""
        return (
            self.autoflush
            and not self._autoflush_off
            and bool(self._new or self._modified or self._deleted or self._json_mappers or self._marks)
        )

    async def _fetch(self, sql: str, params: Sequence[Any], *, write: bool) -> list[Row]:
        conn = self._conn or await self._connection()
        try:
            if write:
                await conn.prepare_write(fresh_reads=True)
            return await conn.fetch(sql, params)
        except BaseException as exc:  # as `_guarded`, without a coroutine of its own
            await self._fail(exc)
            raise

    async def _guarded(self, awaitable: Awaitable[T]) -> T:
        """Await a statement; any failure or interruption fails the session (see `_fail`)."""
        try:
            return await awaitable
        except StopAsyncIteration:
            raise
        except BaseException as exc:
            await self._fail(exc)
            raise

    def _load(self, mapper: Mapper, rows: Sequence[Row], *, refresh: bool) -> list[Any]:
        """Rows to objects through the identity map (one object per row)."""
        mark = self._loaded_mark(mapper)
        table = mark.table
        on_new = None
        if mapper.json_columns:
            on_new = _snapshot_json
            self._json_mappers.add(mapper)
        objs = self._dialect.object_loader(mapper)(rows, table, mark, on_new)
        if refresh:
            values = self._dialect.loader(mapper)
            for obj, row in zip(objs, rows, strict=True):
                st = state_of(obj)
                assert st is not None
                _refresh_values(st, mapper.names, row if values is None else values(row))
        return objs

    # -- inspection -----------------------------------------------------------------------------
    def state(self, obj: Any) -> ObjectState:
        """Where the object stands relative to this session (see `ObjectState`)."""
        mapper_of(obj)
        held = getattr(obj, STATE_ATTR, None)
        if type(held) is Loaded:  # (inspection never gives an object its own state)
            if held.owner is not self:
                return ObjectState.DETACHED
            return ObjectState.DELETED if held.is_deleted(obj) else ObjectState.PERSISTENT
        if type(held) is Pending:
            return ObjectState.PENDING if held.owner is self else ObjectState.TRANSIENT
        st = state_of(obj)
        if st is None:
            return ObjectState.TRANSIENT
        if st.owner is self:
            return st.status
        return ObjectState.DETACHED if st.key is not None else ObjectState.TRANSIENT

    def is_dirty(self, obj: Any) -> bool:
        """Whether a persistent object has changes not yet flushed."""
        return bool(self.dirty_fields(obj))

    def dirty_fields(self, obj: Any) -> list[str]:
        """The names of the object's changed fields, in column order."""
        mapper = mapper_of(obj)
        held = getattr(obj, STATE_ATTR, None)
        if type(held) is Loaded:
            return list(_tracking.changed_fields(mapper, obj.__dict__, held.recorded(obj)))
        if type(held) is Pending:
            return []
        st = state_of(obj)
        if st is None or st.key is None or st.status is ObjectState.PENDING:
            return []
        return list(_tracking.dirty_fields(st))

    def original_value(self, obj: Any, name: str) -> Any:
        """The value ``name`` had at the last load or flush (the current value for new objects)."""
        mapper = mapper_of(obj)
        mapper.column(name, purpose="read an original value")
        held = getattr(obj, STATE_ATTR, None)
        if type(held) is Loaded:
            return held.recorded(obj).get(name, obj.__dict__[name])
        if type(held) is Pending:
            return obj.__dict__[name]
        st = state_of(obj)
        if st is None or st.key is None:
            return obj.__dict__[name]
        return _tracking.original_value(st, name)

    @property
    def new(self) -> frozenset[Any]:
        """Objects added and not yet flushed."""
        return frozenset(self._new.values())

    @property
    def dirty(self) -> frozenset[Any]:
        """Persistent objects with changes not yet flushed."""
        objs = [st.obj for st in self._candidates() if _tracking.dirty_fields(st)]
        for mark in self._marks.values():
            for key, changed in mark.changes.items():
                obj = mark.table[key]
                if _tracking.changed_fields(mark.mapper, obj.__dict__, changed):
                    objs.append(obj)
        return frozenset(objs)

    @property
    def deleted(self) -> frozenset[Any]:
        """Objects marked for deletion and not yet flushed."""
        objs = [st.obj for st in self._deleted]
        for mark in self._marks.values():
            objs.extend(mark.deleted.values())
        return frozenset(objs)

    def __contains__(self, obj: object) -> bool:
        st = getattr(obj, STATE_ATTR, None)
        return st is not None and st.owner is self

    def __len__(self) -> int:
        return len(self._identity) + len(self._new)

    def stats(self) -> SessionStats:
        """Statements by kind, rows read and written, flushes, time in the database, and sizes."""
        return self._stats.snapshot(len(self._identity), len(self._new), len(self.dirty), len(self.deleted))

    def __repr__(self) -> str:
        return f"<AsyncSession {self._state.value} objects={len(self)}>"


def _describe(st: InstanceState) -> str:
    mapper = st.mapper
    d = st.obj.__dict__
    keys = ", ".join(f"{c.name}={d.get(c.name)!r}" for c in mapper.pk)
    return f"{mapper.name}({keys})"


def _forget_generated_key(mapper: Mapper, obj: Any) -> None:
    """A row that no longer exists: clear the values the database gave its object (key, version)."""
    d = obj.__dict__
    gen = mapper.generated_pk
    if gen is not None:
        d[gen.name] = None
    if mapper.version is not None:
        d[mapper.version.name] = None


def _commit_lost() -> CommitOutcomeUnknownError:
    return CommitOutcomeUnknownError(
        "cannot commit: the connection was lost while COMMIT was in flight, so the "
        "transaction may or may not be committed (check in a new session; aiouow never retries)"
    )


def _make_transient(st: InstanceState) -> None:
    st.key = None
    st.owner = None
    st.listener = None
    st.status = ObjectState.TRANSIENT
    st.changed = {}
    st.json_snap = None


def _make_object_transient(obj: Any, holder: InstanceState | Loaded | Pending) -> None:
    """The object leaves its session, backed by no row: its own state says so, or (for an object
    held by one of its session's stand-ins) it gets no state at all, as if no session had seen it."""
    if type(holder) is InstanceState:
        _make_transient(holder)
    else:
        set_state_slot(obj, None)


def _before_update(
    mapper: Mapper, names: tuple[str, ...], original: dict[str, Any], st: InstanceState | None
) -> dict[str, Any]:
    """What the fields ``names`` of an updated object held before: ``original`` holds the assigned
    ones; a JSON field's is its snapshot (the state ``st`` of an entity with JSON fields)."""
    before: dict[str, Any] = {}
    snap = st.json_snap if st is not None else None
    for name in names:
        column = mapper.column_names[name]
        if column.json and snap is not None:
            before[name] = json.loads(snap[name])
        else:
            before[name] = original[name]
    return before


def _row_of(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """What the fields ``names`` hold in the row of a persistent object: their values, or the
    originals of those changed since the last load or flush."""
    d = obj.__dict__
    row = {name: d[name] for name in names}
    holder = obj._aiouow_state
    if type(holder) is InstanceState:
        row.update((name, value) for name, value in _tracking.originals(holder).items() if name in row)
    return row


def _snapshot_json(obj: Any) -> None:
    st = state_of(obj)
    assert st is not None
    _tracking.take_json_snapshot(st)


def _refresh_values(st: InstanceState, names: tuple[str, ...], vals: Sequence[Any]) -> None:
    """A locking read: take the row's values for every field without an unflushed change."""
    d = st.obj.__dict__
    changed = st.changed
    for name, value in zip(names, vals, strict=True):
        if name in changed:
            changed[name] = value
        else:
            d[name] = value
    _tracking.take_json_snapshot(st)


def _key_arg(mapper: Mapper, pk: Any) -> Any:
    pk_cols = mapper.pk
    if len(pk_cols) == 1:
        if isinstance(pk, tuple):
            if len(pk) != 1:
                raise QueryError(f"cannot get {mapper.name}: the primary key has one field, got {pk!r}")
            pk = pk[0]
        problem = check(pk_cols[0].ctype, pk)
        if problem is not None:
            raise QueryError(f"cannot get {mapper.name}: primary key {pk_cols[0].name!r} {problem}")
        return pk
    if not isinstance(pk, tuple) or len(pk) != len(pk_cols):
        names = ", ".join(c.name for c in pk_cols)
        raise QueryError(
            f"cannot get {mapper.name}: the primary key is ({names}); pass a tuple of {len(pk_cols)} values"
        )
    for c, v in zip(pk_cols, pk, strict=True):
        problem = check(c.ctype, v)
        if problem is not None:
            raise QueryError(f"cannot get {mapper.name}: primary key {c.name!r} {problem}")
    return pk


class _Taken(NamedTuple):
    """A planned flush and the changes it took from the objects (see `AsyncSession._take`)."""

    plan: FlushPlan
    taken: dict[InstanceState, dict[str, Any]]
    new_edits: int  # the session's count of changes to its pending objects when the flush took them


def _step_results(plan: FlushPlan, results: Sequence[Any]) -> list[list[Any] | None]:
    """The generated keys of each insert step; row counts checked against what was expected."""
    keys: list[list[Any] | None] = []
    for step, result in zip(plan.steps, results, strict=True):
        if isinstance(step, InsertStep):
            keys.append(result)
            continue
        expected = expected_count(step)
        if expected is not None and result != expected:
            versioned = step.version is not None
            what = "update" if isinstance(step, UpdateStep) else "delete"
            why = "a row was changed or deleted by another transaction" if versioned else "a row no longer exists"
            raise StaleDataError(
                f"cannot {what} {step.mapper.name}: expected to match {expected} row(s) in {step.mapper.table}, "
                f"matched {result} ({why})"
            )
    return keys
