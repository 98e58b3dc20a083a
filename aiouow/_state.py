"""Per-object bookkeeping: lifecycle state, identity key and the originals of changed fields."""

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


def set_raw_state(obj: Any, st: InstanceState | Loaded | None) -> None:
    _set_attr(obj, STATE_ATTR, st)


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


class Loaded:
    """The shared stand-in state of every object one session loaded for one entity, untouched since.

    Loading then costs no per-object bookkeeping: the first time anything needs an object's own
    state (an assignment, an inspection, a lifecycle change), ``materialize`` makes it. Closing
    the session detaches every untouched object at once by clearing ``owner`` here.
    """

    __slots__ = ("listener", "mapper", "owner")

    def __init__(self, mapper: Mapper, owner: object, listener: Callable[[InstanceState], None]) -> None:
        self.mapper = mapper
        self.owner: object | None = owner
        self.listener: Callable[[InstanceState], None] | None = listener

    def materialize(self, obj: Any, status: ObjectState = _PERSISTENT) -> InstanceState:
        """The object's own state, replacing this stand-in (``status`` while the session owns it)."""
        owner = self.owner
        mapper = self.mapper
        pk = mapper.pk_name  # a single-column key: read it directly
        st = make_state(
            obj,
            mapper,
            status if owner is not None else ObjectState.DETACHED,
            obj.__dict__[pk] if pk is not None else mapper.key_of_values(obj.__dict__),
            owner,
            self.listener,
        )
        _set_attr(obj, STATE_ATTR, st)
        return st

    def first_change(self, obj: Any, name: str, original: Any) -> None:
        """The first assignment to an untouched object (of field ``name``, which held ``original``):
        the object gets its own state, recording the change."""
        st = self.materialize(obj)
        st.changed[name] = original
        if st.listener is not None:
            st.listener(st)

    def detach(self) -> None:
        self.owner = None
        self.listener = None


def state_of(obj: Any) -> InstanceState | None:
    """The object's state, or None for an object no session has seen."""
    st: InstanceState | Loaded | None = getattr(obj, STATE_ATTR, None)
    if st is None or type(st) is InstanceState:
        return st
    assert isinstance(st, Loaded)
    return st.materialize(obj)
