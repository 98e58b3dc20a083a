"""Writing through relationships: assignments, collection changes, save cascade, link rows.

Every write through a relationship comes down to one operation, `move`: a child's foreign-key
field now refers to a parent (an object, or None). `move` keeps memory in step at once (the
child's references over the field, the parent's collection or one-to-one, the old parent's) and
sets the key: at once when the parent's key is known, else at the flush that inserts the parent
(the child *waits* on it: `IdentityMap.waiting`, resolved by `resolve_waiting` when a flush is
taken, which holds the child back to a later round of the same flush until the parent's key has
come back from RETURNING).

A many-to-many pair is a row of the link entity (`aiouow._links`). Objects of no session have
relationships in memory only; adding one adds the transient objects reachable through them, and
sets their keys (the save cascade, `aiouow._cascade`, which also resolves the waiting keys when a
flush is taken). Assigning between an object of a session and a transient one adds the transient
one (with its own reachable objects).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, SupportsIndex

from ._fields import MISSING
from ._mapping import describe, mapper_of
from ._relations import RelationKind, Relationship
from ._rellog import changing
from ._state import STATE_ATTR, ObjectState
from .errors import NotLoadedError, SessionError

if TYPE_CHECKING:
    from ._identity import IdentityMap
    from ._mapping import Mapper

_M2O, _O2M, _O2O, _M2M = (
    RelationKind.MANY_TO_ONE,
    RelationKind.ONE_TO_MANY,
    RelationKind.ONE_TO_ONE,
    RelationKind.MANY_TO_MANY,
)


_NOT_HELD = (ObjectState.TRANSIENT, ObjectState.DETACHED)


class RelatedList(list[Any]):
    """A loaded collection (``team.heroes``): a list, in key order as loaded, whose changes are
    written through the relationship (see ``docs/relationships.md``): ``append``, ``extend``,
    ``insert``, ``remove``, ``pop``, ``clear``, ``+=``, item and slice assignment and ``del``.
    An object already in the collection is not added twice; ``sort`` and ``reverse`` change the
    order in memory only."""

    __slots__ = ("owner", "rel")

    def __init__(self, owner: Any, rel: Relationship, items: Iterable[Any] = ()) -> None:
        list.__init__(self, items)
        self.owner = owner
        self.rel = rel

    def __reduce__(self) -> Any:  # (copies and pickles are plain lists: they write nothing)
        return (list, (list(self),))

    def _replace(self, start: int, stop: int, items: Iterable[Any]) -> None:
        """The one mutation: ``self[start:stop] = items`` (objects already elsewhere in the list
        are not added twice), then the relationship writes what left and what came in."""
        new = [*items]
        rel = self.rel
        target = rel.target
        for obj in new:
            if type(obj) is not target and not isinstance(obj, target):
                raise TypeError(f"cannot add {_name(obj)} to {rel!r}: it holds {target.__name__} objects")
        old = list.__getitem__(self, slice(start, stop)) if start != stop else []
        _check_sessions(self.owner, rel, new)
        if rel.kind is _M2M:
            from ._links import check_link  # (which builds on this module)

            check_link(rel, self.owner, adding=bool(new), removing=bool(old))
        if new or old:
            changing(self.owner, rel.name)
        if not old and not self and len({id(obj) for obj in new}) == len(new):  # filling an empty collection
            list.extend(self, new)
            if new:
                collection_changed(self, new, [])
            return
        keep = {id(obj) for i, obj in enumerate(self) if not start <= i < stop}
        unique: list[Any] = []
        for obj in new:
            if id(obj) not in keep:
                keep.add(id(obj))
                unique.append(obj)
        list.__setitem__(self, slice(start, stop), unique)
        staying = {id(obj) for obj in unique}
        removed = [obj for obj in old if id(obj) not in staying]
        before = {id(obj) for obj in old}
        added = [obj for obj in unique if id(obj) not in before]
        if removed or added:
            collection_changed(self, added, removed)

    def _bounds(self, index: SupportsIndex) -> int:
        i = index.__index__()
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("list index out of range")
        return i

    def append(self, obj: Any) -> None:
        self._replace(len(self), len(self), (obj,))

    def extend(self, objs: Iterable[Any]) -> None:
        self._replace(len(self), len(self), objs)

    def __iadd__(self, objs: Iterable[Any]) -> RelatedList:  # type: ignore[misc]
        self.extend(objs)
        return self

    def insert(self, index: SupportsIndex, obj: Any) -> None:
        i = max(0, min(len(self), index.__index__() + (len(self) if index.__index__() < 0 else 0)))
        self._replace(i, i, (obj,))

    def remove(self, obj: Any) -> None:
        i = next((i for i, o in enumerate(self) if o is obj), None)
        if i is None:
            raise ValueError(f"{_name(obj)} is not in {self.rel!r}")
        self._replace(i, i + 1, ())

    def pop(self, index: SupportsIndex = -1) -> Any:
        if not self:
            raise IndexError("pop from empty list")
        i = self._bounds(index)
        obj = list.__getitem__(self, i)
        self._replace(i, i + 1, ())
        return obj

    def clear(self) -> None:
        self._replace(0, len(self), ())

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise TypeError(f"cannot assign an extended slice of {self.rel!r}")
            self._replace(start, max(start, stop), value)
        else:
            i = self._bounds(index)
            self._replace(i, i + 1, (value,))

    def __delitem__(self, index: Any) -> None:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise TypeError(f"cannot delete an extended slice of {self.rel!r}")
            self._replace(start, max(start, stop), ())
        else:
            i = self._bounds(index)
            self._replace(i, i + 1, ())

    def __imul__(self, n: Any) -> RelatedList:  # type: ignore[misc]
        raise TypeError(f"cannot repeat {self.rel!r}: an object is in a collection once")


def _check_sessions(owner: Any, rel: Relationship, objs: list[Any]) -> None:
    """Before a collection changes: what comes in belongs to no other session than the owner's."""
    sessions = {id(found): found for obj in (owner, *objs) if (found := session_of(obj)) is not None}
    if len(sessions) > 1:
        raise SessionError(f"cannot change {rel!r} of {_name(owner)}: its objects would belong to different sessions")


