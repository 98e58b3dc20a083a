"""Lifecycle enums (`ObjectState`, `SessionState`) and per-object bookkeeping (identity key, originals)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._mapping import Mapper

#: The slot of `aiouow.Entity` holding an object's state (a slot, not a ``__dict__`` entry: a sixth
#: key would double the size of a five-field object's dict).
STATE_ATTR = "_aiouow_state"

_set_attr = object.__setattr__
_new = object.__new__


class ObjectState(enum.Enum):
    """Where an object stands relative to a session.

    - ``TRANSIENT``: not in a session and not in the database.
    - ``PENDING``: added to the session, not flushed yet.
    - ``PERSISTENT``: in the session's identity map, backed by a row.
    - ``DELETED``: marked for deletion (or deleted by a flush) in the current transaction.
    - ``DETACHED``: backed by a row but not in this session (closed, expunged, or another session's).
    """

    TRANSIENT = "transient"
    PENDING = "pending"
    PERSISTENT = "persistent"
    DELETED = "deleted"
    DETACHED = "detached"


_PERSISTENT = ObjectState.PERSISTENT


class SessionState(enum.Enum):
    """The lifecycle of a session.

    ``IDLE``: no transaction open (no connection held). ``ACTIVE``: a transaction is open on a
    connection. ``FAILED``: a statement (of a flush, a commit, a query) failed or was interrupted
    and the database transaction was rolled back; only ``rollback()`` or ``close()`` are accepted.
    ``CLOSED``: finished for good.
    """

    IDLE = "idle"
    ACTIVE = "active"
    FAILED = "failed"
    CLOSED = "closed"


class InstanceState:
    """What aiouow knows about one entity object.

    ``changed`` maps the names of fields assigned since the last load or flush to their value
    at that time: dirty checking looks at those fields only, so its cost follows the objects
    changed, not the objects loaded. JSON fields, which can change in place, are compared
    against ``json_snap`` (their JSON text at the last load or flush) instead.
    """

    __slots__ = ("changed", "json_snap", "key", "listener", "mapper", "obj", "owner", "status")

    obj: Any
    mapper: Mapper
    status: ObjectState
    key: Any  # identity key while backed by a row
    owner: object | None  # the session holding the object, if any
    changed: dict[str, Any]
    json_snap: dict[str, str] | None
    listener: Callable[[InstanceState], None] | None  # called on the first recorded change


def make_state(
    obj: Any,
    mapper: Mapper,
    status: ObjectState,
    key: Any = None,
    owner: object | None = None,
    listener: Callable[[InstanceState], None] | None = None,
) -> InstanceState:
    """A new `InstanceState` (a function, not ``__init__``: calling a class costs more, and states
    are made per object on the hot paths of add(), a first assignment and delete())."""
    st = _new(InstanceState)
    st.obj = obj
    st.mapper = mapper
    st.status = status
    st.key = key
    st.owner = owner
    st.changed = {}
    st.json_snap = None
    st.listener = listener
    return st


#: The fields a detached stand-in records inline: none.
_NO_FIELDS: frozenset[str] = frozenset()


class Loaded:
    """The shared stand-in state of every object one session loaded for one entity, until
    something gives the object a state of its own.

    Loading then costs no per-object bookkeeping, and neither does changing or deleting such an
    object: the originals of its assigned fields are kept here in ``changes``, by identity key,
    until a flush takes them, and an unchanged object marked for deletion is kept in ``deleted``
    until its DELETE is flushed. The first time anything needs the object's own state (a lifecycle
    change other than a delete, an assignment to its key or after its delete), ``materialize``
    makes it, taking the object's recorded changes or deletion along. Closing the session
    detaches every object still held here at once by clearing ``owner``.
    """

    __slots__ = (
        "changes",
        "deleted",
        "deleting",
        "key_field",
        "listener",
        "mapper",
        "owner",
        "pk",
        "plain",
        "removed",
        "table",
    )

    def __init__(
        self,
        mapper: Mapper,
        owner: object,
        listener: Callable[[InstanceState], None],
        table: dict[Any, Any],
        deleting: dict[InstanceState, None],
    ) -> None:
        self.mapper = mapper
        self.owner: object | None = owner
        self.listener: Callable[[InstanceState], None] | None = listener
        #: The session's identity map of the entity: ``table[key]`` is the object of a key in ``changes``.
        self.table = table
        #: Identity key -> the original of each field assigned since the last load or flush.
        self.changes: dict[Any, dict[str, Any]] = {}
        #: Identity key -> object, for objects marked for deletion and not flushed yet ...
        self.deleted: dict[Any, Any] = {}
        #: ... and for those whose DELETE a flush of the open transaction ran.
        self.removed: dict[Any, Any] = {}
        #: The session's states marked for deletion: where a materialized deleted object goes.
        self.deleting = deleting
        #: The key field of a single-column key; None (composite keys) sends every assignment
        #: and delete through ``materialize``.
        self.pk: str | None = mapper.pk_name
        #: The fields whose assignment ``Entity.__setattr__`` records here inline (while nothing
        #: is deleted): every field but the key and version fields, none with a composite key or
        #: once the session is closed.
        self.plain: frozenset[str] = mapper.plain
        self.key_field: str = self.pk or ""

    def materialize(self, obj: Any, status: ObjectState = _PERSISTENT) -> InstanceState:
        """The object's own state, replacing this stand-in (``status`` while the session owns it)."""
        owner = self.owner
        mapper = self.mapper
        pk = self.pk  # a single-column key: read it directly
        key = obj.__dict__[pk] if pk is not None else mapper.key_of_values(obj.__dict__)
        pending_delete = False
        if self.deleted or self.removed:
            if self.deleted.get(key) is obj:
                del self.deleted[key]
                status = ObjectState.DELETED
                pending_delete = True
            elif self.removed.get(key) is obj:
                del self.removed[key]
                status = ObjectState.DELETED
        st = make_state(obj, mapper, status if owner is not None else ObjectState.DETACHED, key, owner, self.listener)
        _set_attr(obj, STATE_ATTR, st)
        if pending_delete and owner is not None:
            self.deleting[st] = None
        if self.changes:
            changed = self.changes.pop(key, None)
            if changed is not None:
                st.changed = changed
                if st.listener is not None:
                    st.listener(st)
        return st

    def change(self, obj: Any, name: str, original: Any) -> InstanceState | None:
        """Record an assignment to field ``name`` of ``obj`` (which held ``original``), before it
        is made. Returns the object's new state when the change is for that state to record
        instead: with a composite key, in a closed session, for a change of the key or the
        version (which a flush refuses, naming the field), or after the object was deleted."""
        pk = self.pk
        if pk is None or self.owner is None or name in self.mapper.immutable:
            return self.materialize(obj)
        key = obj.__dict__[pk]
        if (self.deleted or self.removed) and (key in self.deleted or key in self.removed):
            return self.materialize(obj)  # a deleted object keeps its changes in its own state
        changed = self.changes.get(key)
        if changed is None:
            self.changes[key] = {name: original}
        elif name not in changed:
            changed[name] = original
        return None

    def recorded(self, obj: Any) -> dict[str, Any]:
        """The originals recorded here for ``obj``'s assigned fields (read only)."""
        if not self.changes or self.pk is None:
            return {}
        return self.changes.get(obj.__dict__[self.pk], {})

    def is_deleted(self, obj: Any, *, flushed: bool = True) -> bool:
        """Whether ``obj`` is marked for deletion here (or, with ``flushed``, deleted by a flush)."""
        if self.pk is None or not (self.deleted or (flushed and self.removed)):
            return False
        key = obj.__dict__[self.pk]
        return self.deleted.get(key) is obj or (flushed and self.removed.get(key) is obj)

    def delete(self, obj: Any) -> bool:
        """Mark ``obj`` for deletion here (nothing to do if it is already); False when it needs its
        own state for that instead (a composite key, or recorded changes, which a rollback must
        put back)."""
        pk = self.pk
        if pk is None:
            return False
        key = obj.__dict__[pk]
        if self.changes and key in self.changes:
            return False
        if not self.removed or self.removed.get(key) is not obj:
            self.deleted[key] = obj
        return True

    def detach(self) -> None:
        self.owner = None
        self.listener = None
        self.plain = _NO_FIELDS
        if self.changes or self.deleted or self.removed:  # (empty after a commit)
            self.changes = {}
            self.deleted = {}
            self.removed = {}


