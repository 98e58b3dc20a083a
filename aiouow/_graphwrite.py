"""Writing through relationships: assignments, collection changes, save cascade, link rows.

Every write through a relationship comes down to one operation, `move`: a child's foreign-key
field now refers to a parent (an object, or None). `move` keeps memory in step at once (the
child's references over the field, the parent's collection or one-to-one, the old parent's) and
sets the key: at once when the parent's key is known, else at the flush that inserts the parent
(the child *waits* on it: `IdentityMap.waiting`, resolved by `resolve_waiting` when a flush is
taken, which holds the child back to a later round of the same flush until the parent's key has
come back from RETURNING).

A many-to-many pair is a row of the link entity: `link` adds a link object to the session (its
keys waiting on pending sides), `unlink` deletes the link row (through the held link object, or
a *stub*: an object standing for a link row that was never loaded, holding only its key, put
out of the session again when the transaction ends).

Objects of no session have relationships in memory only; adding one adds the transient objects
reachable through them (`cascade_new`, which also sets their keys). Assigning between an object
of a session and a transient one adds the transient one (with its own reachable objects).
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
            _check_link(rel, self.owner, adding=bool(new), removing=bool(old))
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


def loaded_list(owner: Any, rel: Relationship, items: Iterable[Any] = ()) -> RelatedList:
    """A collection as loaded (or empty, for a new object)."""
    return RelatedList(owner, rel, items)


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
    waiting = objects.waiting if objects is not None else None
    if waiting:
        entry = waiting.get(id(child))
        if entry is not None:
            entry[1].pop(field, None)
    if parent is None:
        key = None
    else:
        key = parent.__dict__.get(parent_key) if parent_key is not None else _key_of(parent)
        if key is None:
            if waiting is not None and not _listed_by_parent(objects, child, field, parent):  # type: ignore[arg-type]
                entry = waiting.get(id(child))
                if entry is None:
                    waiting[id(child)] = (child, {field: parent})
                else:
                    entry[1][field] = parent
            return  # (an object of no session: adding it links it)
    set_key(child, field, key)


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
        local = ref.local.name
        for child in parent.__dict__.get(ref.back.name) or ():
            if child.__dict__.get(ref.name) is parent:
                entry = objects.waiting.get(id(child))
                if entry is None:
                    objects.waiting[id(child)] = (child, {local: parent})
                else:
                    entry[1][local] = parent


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


def _pair(rel: Relationship, owner: Any, target: Any) -> tuple[Any, ...]:
    """The link row relating two objects, however it is reached (from either side)."""
    assert rel.link_local is not None
    assert rel.link_remote is not None
    ends = sorted(((rel.link_local.name, id(owner)), (rel.link_remote.name, id(target))))
    return (rel.link, *ends)


def _link_values(rel: Relationship, owner: Any, target: Any) -> tuple[str, str, Any, Any]:
    assert rel.link_local is not None
    assert rel.link_remote is not None
    return rel.link_local.name, rel.link_remote.name, _key_of(owner), _key_of(target)


def _link_key(link: Mapper, values: dict[str, Any]) -> Any:
    """The identity key of a link row from its two foreign keys, when they are its primary key."""
    if {c.name for c in link.pk} != set(values):
        return MISSING
    return link.key_of_values(values)


def _check_link(rel: Relationship, owner: Any, *, adding: bool, removing: bool) -> None:
    """Before a many-to-many collection changes: the link rows can be written (else nothing changes)."""
    link_mapper = rel.link
    assert link_mapper is not None
    assert rel.link_local is not None
    assert rel.link_remote is not None
    ends = {rel.link_local.name, rel.link_remote.name}
    where = f"cannot change {rel!r} of {_name(owner)}"
    if adding:
        needed = [
            c.name
            for c in link_mapper.columns
            if c.name not in ends and c.init and c.default is MISSING and c.default_factory is None
        ]
        if needed:
            raise SessionError(
                f"{where}: the link entity {link_mapper.name} needs values besides its keys ({', '.join(needed)}); "
                f"add {link_mapper.name} objects yourself"
            )
    if removing and {c.name for c in link_mapper.pk} != ends:
        raise SessionError(
            f"{where}: the key of {link_mapper.name} is not ({', '.join(sorted(ends))}), so a link row cannot be found "
            f"by its two ends; delete the {link_mapper.name} object instead"
        )
    if removing and link_mapper.version is not None:
        raise SessionError(
            f"{where}: {link_mapper.name} has a version field, so a link row must be loaded to be deleted; "
            f"delete the {link_mapper.name} object instead"
        )


def link(objects: IdentityMap | None, rel: Relationship, owner: Any, target: Any) -> None:
    """Relate ``owner`` and ``target`` through a many-to-many: a link row at the next flush."""
    if objects is None:
        return  # (objects of no session: adding them links them)
    link_mapper = rel.link
    assert link_mapper is not None
    pair = _pair(rel, owner, target)
    present = objects.links.get(pair)
    tracker = objects.tracker(link_mapper)
    if present is not None and tracker.holds(present):
        tracker.undelete(present)
        return
    fa, fb, ka, kb = _link_values(rel, owner, target)
    if ka is not None and kb is not None:
        key = _link_key(link_mapper, {fa: ka, fb: kb})
        held = tracker.identity.get(key) if key is not MISSING else None
        if held is not None:
            if held in objects.stubs:  # (a row about to be unlinked: it stays, and needs no object)
                objects.stubs.remove(held)
                tracker.forget(held)
            else:
                tracker.undelete(held)
            return
    row = link_mapper.entity(**{fa: ka, fb: kb})  # (its other fields have defaults: `_check_link`)
    rd = row.__dict__
    for field, end in ((fa, owner), (fb, target)):
        for ref in _over(link_mapper, field).refs:
            rd[ref.name] = end
    tracker.add_new(row)
    objects.links[pair] = row
    for field, end, key in ((fa, owner, ka), (fb, target, kb)):
        if key is None:
            objects.waiting.setdefault(id(row), (row, {}))[1][field] = end


def unlink(objects: IdentityMap | None, rel: Relationship, owner: Any, target: Any) -> None:
    """Unrelate two objects of a many-to-many: their link row is deleted at the next flush."""
    if objects is None:
        return
    link_mapper = rel.link
    assert link_mapper is not None
    tracker = objects.tracker(link_mapper)
    present = objects.links.pop(_pair(rel, owner, target), None)
    if present is not None and tracker.holds(present):
        objects.delete(present)
        return
    fa, fb, ka, kb = _link_values(rel, owner, target)
    if ka is None or kb is None:
        return  # one side has no row yet: no link row either
    key = _link_key(link_mapper, {fa: ka, fb: kb})  # (the pair is its primary key: `_check_link`)
    held = tracker.identity.get(key)
    if held is not None:
        if tracker.holds(held):
            tracker.mark_deleted(held)
        return
    stub: Any = object.__new__(link_mapper.entity)
    object.__setattr__(stub, STATE_ATTR, None)
    stub.__dict__.update({c.name: None for c in link_mapper.columns})
    stub.__dict__.update({fa: ka, fb: kb})
    tracker.adopt(stub, key, {}, None)
    tracker.mark_deleted(stub)
    objects.stubs.append(stub)


# -- adding -------------------------------------------------------------------------------------
def cascade_new(objects: IdentityMap, obj: Any) -> None:
    """A transient object was added: the transient objects reachable through its loaded
    relationships are added too, and every key between them is set (or waits)."""
    session = objects.session
    work = [obj]
    while work:
        current = work.pop()
        d = current.__dict__
        for rel in mapper_of(current).relationships.values():
            value = d.get(rel.name)
            if value is None:
                continue
            rel.resolve()
            related = value if rel.collection else (value,)
            target = rel.target
            tracker = None
            # The target's other relationships: a new object whose others are all empty (its
            # reference back holds `current`) needs no visit of its own. (Visiting each of the
            # graph-insert benchmark's 10,000 heroes measured about 1 µs each.)
            others = _others_of(rel)
            for other in related:
                holder = getattr(other, STATE_ATTR, None)
                if holder is None:
                    if type(other) is target:  # (one tracker lookup for the collection)
                        if tracker is None:
                            tracker = objects.tracker(mapper_of(target))
                        tracker.add_new(other)
                        od = other.__dict__
                        if not others or not any(od.get(name) for name in others):
                            if rel.back is not None and od.get(rel.back.name) is current:
                                continue  # (linked from this side, below)
                            work.append(other)
                            continue
                    else:
                        objects.add_new_alone(other)
                    work.append(other)
                elif holder.session is not session and session_of(other) is not None:
                    raise SessionError(
                        f"cannot add {_name(current)}: {rel!r} holds {_name(other)}, which belongs to another session"
                    )
            kind = rel.kind
            if kind is _M2O:
                link_key(objects, current, rel.local.name, value, rel.remote.name)
            elif kind is _O2O:
                link_key(objects, value, rel.remote.name, current, rel.local.name)
            elif kind is _O2M:
                back = rel.back
                if not value:
                    pass
                elif back is not None and d.get(rel.local.name) is None and isinstance(value, RelatedList):
                    # The children wait for this new parent's key: its collection lists them.
                    objects.parents[id(current), rel.name] = (current, back)
                    for child in value:
                        if child.__dict__.get(back.name) is not current:  # (not in step: linked alone)
                            link_key(objects, child, rel.remote.name, current, rel.local.name)
                else:
                    for child in value:
                        link_key(objects, child, rel.remote.name, current, rel.local.name)
            else:
                for other in value:
                    link(objects, rel, current, other)


def _others_of(rel: Relationship) -> tuple[str, ...] | None:
    """The relationships of ``rel``'s target other than ``rel``'s other side (cached)."""
    target = mapper_of(rel.target)
    key = ("other relationships than", rel.name, rel.owner)
    found = target.compiled.get(key)
    if found is None:
        back = rel.back.name if rel.back is not None else None
        found = target.compiled[key] = tuple(name for name in target.relationships if name != back)
    others: tuple[str, ...] = found
    return others


# -- flushing -----------------------------------------------------------------------------------
def resolve_waiting(objects: IdentityMap) -> set[int]:
    """When a flush is taken: every waiting key whose parent has one now is set; returns the
    ``id`` of the pending objects that must wait for a later round of the flush (their parents'
    INSERTs come first; what is still waiting afterwards stays in ``objects.waiting`` and
    ``objects.parents``, so that the flush knows to run another round). A cycle of such objects is
    a `SessionError`, before anything is sent."""
    waiting = objects.waiting
    session = objects.session
    keys: dict[int, Any] = {}  # parent id -> its key (None: not generated yet), found once
    held: set[int] = set()
    edges: list[tuple[Iterable[Any], Any]] = []  # (objects held back, the parent they wait for)
    if objects.parents:
        _resolve_listed(objects, held, edges)
    done: list[int] = []
    for i, (obj, fields) in waiting.items():
        holder = getattr(obj, STATE_ATTR, None)
        pending = holder is not None and holder.session is session and i in holder.new
        if not pending and (holder is None or holder.session is not session or not holder.holds(obj)):
            done.append(i)
            continue
        waits = False
        resolved: list[str] | None = None
        d = obj.__dict__
        for field, parent in fields.items():
            key = keys.get(id(parent), MISSING)
            if key is MISSING:
                key = keys[id(parent)] = _key_of(parent)
                if key is None and session_of(parent) is not objects:
                    raise SessionError(
                        f"cannot flush {_name(obj)}: its {field} is to be the key of {_name(parent)}, which is not in "
                        "the session (add it, or assign another object)"
                    )
            if key is None:
                waits = True
                if pending:
                    held.add(i)
                    edges.append(((obj,), parent))
                continue
            if pending:  # (its INSERT takes its values as they are: nothing to record)
                d[field] = key
            else:
                set_key(obj, field, key)
            if resolved is None:
                resolved = [field]
            else:
                resolved.append(field)
        if not waits:
            done.append(i)
        elif resolved is not None:
            for field in resolved:
                del fields[field]
    for i in done:
        del waiting[i]
    if held:
        _refuse_cycles(held, edges)
    return held


def _resolve_listed(objects: IdentityMap, held: set[int], edges: list[tuple[Iterable[Any], Any]]) -> None:
    """`resolve_waiting` for the children that their parents' collections list (`_listed_by_parent`).
    A collection lists only children whose reference holds the parent (both sides are kept in
    step), so a parent without its key yet holds them all back at once."""
    session = objects.session
    finished: list[tuple[int, str]] = []
    for i, (parent, ref) in objects.parents.items():
        key = parent.__dict__.get(ref.remote.name)
        if key is None and session_of(parent) is not objects:
            raise SessionError(
                f"cannot flush: objects wait for the key of {_name(parent)}, which is not in the session (add it, or "
                "assign them another object)"
            )
        assert ref.back is not None
        children = parent.__dict__.get(ref.back.name)
        if not isinstance(children, RelatedList):
            finished.append(i)
            continue
        if key is None:
            held.update(map(id, children))  # (persistent ones among them: not in any insert anyway)
            edges.append((children, parent))
            continue
        finished.append(i)
        local, name = ref.local.name, ref.name
        for child in children:
            holder = getattr(child, STATE_ATTR, None)
            if holder is None or holder.session is not session:
                continue
            if id(child) in holder.new:  # pending: its INSERT takes its values as they are
                child.__dict__[local] = key
            elif child.__dict__.get(name) is parent and holder.holds(child):
                set_key(child, local, key)
    for i in finished:
        del objects.parents[i]


def _refuse_cycles(held: set[int], edges: list[tuple[Iterable[Any], Any]]) -> None:
    """Objects waiting on each other's generated keys can never be inserted: say which."""
    waits: dict[int, list[int]] = {}  # held back, and waiting for an object held back too
    named: dict[int, Any] = {}
    for objs, parent in edges:
        if id(parent) in held:  # (usually none: parents wait for nothing)
            named[id(parent)] = parent
            for obj in objs:
                if id(obj) in held:
                    waits.setdefault(id(obj), []).append(id(parent))
    while waits:
        ready = [i for i, parents in waits.items() if not any(p in waits for p in parents)]
        if not ready:
            break
        for i in ready:
            del waits[i]
    if waits:
        some = [named[p] for parents in list(waits.values())[:3] for p in parents if p in named][:3]
        names = ", ".join(_name(p) for p in some)
        raise SessionError(
            f"cannot flush: objects refer to each other through keys the database has not generated yet, in a cycle "
            f"(among {names}): flush one of them first, then assign the reference"
        )