def _raw_remove(items: Any, obj: Any) -> None:
    """Take ``obj`` out of a loaded collection, in memory only (the other side wrote it)."""
    if isinstance(items, RelatedList):
        for i, o in enumerate(items):
            if o is obj:
                changing(items.owner, items.rel.name)
                list.__delitem__(items, i)
                return


def _raw_add(items: Any, obj: Any) -> None:
    """Put ``obj`` in a loaded collection (if not in it), in memory only."""
    if isinstance(items, RelatedList) and not any(o is obj for o in items):
        changing(items.owner, items.rel.name)
        list.append(items, obj)


def _name(obj: Any) -> str:
    try:
        return describe(obj)
    except Exception:
        return repr(obj)


# -- sessions -----------------------------------------------------------------------------------
def session_of(obj: Any) -> IdentityMap | None:
    """The identity map of the open session that holds ``obj`` (pending, persistent or deleted)."""
    holder = getattr(obj, STATE_ATTR, None)
    session = getattr(holder, "session", None)
    if holder is None or session is None or holder.state_for(obj, session) in _NOT_HELD:
        return None
    objects: IdentityMap = session._objects
    return objects


def _join(a: Any, b: Any) -> IdentityMap | None:
    """Two objects about to be related: the session of either; a transient one joins it."""
    sa = session_of(a)
    sb = session_of(b) if b is not None else None
    if sa is not None and sb is not None and sa is not sb:
        raise SessionError(f"cannot relate {_name(a)} and {_name(b)}: they belong to different sessions")
    objects = sa or sb
    if objects is not None:
        for obj in (a, b):
            if obj is not None and getattr(obj, STATE_ATTR, None) is None:
                objects.add((obj,))
    return objects


class _Over:
    """The relationships over one foreign-key field of an entity (see `_over`)."""

    __slots__ = ("backs", "parent", "parent_key", "refs")

    def __init__(self, mapper: Mapper, field: str) -> None:
        for rel in mapper.relationships.values():
            rel.resolve()
        #: the entity's own references through the field (many-to-one)
        self.refs = [r for r in mapper.relationships.values() if r.kind is _M2O and r.local.name == field]
        #: the other side's collections and one-to-ones through it
        self.backs = [
            r
            for r in mapper.incoming
            if r.kind in (_O2M, _O2O) and r.remote.name == field and r.remote.entity is mapper.entity
        ]
        first = self.refs[0] if self.refs else None
        back = self.backs[0] if self.backs else None
        #: the parent entity, and the field of its key that the foreign key takes
        self.parent: type | None = first.target if first else back.owner if back else None
        self.parent_key: str | None = first.remote.name if first else back.local.name if back else None


def _over(mapper: Mapper, field: str) -> _Over:
    """The relationships over a foreign-key field of ``mapper`` (which holds the key): cached."""
    found = mapper.compiled.get(("relationships over", field))
    if found is None:
        found = mapper.compiled[("relationships over", field)] = _Over(mapper, field)
    over: _Over = found
    return over


def _key_of(obj: Any) -> Any:
    mapper = mapper_of(obj)
    return obj.__dict__.get(mapper.pk_name) if mapper.pk_name is not None else None


