"""Loading relationships: ``await s.load(objs, *paths)`` and ``select(...).load(...)``.

One statement per relationship and level (in chunks of `CHUNK` keys), never one per object; every
row goes through the identity map, so objects the session holds keep their unflushed changes.
Peer batching: asked for one object, a load covers every object of the same entity that came
from the same statement and lacks the relationship, so a loop that loads one object at a time
sends one statement. And keeping what is loaded true: whatever changes the rows a loaded
relationship goes through (a foreign key assigned, a flush, a rollback, a refresh) unloads it,
so that it is never read stale (see ``docs/relationships.md``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from ._graphwrite import RelatedList, stop_waiting, unlist_waiting
from ._loading import load_objects
from ._mapping import Mapper, mapper_of
from ._relations import RelationKind, Relationship, unload_references
from ._rellog import changing
from ._state import STATE_ATTR, ObjectState
from ._tracking import NOT_HELD
from .errors import DetachedInstanceError, QueryError

if TYPE_CHECKING:
    from ._identity import IdentityMap
    from .dialects._base import Dialect, Row

#: Keys per statement of a batched load.
CHUNK = 500

Fetch = Callable[[str, Sequence[Any]], Awaitable[list["Row"]]]


def paths_of(entity: type, paths: Sequence[Any]) -> list[tuple[Relationship, ...]]:
    """Each path as a tuple of resolved relationships that chain, starting at ``entity``."""
    out: list[tuple[Relationship, ...]] = []
    for path in paths:
        steps = path if isinstance(path, tuple) else (path,)
        if not steps or not all(isinstance(step, Relationship) for step in steps):
            raise QueryError(f"cannot load {path!r}: a path is a relationship (Hero.team) or a tuple of them")
        at = entity
        for step in steps:
            step.resolve()
            if step.owner is not at:
                raise QueryError(
                    f"cannot load {path!r}: {step!r} is a relationship of {step.owner.__name__}, "
                    f"not of {at.__name__} (each step must start where the one before ends)"
                )
            at = step.target
        out.append(tuple(steps))
    return out


def is_loaded(obj: Any, rel: Relationship) -> bool:
    return rel.name in obj.__dict__


async def load_paths(objects: IdentityMap, dialect: Dialect, fetch: Fetch, objs: list[Any], paths: Any) -> None:
    """Load ``paths`` (already checked by `paths_of`) for ``objs`` and, level by level, for what
    each level loaded."""
    for path in paths:
        level = objs
        for depth, rel in enumerate(path):
            await _load_level(objects, dialect, fetch, level, rel)
            if depth + 1 < len(path):
                level = _related(level, rel)


def owned(objects: IdentityMap, objs: Iterable[Any]) -> list[Any]:
    """The objects, checked to be of one entity and held by this session (pending ones included).
    (The entity is checked once, not per object: per object it measured ~1 ms for 10,000.)"""
    out = list(objs)
    kinds = set(map(type, out))
    if len(kinds) > 1:
        raise QueryError("cannot load relationships of objects of several entities in one call")
    kind = next(iter(kinds))
    mapper_of(kind)
    try:
        holders = set(map(_holder_of, out))
    except AttributeError:  # made without __init__: no session has seen it
        holders = {None}
    if any(holder is None or holder.session is not objects.session for holder in holders):
        raise DetachedInstanceError(f"cannot load relationships of {kind.__name__}: not in this session")
    return out


_holder_of = attrgetter(STATE_ATTR)


def _keys(objs: list[Any], field: str) -> set[Any]:
    """The values of a key field of the objects, without None (fields are plain instance attributes)."""
    return set(map(attrgetter(field), objs)) - {None}


def _related(objs: list[Any], rel: Relationship) -> list[Any]:
    """The objects a loaded relationship of ``objs`` holds, each once: the next level of a path."""
    related: list[Any] = []
    for obj in objs:
        value = obj.__dict__.get(rel.name)
        if rel.collection:
            related.extend(value or ())
        elif value is not None:
            related.append(value)
    return list({id(o): o for o in related}.values())


async def _load_level(objects: IdentityMap, dialect: Dialect, fetch: Fetch, objs: list[Any], rel: Relationship) -> None:
    tracker = objects.tracker(mapper_of(rel.owner))
    name = rel.name
    wanted = [o for o in objs if name not in o.__dict__]
    if wanted and len(wanted) < CHUNK:  # peer batching: the rest of the statements they came from
        wanted = _with_peers(tracker, wanted, rel)
    if not wanted:
        return
    if rel.kind is RelationKind.MANY_TO_ONE:
        await _many_to_one(objects, dialect, fetch, wanted, rel)
    elif rel.kind is RelationKind.MANY_TO_MANY:
        await _many_to_many(objects, dialect, fetch, wanted, rel)
    else:
        await _by_foreign_key(objects, dialect, fetch, wanted, rel)
    objects.rel_log.loaded(name, wanted)  # (a rollback unloads them again)


def _with_peers(tracker: Any, wanted: list[Any], rel: Relationship) -> list[Any]:
    ids = {id(o) for o in wanted}
    out = list(wanted)
    for batch in tracker.batches:
        if any(id(o) in ids for o in batch):
            for peer in batch:
                if id(peer) not in ids and rel.name not in peer.__dict__ and tracker.holds(peer):
                    ids.add(id(peer))
                    out.append(peer)
    return out


async def _rows_where_in(
    objects: IdentityMap, dialect: Dialect, fetch: Fetch, target: Mapper, column: Any, keys: list[Any]
) -> list[Any]:
    """The objects of the rows of ``target`` whose ``column`` is one of ``keys``, in key order."""
    found: list[Any] = []
    tracker = objects.tracker(target)
    head = f"SELECT {dialect.select_list(target)} FROM {dialect.quote(target.table)} WHERE "
    order = " ORDER BY " + ", ".join(dialect.expression_sql(c) for c in target.pk)
    for start in range(0, len(keys), CHUNK):
        params: list[Any] = []
        # The keys come from rows and held objects, valid already: not checked one by one again.
        chunk = tuple(keys[start : start + CHUNK])
        where = dialect.keys_in(dialect.quote(column.column_name), column, chunk, params, checked=False)
        rows = await fetch(head + where + order, params)
        found.extend(load_objects(tracker, dialect, rows, refresh=False))
    return found


async def _many_to_one(
    objects: IdentityMap, dialect: Dialect, fetch: Fetch, objs: list[Any], rel: Relationship
) -> None:
    target = mapper_of(rel.target)
    tracker = objects.tracker(target)
    local, remote, name = rel.local.name, rel.remote.name, rel.name
    keys = _keys(objs, local)
    held = {k: v for k in keys if (v := tracker.lookup(k)) is not NOT_HELD}
    missing = sorted(k for k in keys if k not in held)
    for obj in await _rows_where_in(objects, dialect, fetch, target, rel.remote, missing):
        held[obj.__dict__[remote]] = obj
    for obj in objs:  # (every object in held is the session's: found there, or just loaded)
        d = obj.__dict__
        key = d[local]
        d[name] = None if key is None else held.get(key)


async def _by_foreign_key(
    objects: IdentityMap, dialect: Dialect, fetch: Fetch, objs: list[Any], rel: Relationship
) -> None:
    """One-to-many and one-to-one: the rows of the target whose foreign key is one of these objects' keys."""
    target = mapper_of(rel.target)
    tracker = objects.tracker(target)
    local, remote, name = rel.local.name, rel.remote.name, rel.name
    keys = sorted(_keys(objs, local))
    children: dict[Any, list[Any]] = {}
    deleting = tracker.deleting  # (marked for deletion and not flushed: not among the children)
    found = await _rows_where_in(objects, dialect, fetch, target, rel.remote, keys)
    if deleting:
        found = [child for child in found if tracker.state(child) is not ObjectState.DELETED]
    for child in found:
        children.setdefault(child.__dict__[remote], []).append(child)
    none: list[Any] = []
    for obj in objs:
        mine = children.get(obj.__dict__[local], none)
        obj.__dict__[name] = RelatedList(obj, rel, mine) if rel.collection else (mine[0] if mine else None)
    if rel.back is not None and found:  # each child's reference to its parent, where not loaded yet
        back = rel.back.name
        parents = {obj.__dict__[local]: obj for obj in objs}
        filled: list[Any] = []
        for child in found:
            d = child.__dict__
            if back not in d:
                d[back] = parents.get(d[remote])
                filled.append(child)
        objects.rel_log.loaded(back, filled)


