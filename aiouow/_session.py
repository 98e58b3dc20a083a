"""The session: the public API of the unit of work, coordinating the parts that do the work.

Per entity, an `EntityTracker` (``_tracking``) holds the objects and their changes; a flush is
taken, planned and settled by ``_flush``; the database transaction and its connection are a
`Transaction` (``_transaction``); what a commit settles and a rollback puts back is in
``_restore``. See ``docs/internals.md``.
"""

from __future__ import annotations

import asyncio
import copy
import warnings
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import Any, TypeVar

import anyio

from . import _flush, _restore
from ._loading import object_loader, row_values
from ._mapping import Mapper, describe, key_argument, mapper_of
from ._pool import Pool
from ._query import Select, select
from ._state import STATE_ATTR, ObjectState, SessionState
from ._stats import SessionStats, StatsRecorder
from ._tracking import NOT_HELD, EntityTracker
from ._transaction import CommitOutcome, Transaction
from .dialects._base import Row
from .errors import (
    ConcurrentUseError,
    DetachedInstanceError,
    MultipleResultsError,
    NotFoundError,
    QueryError,
    SessionClosedError,
    SessionError,
)

E = TypeVar("E")
T = TypeVar("T")

_IDLE, _ACTIVE, _FAILED, _CLOSED = SessionState.IDLE, SessionState.ACTIVE, SessionState.FAILED, SessionState.CLOSED


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
        self._state = _IDLE
        self._failure: BaseException | None = None
        self._tx: Transaction | None = None
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._trackers: dict[Mapper, EntityTracker] = {}
        self._by_class: dict[type, EntityTracker] = {}  # the same trackers, by entity class
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
        if state is _CLOSED:
            raise SessionClosedError(f"cannot {op}: the session is closed")
        if state is _FAILED:
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

    def _tracker(self, mapper: Mapper) -> EntityTracker:
        tracker = self._trackers.get(mapper)
        if tracker is None:
            tracker = self._trackers[mapper] = self._by_class[mapper.entity] = EntityTracker(mapper, self)
        return tracker

    async def _transaction(self) -> Transaction:
        """The open transaction, begun on first use (a failed BEGIN fails the session)."""
        tx = self._tx
        if tx is None:
            tx = self._tx = await Transaction.lease(self._driver, self._stats)
            await self._guarded(tx.begin())
            self._state = _ACTIVE
        return tx

    async def _fail(self, exc: BaseException) -> None:
        """A statement failed or was interrupted: the session is FAILED, its transaction rolled back."""
        self._failure = exc
        self._state = _FAILED
        tx, self._tx = self._tx, None
        if tx is not None:
            await tx.fail(exc)

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
            flush = _flush.take(self._trackers.values(), self._dialect, self._stats)
            if flush is None and self._tx is None:
                self._committed()  # nothing to commit
                return
            try:
                tx = self._tx or await self._transaction()
            except BaseException:
                if flush is not None:
                    flush.abort()
                raise
            self._tx = None
            outcome, error = await tx.commit(flush)
            if outcome is CommitOutcome.COMMITTED:
                # Once COMMIT has succeeded the session is committed, whatever came after it.
                self._committed()
                if error is not None:
                    raise error
                return
            self._failure = error
            self._state = _FAILED
            self._commit_unknown = outcome is CommitOutcome.UNKNOWN
            assert error is not None
            raise error
        finally:
            lock.release()

    def _committed(self) -> None:
        for tracker in self._trackers.values():
            _restore.after_commit(tracker)
        self._transactions_ended += 1
        self._state = _IDLE
        self._failure = None

    async def rollback(self) -> None:
        """Roll back; every object in the session again holds what the database holds."""
        self._enter_any("rollback")
        async with self._lock:
            if self._state is _CLOSED:
                raise SessionClosedError("cannot rollback: the session is closed")
            tx, self._tx = self._tx, None
            try:
                if tx is not None:
                    await tx.rollback()
            finally:
                self._restore()
                self._state = _IDLE
                self._failure = None
                self._commit_unknown = False
                self._transactions_ended += 1

    def _restore(self) -> None:
        for tracker in self._trackers.values():
            _restore.restore(tracker)

    def _enter_any(self, op: str) -> None:
        # rollback() and close() are allowed in the FAILED state.
        if self._state is _FAILED:
            self._loop = self._loop or asyncio.get_running_loop()
            return
        if self._state is not _CLOSED:
            self._enter(op)

    def _closed(self) -> bool:
        # A method call, so that type checkers do not narrow the state across awaits.
        return self._state is _CLOSED

    async def close(self) -> None:
        """Roll back what was not committed, release the connection, detach every object.

        A closed session is finished: using it again raises `SessionClosedError`. Closing twice
        is allowed. Closing is shielded from cancellation; should a native ``Task.cancel()``
        interrupt it even so, the connection is closed at once rather than leaked.
        """
        if self._close_at_once():
            return
        self._enter_any("close")
        if self._tx is None and not self._lock.locked():  # nothing to give back: nothing to await
            self._finish_close()
            return
        try:
            with anyio.CancelScope(shield=True):
                async with self._lock:
                    if self._closed():
                        return
                    tx, self._tx = self._tx, None
                    try:
                        if tx is not None:
                            await tx.rollback()
                    finally:
                        self._finish_close()
        except BaseException:
            tx, self._tx = self._tx, None
            if tx is not None:
                tx.discard()
            self._finish_close()
            raise

    def _close_at_once(self) -> bool:
        """Close without awaiting anything if there is nothing to wait for (True), as after a
        commit: an idle session, on its own event loop, holding no connection, not locked."""
        state = self._state
        if state is _CLOSED:
            return True
        if state is not _IDLE or self._tx is not None or self._loop is not asyncio.get_running_loop():
            return False
        if self._lock.locked():
            return False
        self._finish_close()
        return True

    def _finish_close(self) -> None:
        if self._state is not _CLOSED:
            self._restore()
            for tracker in self._trackers.values():
                tracker.close()
            self._trackers.clear()
            self._by_class.clear()
            self._state = _CLOSED

    def __del__(self) -> None:
        tx = getattr(self, "_tx", None)
        if tx is None:
            return
        self._tx = None
        warnings.warn(
            "an aiouow session holding a connection was garbage-collected without close(); its "
            "connection was closed and its transaction rolled back (use `async with AsyncSession(pool)`)",
            ResourceWarning,
            stacklevel=2,
            source=self,
        )
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(tx.discard)
        else:
            tx.discard()

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
        if self._tx is not None or self.new or self.deleted or self.dirty:
            raise SessionError(
                "cannot begin: the session already holds work (an open transaction or unflushed changes) "
                "that the block would take over; commit or roll it back first"
            )
        self._in_begin = True
        ended = self._transactions_ended
        try:
            yield self
        except BaseException:
            if not self._closed():
                await self.rollback()
            raise
        else:
            if self._transactions_ended != ended:
                if not self._closed():
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
        kind: type | None = None
        tracker: EntityTracker | None = None
        for obj in objs:
            if type(obj) is not kind:  # objects come in runs of one class
                kind = type(obj)
                tracker = self._by_class.get(kind)
            holder = getattr(obj, STATE_ATTR, None)
            if tracker is None:
                self._add_one(obj)  # (the first object of its entity in this session, or not an entity)
                tracker = self._by_class.get(kind)
            elif holder is None:
                tracker.add_new(obj)  # an object no session has seen: pending
            elif holder is not tracker or tracker.removed:
                self._add_one(obj)

    def add_all(self, objs: Iterable[Any]) -> None:
        """Add every object of an iterable."""
        self.add(*objs)

    def _add_one(self, obj: Any) -> None:
        tracker = self._tracker(mapper_of(obj))
        holder = getattr(obj, STATE_ATTR, None)
        if holder is None:
            tracker.add_new(obj)
        elif holder is tracker:
            if id(obj) in tracker.removed:
                raise SessionError(f"cannot add {describe(obj)}: it was deleted by a flush of this transaction")
        elif holder.session is not None:
            raise SessionError(
                f"cannot add {describe(obj)}: it belongs to another open session (expunge it there, or use merge())"
            )
        else:
            self._attach(tracker, obj, holder)

    def _attach(self, tracker: EntityTracker, obj: Any, holder: Any) -> None:
        """A detached object joins this session, persistent."""
        key, changes, json_text = holder.detached_parts(obj)
        present = tracker.identity.get(key)
        if present is not None and present is not obj:
            raise SessionError(
                f"cannot add {describe(obj)}: another object for the same row is already in this session "
                "(use merge() to copy its state onto that object)"
            )
        tracker.adopt(obj, key, changes, json_text)

    def delete(self, obj: Any) -> None:
        """Mark an object for deletion at the next flush; a pending object is just un-added."""
        holder = getattr(obj, STATE_ATTR, None)
        if holder is not None and holder.session is self and (self._state is _IDLE or self._state is _ACTIVE):
            holder.mark_deleted(obj)  # an object of this usable session
            return
        self._check("delete")
        mapper = mapper_of(obj)
        if holder is None or holder.state_for(obj, self) is ObjectState.TRANSIENT:
            raise SessionError(f"cannot delete {mapper.name}: the object is not persisted (add and flush it first)")
        if holder.session is not None:
            raise SessionError(f"cannot delete {describe(obj)}: it belongs to another open session")
        tracker = self._tracker(mapper)
        self._attach(tracker, obj, holder)
        tracker.mark_deleted(obj)

    # -- flush ----------------------------------------------------------------------------------
    async def flush(self) -> None:
        """Send pending INSERTs, UPDATEs and DELETEs; the transaction stays open."""
        self._enter("flush")
        async with self._lock:
            self._check("flush")
            await self._flush()

    async def _flush(self) -> None:
        flush = _flush.take(self._trackers.values(), self._dialect, self._stats)
        if flush is None:
            return
        try:
            tx = self._tx or await self._transaction()
        except BaseException:
            flush.abort()
            raise
        await self._guarded(tx.run(flush))

    def _autoflush_due(self) -> bool:
        """Whether a query flushes first: autoflush is on and some tracker may hold changes."""
        if not self.autoflush or self._autoflush_off:
            return False
        return any(tracker.has_changes() for tracker in self._trackers.values())

    # -- reads ----------------------------------------------------------------------------------
    async def get(self, entity: type[E], pk: Any, *, for_update: bool = False) -> E | None:
        """The object with primary key ``pk`` (a tuple for composite keys), or None.

        Answered from the identity map without SQL when the object is there. ``for_update=True``
        always asks the database and locks the row until the transaction ends (on SQLite the
        write lock is taken); the object's unchanged fields are refreshed from the row.
        """
        if not for_update:  # the identity-map hit: a key of the exact type, a usable session, its loop
            tracker = self._by_class.get(entity)
            if tracker is not None and type(pk) is tracker.key_type:
                found = tracker.lookup(pk)
                if (
                    found is not NOT_HELD
                    and (self._state is _IDLE or self._state is _ACTIVE)
                    and self._loop is asyncio.get_running_loop()
                ):
                    hit: E | None = found
                    return hit
        mapper = mapper_of(entity)
        key = key_argument(mapper, pk)
        self._enter("get")
        tracker = self._tracker(mapper)
        if not for_update:
            found = tracker.lookup(key)
            if found is not NOT_HELD:
                known: E | None = found
                return known
        lock = self._lock
        await lock.acquire()  # (not `async with`: two coroutines less on a hot path)
        try:
            if self._state is not _IDLE and self._state is not _ACTIVE:
                self._check("get")
            if self._autoflush_due():
                await self._flush()
            sql = self._dialect.select_by_pk_sql(mapper, for_update=for_update)
            rows = await self._fetch(sql, self._dialect.key_params(mapper, key), write=for_update)
            objs = self._load(mapper, rows, refresh=for_update)
            if not objs and for_update:  # another transaction deleted the row: its object goes
                tracker.evict(key)
        finally:
            lock.release()
        return objs[0] if objs else None

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
            tx = await self._transaction()
            if stmt.locking:
                await self._guarded(tx.conn.prepare_write(fresh_reads=True))
            batches = tx.conn.stream(sql, params, batch_size)
        try:
            while True:
                async with self._lock:
                    self._check("stream")
                    if self._tx is not tx:
                        raise SessionError("cannot continue the stream: the transaction it ran in has ended")
                    try:
                        rows = await self._guarded(anext(batches))
                    except StopAsyncIteration:
                        return
                    objs = self._load(stmt.mapper, rows, refresh=stmt.locking)
                for obj in objs:
                    yield obj
        finally:
            if self._tx is tx:
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
            tx = await self._transaction()
            return await self._guarded(tx.conn.execute_raw(sql, params))

    async def refresh(self, obj: Any) -> None:
        """Read the object's row again, discarding its unflushed changes."""
        tracker = self._own(obj, "refresh")
        self._enter("refresh")
        async with self._lock:
            self._check("refresh")
            mapper = tracker.mapper
            if id(obj) in tracker.removed:
                # Its DELETE was flushed: its row is gone for this transaction, even where a row
                # switch gave the key's row to another object.
                raise NotFoundError(f"cannot refresh {describe(obj)}: its row was deleted by a flush")
            key = tracker.key_of(obj)
            rows = await self._fetch(
                self._dialect.select_by_pk_sql(mapper, for_update=False),
                self._dialect.key_params(mapper, key),
                write=False,
            )
            if not rows:  # another transaction deleted the row: the object leaves the session
                tracker.forget(obj)
                raise NotFoundError(f"cannot refresh {describe(obj)}: its row no longer exists")
            tracker.discard_changes(obj)
            self._load(mapper, rows, refresh=True)

    async def merge(self, obj: E) -> E:
        """Copy a detached (or new) object's state onto this session's object for the same row.

        Returns the session's object: loaded from the identity map or the database, or, when no
        row exists, a new pending copy. ``obj`` itself is left as it was.
        """
        mapper = mapper_of(obj)
        if obj in self:
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
        self._own(obj, "expunge", allow_pending=True).forget(obj)

    def expunge_all(self) -> None:
        """Remove every object from the session."""
        self._check("expunge")
        for tracker in self._trackers.values():
            removed = [r.obj for r in tracker.removed.values()]
            for obj in [*tracker.new.values(), *tracker.identity.values(), *removed]:
                tracker.forget(obj)

    def _own(self, obj: Any, op: str, *, allow_pending: bool = False) -> EntityTracker:
        """The tracker of an object of this session (else `DetachedInstanceError`)."""
        self._check(op)
        mapper_of(obj)
        holder = getattr(obj, STATE_ATTR, None)
        if holder is None or holder.session is not self:
            raise DetachedInstanceError(f"cannot {op} {type(obj).__name__}: the object is not in this session")
        tracker: EntityTracker = holder
        if not allow_pending and id(obj) in tracker.new:
            raise DetachedInstanceError(f"cannot {op} {describe(obj)}: the object is pending (flush it first)")
        return tracker

    async def _fetch(self, sql: str, params: Sequence[Any], *, write: bool) -> list[Row]:
        tx = self._tx or await self._transaction()
        return await self._guarded(tx.fetch(sql, params, write=write))

    def _load(self, mapper: Mapper, rows: Sequence[Row], *, refresh: bool) -> list[Any]:
        """Rows to objects through the identity map (one object per row)."""
        tracker = self._tracker(mapper)
        on_new = tracker.loaded if mapper.json_columns else None
        objs = object_loader(mapper, self._dialect)(rows, tracker, on_new)
        if refresh:
            values = row_values(mapper, self._dialect)
            for obj, row in zip(objs, rows, strict=True):
                tracker.refreshed(obj, mapper.names, values(row))
        return objs

    # -- inspection -----------------------------------------------------------------------------
    def state(self, obj: Any) -> ObjectState:
        """Where the object stands relative to this session (see `ObjectState`)."""
        mapper_of(obj)
        holder = getattr(obj, STATE_ATTR, None)
        return ObjectState.TRANSIENT if holder is None else holder.state_for(obj, self)

    def is_dirty(self, obj: Any) -> bool:
        """Whether a persistent object has changes not yet flushed."""
        return bool(self.dirty_fields(obj))

    def dirty_fields(self, obj: Any) -> list[str]:
        """The names of the object's changed fields, in column order."""
        mapper_of(obj)
        holder = getattr(obj, STATE_ATTR, None)
        return [] if holder is None else list(holder.dirty_fields(obj))

    def original_value(self, obj: Any, name: str) -> Any:
        """The value ``name`` had at the last load or flush (the current value for new objects)."""
        mapper = mapper_of(obj)
        mapper.column(name, purpose="read an original value")
        holder = getattr(obj, STATE_ATTR, None)
        return obj.__dict__[name] if holder is None else holder.original_value(obj, name)

    @property
    def new(self) -> frozenset[Any]:
        """Objects added and not yet flushed."""
        return frozenset(obj for tracker in self._trackers.values() for obj in tracker.new.values())

    @property
    def dirty(self) -> frozenset[Any]:
        """Persistent objects with changes not yet flushed."""
        return frozenset(obj for tracker in self._trackers.values() for obj in tracker.dirty_objects())

    @property
    def deleted(self) -> frozenset[Any]:
        """Objects marked for deletion and not yet flushed."""
        return frozenset(obj for tracker in self._trackers.values() for obj in tracker.deleting.values())

    def __contains__(self, obj: object) -> bool:
        holder = getattr(obj, STATE_ATTR, None)
        return holder is not None and holder.session is self

    def __len__(self) -> int:
        return sum(len(tracker.identity) + len(tracker.new) for tracker in self._trackers.values())

    def stats(self) -> SessionStats:
        """Statements by kind, rows read and written, flushes, time in the database, and sizes."""
        objects = sum(len(tracker.identity) for tracker in self._trackers.values())
        return self._stats.snapshot(objects, len(self.new), len(self.dirty), len(self.deleted))

    def __repr__(self) -> str:
        return f"<AsyncSession {self._state.value} objects={len(self)}>"
