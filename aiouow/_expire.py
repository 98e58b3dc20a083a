"""Expiring objects: the next statement that loads their rows takes the database's values.

``s.expire(obj, *fields)`` and ``s.expire_all()`` send nothing: an expired field keeps its value
(reading it is no IO) until a statement loads the row: ``get()`` of an expired object asks the
database instead of answering from the identity map, and a query, a batched relationship load or a
refresh that loads the row gives the expired fields the row's values. Expiring a field forgets its
unflushed change (the database's value is wanted, not the one in memory). Each tracker keeps its
expired keys in ``EntityTracker.expired`` (identity key -> field names, or None for all).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._changes import original_of
from ._mapping import describe, mapper_of
from ._state import STATE_ATTR
from ._types import dump_json
from .errors import DetachedInstanceError, QueryError

if TYPE_CHECKING:
    from ._identity import IdentityMap
    from ._state import SessionLifecycle
    from ._tracking import EntityTracker
    from .dialects._base import Dialect, Row


class SessionExpiry:
    """``expire`` and ``expire_all``, which `AsyncSession` inherits."""

    __slots__ = ()

    if TYPE_CHECKING:  # what they build on, defined by AsyncSession
        _objects: IdentityMap
        _life: SessionLifecycle

    def expire(self, obj: Any, *fields: str) -> None:
        """Mark fields of a persistent object (all of them when none are named) to be read from the
        database by the next statement that loads its row; their unflushed changes are forgotten.
        Nothing is sent now, and reading an expired field still returns its current value."""
        self._life.check("expire")
        mapper = mapper_of(obj)
        holder = getattr(obj, STATE_ATTR, None)
        if holder is None or holder.session is not self or not holder.holds(obj) or id(obj) in holder.new:
            raise DetachedInstanceError(f"cannot expire {describe(obj)}: it is not a persistent object of this session")
        for name in fields:
            column = mapper.column(name, purpose="expire a field")
            if column.name in mapper.immutable:
                raise QueryError(f"cannot expire {mapper.name}.{name}: a key or version field is what names the row")
        expire_keys(holder, [holder.key_of(obj)], frozenset(fields) if fields else None)

    def expire_all(self) -> None:
        """`expire` every persistent object of the session, every field."""
        self._life.check("expire_all")
        for tracker in self._objects:
            expire_keys(
                tracker, [k for k in tracker.identity if not (tracker.deleting and k in tracker.deleting)], None
            )


def expire_keys(tracker: EntityTracker, keys: list[Any], names: frozenset[str] | None) -> None:
    """Expire fields ``names`` (None: every field) of the objects held for ``keys``. Their unflushed
    changes are forgotten, and their originals kept with the expiry, for a rollback to put back."""
    mapper = tracker.mapper
    for key in keys:
        obj = tracker.identity[key]
        before, originals = tracker.expired.get(key, (frozenset(), {}))
        expiring = [n for n in mapper.names if n not in mapper.immutable and (names is None or n in names)]
        changed = tracker.changes.get(key) or {}
        json_text = tracker.json_text.get(key)
        for name in expiring:
            if name in originals:
                continue
            original = original_of(mapper, obj, name, changed, json_text)
            if original is not obj.__dict__[name] or name in changed:
                originals[name] = original
        for name in expiring:  # (the database's values are wanted, not the ones assigned)
            changed.pop(name, None)
        if key in tracker.changes and not changed:
            del tracker.changes[key]
        if json_text is not None:  # a JSON value changed in place is not a change to write either
            for column in mapper.json_columns:
                if column.name in expiring:
                    json_text[column.name] = dump_json(obj.__dict__[column.name])
        tracker.expired[key] = (None if names is None or before is None else before | names, originals)


#: identity key -> (the expired field names, None for all; the originals of the changes expiring forgot)
Expiries = dict[Any, tuple[frozenset[str] | None, dict[str, Any]]]


def copy_expired(expired: Expiries) -> Expiries:
    """A copy that later expiries do not change (what a savepoint keeps)."""
    return {key: (names, dict(originals)) for key, (names, originals) in expired.items()}


def restore_expired(tracker: EntityTracker, at_savepoint: Expiries | None) -> None:
    """A rollback: the changes that expiring forgot are undone too. Rolled back to the whole
    transaction (``at_savepoint`` None), the expiry itself stays; to a savepoint, the expiries
    are again those it kept, and only what was forgotten since is undone."""
    for key, (names, originals) in tracker.expired.items():
        obj = tracker.identity.get(key)
        if not originals or obj is None:
            continue
        kept = at_savepoint[key][1] if at_savepoint and key in at_savepoint else None
        if kept is None:
            obj.__dict__.update(originals)
        else:  # (what it held at the savepoint, where a change was forgotten before it)
            obj.__dict__.update({name: value for name, value in originals.items() if name not in kept})
        if at_savepoint is None:
            tracker.expired[key] = (names, {})
    if at_savepoint is not None:
        tracker.expired = copy_expired(at_savepoint)


def take_expired(tracker: EntityTracker, dialect: Dialect, objs: Sequence[Any], rows: Sequence[Row]) -> None:
    """Rows just loaded: the expired fields of their objects take the rows' values (called by
    `aiouow._loading.load_objects` only while the tracker has expired keys)."""
    from ._loading import row_values  # (loading builds on this module)

    mapper = tracker.mapper
    values = row_values(mapper, dialect)
    expired = tracker.expired
    for obj, row in zip(objs, rows, strict=True):
        key = tracker.key_of(obj)
        if key not in expired:
            continue
        names, _ = expired.pop(key)
        d = obj.__dict__
        changed = tracker.changes.get(key)
        if changed:  # (assigned since it was expired: the row's value wins, as for the others)
            for name in list(changed):
                if (names is None or name in names) and name not in mapper.immutable:
                    del changed[name]
            if not changed:
                del tracker.changes[key]
        for name, value in zip(mapper.names, values(row), strict=True):
            if (names is None or name in names) and d.get(name) != value:
                d[name] = value
                if name in tracker.watched:  # (a foreign key moved: what goes through it is unloaded)
                    tracker.key_assigned(obj, name)
        if mapper.json_columns:
            tracker.json_text[key] = tracker.take_json_text(obj)
