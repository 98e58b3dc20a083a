"""The reads of a session that go beyond `get` and `scalars`: relationship loads, streams, raw SQL,
refresh. `AsyncSession` inherits them; each checks the session, takes its lock and delegates, as
the session's own methods do."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from . import _graph
from ._mapping import describe
from ._query import Select
from ._sqltext import bind_named
from .errors import NotFoundError, QueryError, SessionError, with_details

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable

    from ._identity import IdentityMap
    from ._mapping import Mapper
    from ._state import SessionLifecycle
    from ._tracking import EntityTracker
    from ._transaction import Transaction
    from ._txoptions import TransactionOptions
    from .dialects._base import Dialect, Row

E = TypeVar("E")
T = TypeVar("T")


class SessionReads:
    """``load``, ``is_loaded``, ``stream``, ``execute`` and ``refresh``, which `AsyncSession` inherits."""

    __slots__ = ()

    if TYPE_CHECKING:  # what they build on, defined by AsyncSession
        _objects: IdentityMap
        _dialect: Dialect
        _life: SessionLifecycle
        _lock: asyncio.Lock
        _options: TransactionOptions
        _tx: Transaction | None

        async def _ready_to_read(self, op: str) -> None: ...
        async def _transaction(self, *, writing: bool = True) -> Transaction: ...
        async def _guarded(self, awaitable: Awaitable[T]) -> T: ...
        async def _fetch(self, sql: str, params: Sequence[Any], *, write: bool) -> list[Row]: ...
        async def _fetch_by_key(self, mapper: Mapper, key: Any, *, for_update: bool) -> list[Row]: ...
        def _load(self, mapper: Mapper, rows: Sequence[Row], *, refresh: bool) -> list[Any]: ...
        def _own(self, obj: Any, op: str, *, allow_pending: bool = False) -> EntityTracker: ...

    async def load(self, objs: Any, *paths: Any) -> None:
        """Load relationships of one object or of a list of objects of one entity: ``paths`` are
        relationships (``Hero.team``) or tuples of them, one per level (``(Team.heroes, Hero.powers)``).

        One statement per relationship and level (chunked), never one per object; for one object,
        the objects that came from the same statement and lack the relationship are loaded too
        (peer batching). Rows go through the identity map; pending changes are flushed first."""
        many = list(objs) if isinstance(objs, (list, tuple, set, frozenset)) else [objs]
        if not many:
            return
        owned = _graph.owned(self._objects, many)
        checked = _graph.paths_of(type(owned[0]), paths)
        self._life.enter("load")
        async with self._lock:
            await self._ready_to_read("load")
            await _graph.load_paths(self._objects, self._dialect, self._fetch_rows, owned, checked)

    def is_loaded(self, obj: Any, relationship: Any) -> bool:
        """Whether a relationship of the object is loaded (reading it will not raise `NotLoadedError`)."""
        (path,) = _graph.paths_of(type(obj), [relationship])
        return _graph.is_loaded(obj, path[0])

    async def _fetch_rows(self, sql: str, params: Sequence[Any]) -> list[Row]:
        return await self._fetch(sql, params, write=False)

    async def stream(self, stmt: Select[E], *, batch_size: int = 500) -> AsyncIterator[E]:
        """Iterate a statement's objects, fetching ``batch_size`` rows at a time.

        Other operations of the session may run between batches; ending the transaction
        (commit, rollback) ends the stream with a `SessionError`.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise QueryError(f"cannot stream: batch_size must be a positive int, got {batch_size!r}")
        sql, params = self._dialect.compile_select(stmt)
        self._life.enter("stream")
        async with self._lock:
            await self._ready_to_read("stream")
            tx = await self._transaction(writing=stmt.locking)
            batches = await self._guarded(tx.stream(sql, params, batch_size, write=stmt.locking))
        try:
            while True:
                async with self._lock:
                    self._life.check("stream")
                    if self._tx is not tx:
                        moved = tx.replica is not None and self._tx is not None
                        raise SessionError(
                            "cannot continue the stream: the transaction it ran in has ended"
                            + (
                                " (it ran on a read replica, and a write moved the session's transaction to "
                                "the primary: write after the stream, or stream with for_update())"
                                if moved
                                else ""
                            )
                        )
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

    async def execute(self, sql: str, *params: Any, **named: Any) -> list[dict[str, Any]]:
        """Run raw SQL, with the driver's own placeholders (``?`` on SQLite, ``$1`` on PostgreSQL)
        and positional ``params``, or with ``:name`` placeholders and ``named`` values, which run
        the same on every dialect. Pending changes are flushed first; rows come back as dicts.
        """
        if not isinstance(sql, str):
            raise QueryError(f"cannot execute {type(sql).__name__} {sql!r:.60}: expected the SQL as a str")
        if named:
            if params:
                raise QueryError("cannot execute: pass positional parameters or :name ones, not both")
            sql, bound = bind_named(sql, named, self._dialect.placeholder)
            params = tuple(bound)
        self._options.check_raw(sql, self._dialect.may_write_in_read_only(sql))
        self._life.enter("execute")
        async with self._lock:
            await self._ready_to_read("execute")
            tx = await self._transaction(writing=not self._options.read_only)  # (raw SQL may write)
            return await self._guarded(tx.execute_raw(sql, params))

    async def refresh(self, obj: Any) -> None:
        """Read the object's row again, discarding its unflushed changes."""
        tracker = self._own(obj, "refresh")
        self._life.enter("refresh")
        async with self._lock:
            self._life.check("refresh")
            mapper = tracker.mapper
            if id(obj) in tracker.removed:
                # Its DELETE was flushed: its row is gone for this transaction, even where a row
                # switch gave the key's row to another object.
                raise with_details(
                    NotFoundError(f"cannot refresh {describe(obj)}: its row was deleted by a flush"), entity=mapper.name
                )
            rows = await self._fetch_by_key(mapper, tracker.key_of(obj), for_update=False)
            if not rows:  # another transaction deleted the row: the object leaves the session
                tracker.forget(obj)
                raise with_details(
                    NotFoundError(f"cannot refresh {describe(obj)}: its row no longer exists"), entity=mapper.name
                )
            tracker.discard_changes(obj)
            self._load(mapper, rows, refresh=True)