# -- the one operation --------------------------------------------------------------------------
def move(child: Any, field: str, parent: Any, skip: Any = None) -> None:
    """``child``'s foreign key ``field`` now refers to ``parent`` (None: to nothing). ``skip``:
    the collection being changed, which holds what it should already."""
    over = _over(mapper_of(child), field)
    refs = over.refs
    d = child.__dict__
    if (
        parent is not None
        and getattr(child, STATE_ATTR, None) is None
        and getattr(parent, STATE_ATTR, None) is None
        and all(d.get(ref.name, MISSING) is None for ref in refs)
        and (refs or d.get(field) is None)
    ):
        # Two objects of no session, the child related to nothing yet (a graph being built, as
        # ``Team(heroes=[Hero(...), ...])``): memory only, the key if the parent has one (skips
        # the lookups of the general case below: the graph-insert benchmark builds 11,000 objects).
        for ref in refs:
            d[ref.name] = parent
        pd = parent.__dict__
        for back in over.backs:
            if back.collection:
                if pd.get(back.name) is not skip:
                    _raw_add(pd.get(back.name), child)
            else:
                pd[back.name] = child
        key = pd.get(over.parent_key) if over.parent_key is not None else None
        if key is not None:
            d[field] = key
        return
    old: Any = MISSING
    for ref in refs:
        old = d.get(ref.name, MISSING)
        if old is not MISSING:
            break
    objects = _join(child, parent)
    if old is MISSING:
        old = None
        key = d.get(field)
        if objects is not None and key is not None and over.parent is not None:
            held = objects.by_class.get(over.parent)
            old = held.identity.get(key) if held is not None else None
    for ref in refs:
        changing(child, ref.name)
        d[ref.name] = parent
    for back in over.backs:
        if old is not None and old is not parent:
            current = old.__dict__.get(back.name, MISSING)
            if back.collection and current is not skip:
                _raw_remove(current, child)
            elif not back.collection and current is child:
                changing(old, back.name)
                old.__dict__[back.name] = None
        if parent is not None:
            pd = parent.__dict__
            if back.collection:
                if pd.get(back.name) is not skip:
                    _raw_add(pd.get(back.name), child)
            else:
                other = pd.get(back.name)
                if other is not None and other is not child:  # a one-to-one replaced: the other one lets go
                    move(other, field, None)
                changing(parent, back.name)
                pd[back.name] = child
    link_key(objects, child, field, parent, over.parent_key)


def link_key(objects: IdentityMap | None, child: Any, field: str, parent: Any, parent_key: str | None) -> None:
    """Set ``child``'s foreign key to ``parent``'s key (its field ``parent_key``), or have it
    wait for that key."""
    if objects is not None:
        stop_waiting(objects, child, field)
    if parent is None:
        key = None
    else:
        key = parent.__dict__.get(parent_key) if parent_key is not None else _key_of(parent)
        if key is None:
            if objects is not None and not _listed_by_parent(objects, child, field, parent):
                wait_for(objects, child, field, parent)
            return  # (an object of no session: adding it links it)
    set_key(child, field, key)


def wait_for(objects: IdentityMap, child: Any, field: str, parent: Any) -> None:
    """``child``'s foreign key ``field`` is to be ``parent``'s key once it is generated."""
    entry = objects.waiting.get(id(child))
    if entry is None:
        objects.waiting[id(child)] = (child, {field: parent})
    else:
        entry[1][field] = parent


def stop_waiting(objects: IdentityMap, child: Any, field: str) -> None:
    """``child``'s foreign key ``field`` waits for no parent's key any more (it was set otherwise)."""
    entry = objects.waiting.get(id(child)) if objects.waiting else None
    if entry is not None:
        entry[1].pop(field, None)


def _listed_by_parent(objects: IdentityMap, child: Any, field: str, parent: Any) -> bool:
    """Whether the child's wait for ``parent``'s key is kept by the parent: the child's reference
    over ``field`` holds the parent, whose collection of it is loaded (so lists the child: both
    sides are kept in step). Then the parent is registered in ``objects.parents``, and the flush
    finds its waiting children in that collection (`resolve_waiting`), with no entry per child
    (for the graph-insert benchmark's 10,000 heroes, the entries and their resolution measured
    about 13 ms of a 55 ms commit)."""
    for ref in _over(mapper_of(child), field).refs:
        back = ref.back
        if (
            back is not None
            and back.collection
            and child.__dict__.get(ref.name) is parent
            and isinstance(parent.__dict__.get(back.name), RelatedList)
        ):
            objects.parents[id(parent), back.name] = (parent, ref)
            return True
    return False


def unlist_waiting(objects: IdentityMap, parent: Any) -> None:
    """``parent``'s collection is about to be unloaded: its waiting children get entries of their own."""
    for key in [k for k in objects.parents if k[0] == id(parent)]:
        _, ref = objects.parents.pop(key)
        assert ref.back is not None
        for child in parent.__dict__.get(ref.back.name) or ():
            if child.__dict__.get(ref.name) is parent:
                wait_for(objects, child, ref.local.name, parent)