class Pending:
    """The shared stand-in state of every object added to one session for one entity and not
    flushed yet, until something gives the object a state of its own.

    Adding then costs no per-object state: the session keeps the objects themselves, and their
    INSERT takes their values as they are at the flush. Only an assignment made while that
    INSERT is in flight is recorded (in ``inflight``, by ``id`` of the object), so that the next
    flush sends it as an UPDATE. After the INSERT the object is held by the session's `Loaded`
    stand-in, like a loaded one.
    """

    __slots__ = ("inflight", "listener", "mapper", "owner")

    def __init__(self, mapper: Mapper, owner: object, listener: Callable[[InstanceState], None]) -> None:
        self.mapper = mapper
        self.owner: object | None = owner
        self.listener: Callable[[InstanceState], None] | None = listener
        #: While a flush inserting these objects is in flight: ``id(obj)`` -> the original of each
        #: field assigned since the flush took the values (None when no flush is in flight).
        self.inflight: dict[int, dict[str, Any]] | None = None

    def materialize(self, obj: Any) -> InstanceState:
        """The object's own state (pending while the session owns it), replacing this stand-in."""
        owner = self.owner
        status = ObjectState.PENDING if owner is not None else ObjectState.TRANSIENT
        st = make_state(obj, self.mapper, status, None, owner, self.listener if owner is not None else None)
        _set_attr(obj, STATE_ATTR, st)
        if self.inflight:
            changed = self.inflight.pop(id(obj), None)
            if changed is not None:
                st.changed = changed
                if st.listener is not None:
                    st.listener(st)
        return st

    def change(self, obj: Any, name: str, original: Any) -> None:
        """Record an assignment to field ``name`` of ``obj`` (which held ``original``) if a flush
        inserting it is in flight; before that, the INSERT will take the new value anyway."""
        inflight = self.inflight
        if inflight is not None:
            changed = inflight.get(id(obj))
            if changed is None:
                inflight[id(obj)] = {name: original}
            elif name not in changed:
                changed[name] = original

    def detach(self) -> None:
        self.owner = None
        self.listener = None
        self.inflight = None


def state_of(obj: Any) -> InstanceState | None:
    """The object's state, or None for an object no session has seen."""
    st: InstanceState | Loaded | Pending | None = getattr(obj, STATE_ATTR, None)
    if st is None or type(st) is InstanceState:
        return st
    assert isinstance(st, Loaded | Pending)
    return st.materialize(obj)