async def _many_to_many(
    objects: IdentityMap, dialect: Dialect, fetch: Fetch, objs: list[Any], rel: Relationship
) -> None:
    """One statement per chunk: the target's rows joined to the link rows that point at these objects."""
    link, link_local, link_remote = rel.link, rel.link_local, rel.link_remote
    assert link is not None
    assert link_local is not None
    assert link_remote is not None
    target = mapper_of(rel.target)
    tracker = objects.tracker(target)
    keys = sorted(_keys(objs, rel.local.name))
    q = dialect.quote
    owner_col = f"l.{q(link_local.column_name)}"
    columns = ", ".join(f"t.{q(c.column_name)}" for c in target.columns)
    head = (
        f"SELECT {columns}, {owner_col} FROM {q(target.table)} AS t JOIN {q(link.table)} AS l "
        f"ON l.{q(link_remote.column_name)} = t.{q(rel.remote.column_name)} WHERE "
    )
    order = f" ORDER BY {owner_col}, " + ", ".join(f"t.{q(c.column_name)}" for c in target.pk)
    owner_key = dialect.from_db(link_local.ctype)
    found: dict[Any, list[Any]] = {}
    for start in range(0, len(keys), CHUNK):
        params: list[Any] = []
        where = dialect.keys_in(owner_col, link_local, tuple(keys[start : start + CHUNK]), params, checked=False)
        rows = await fetch(head + where + order, params)
        loaded = load_objects(tracker, dialect, rows, refresh=False)
        for row, obj in zip(rows, loaded, strict=True):
            key = row[-1] if owner_key is None else owner_key(row[-1])
            found.setdefault(key, []).append(obj)
    none: list[Any] = []
    for obj in objs:
        obj.__dict__[rel.name] = RelatedList(obj, rel, found.get(obj.__dict__[rel.local.name], none))


def unload_for_key(objects: IdentityMap, obj: Any, mapper: Mapper, field: str) -> None:
    """A foreign-key field of ``obj`` was assigned: its references over it, and the loaded
    collections that go through it (of any object), are unloaded."""
    unload_references(obj, mapper, field)
    stop_waiting(objects, obj, field)  # (the key assigned by hand wins over a reference assigned before)
    for rel in mapper.incoming:  # collections and one-to-ones whose foreign key is this field
        if rel.remote.name == field and rel.kind in (RelationKind.ONE_TO_MANY, RelationKind.ONE_TO_ONE):
            owners = objects.by_class.get(rel.owner)
            if owners is not None:
                name = rel.name
                for parent in owners.held():
                    if name in parent.__dict__:
                        if objects.parents:  # (children listed as waiting for its key get entries)
                            unlist_waiting(objects, parent)
                        changing(parent, name)
                        del parent.__dict__[name]