def set_key(obj: Any, field: str, key: Any) -> None:
    """Assign a foreign key for a relationship: recorded like any assignment, but without
    unloading what goes through it (the relationship keeps memory in step itself)."""
    d = obj.__dict__
    current = d.get(field, MISSING)
    if current is not MISSING and current == key and type(current) is type(key):
        return
    holder = getattr(obj, STATE_ATTR, None)
    if holder is not None:
        holder.record(obj, d, field, current)
    d[field] = key


# -- assignments --------------------------------------------------------------------------------
def assign(obj: Any, rel: Relationship, value: Any) -> None:
    """``obj.<rel> = value`` (`Entity.__setattr__`)."""
    rel.resolve()
    if rel.collection:
        _assign_collection(obj, rel, value)
        return
    if value is not None and not isinstance(value, rel.target):
        raise TypeError(f"cannot set {rel!r} of {_name(obj)} to {_name(value)}: expected {rel.target.__name__} or None")
    if rel.kind is _M2O:
        move(obj, rel.local.name, value)
        return
    # One-to-one: the key is on the other side.
    d = obj.__dict__
    old = d.get(rel.name, MISSING)
    if old is MISSING:
        old = _held_one_to_one(obj, rel)
    if old is not None and old is not value:
        move(old, rel.remote.name, None)
    changing(obj, rel.name)
    d[rel.name] = value
    if value is not None:
        move(value, rel.remote.name, obj)


def _held_one_to_one(obj: Any, rel: Relationship) -> Any:
    """The object the session holds whose unique key points at ``obj`` (unloaded one-to-one)."""
    objects = session_of(obj)
    key = _key_of(obj)
    held = objects.by_class.get(rel.target) if objects is not None and key is not None else None
    if held is None:
        return None
    field = rel.remote.name
    return next((o for o in held.held() if o.__dict__.get(field) == key), None)


def _assign_collection(obj: Any, rel: Relationship, value: Any) -> None:
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise TypeError(f"cannot set {rel!r} of {_name(obj)}: expected a list of {rel.target.__name__}")
    d = obj.__dict__
    current = d.get(rel.name, MISSING)
    if current is MISSING:
        raise NotLoadedError(
            f"cannot replace {rel!r} of {_name(obj)}: it is not loaded, so what it holds is not known (what "
            f"leaves it is unlinked): load it first with `await session.load(obj, {rel!r})`"
        )
    if not isinstance(current, RelatedList):  # (the generated __init__ of a new object)
        current = d[rel.name] = RelatedList(obj, rel)
    current[:] = value


# -- collections --------------------------------------------------------------------------------
def collection_changed(items: RelatedList, added: list[Any], removed: list[Any]) -> None:
    """Objects came into and left a collection (already changed in memory): write it through."""
    owner, rel = items.owner, items.rel
    if rel.kind is _O2M:
        field = rel.remote.name
        for obj in removed:
            move(obj, field, None, skip=items)
            if rel.spec.delete_orphan:
                objects = session_of(obj)
                if objects is not None:
                    objects.delete(obj)
        if added and getattr(owner, STATE_ATTR, None) is None:
            added = _new_children(items, added, field)
        for obj in added:
            move(obj, field, owner, skip=items)
        return
    from ._links import link, unlink  # (which build on this module)

    back = rel.back
    for obj in removed:
        if back is not None:
            _raw_remove(obj.__dict__.get(back.name), owner)
        unlink(session_of(owner) or session_of(obj), rel, owner, obj)
    for obj in added:
        if back is not None:
            _raw_add(obj.__dict__.get(back.name), owner)
        link(_join(owner, obj), rel, owner, obj)


def _new_children(items: RelatedList, added: list[Any], field: str) -> list[Any]:
    """Children of no session, related to nothing yet, put in the collection of a parent of no
    session (a graph being built: ``Team(heroes=[Hero(...), ...])``): their references and keys
    are set here in one pass; returns the others, for `move`. (Skips `move`'s lookups per child:
    building the graph-insert benchmark's 1,000 teams of 10 heroes took 33 µs per team with
    `move` for each hero.)"""
    owner, rel = items.owner, items.rel
    over = _over(mapper_of(rel.target), field)
    if len(over.backs) != 1:  # (other collections go through the same key: `move` keeps them)
        return added
    names = [ref.name for ref in over.refs]
    key = owner.__dict__.get(rel.local.name)
    others: list[Any] = []
    for child in added:
        d = child.__dict__
        if type(child) is not rel.target or getattr(child, STATE_ATTR, None) is not None:
            others.append(child)
            continue
        for name in names:
            if d.get(name, MISSING) is not None:  # (related already: moved from elsewhere)
                others.append(child)
                break
        else:
            for name in names:
                d[name] = owner
            if key is not None:
                d[field] = key
    return others
