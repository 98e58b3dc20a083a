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
from typing import TYPE_CHECKING, Any

from ._loading import load_objects
from ._mapping import Mapper, mapper_of
from ._query import Select, select
from ._relations import RelationKind, Relationship, loaded_list
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
        for rel in path:
            level = await _load_level(objects, dialect, fetch, level, rel)


def owned(objects: IdentityMap, objs: Iterable[Any]) -> list[Any]:
    """The objects, checked to be of one entity and held by this session (pending ones included)."""
    out = list(objs)
    for obj in out:
        mapper_of(obj)
        holder = getattr(obj, STATE_ATTR, None)
        if holder is None or holder.session is not objects.session:
            raise DetachedInstanceError(f"cannot load relationships of {type(obj).__name__}: it is not in this session")
    if len({type(o) for o in out}) > 1:
        raise QueryError("cannot load relationships of objects of several entities in one call")
    return out


async def _load_level(
    objects: IdentityMap, dialect: Dialect, fetch: Fetch, objs: list[Any], rel: Relationship
) -> list[Any]:
    tracker = objects.tracker(mapper_of(rel.owner))
    wanted = [o for o in objs if rel.name not in o.__dict__]
    if wanted and len(objs) < 2 * CHUNK:  # peer batching: the rest of the statement they came from
        wanted = _with_peers(tracker, wanted, rel)
    if wanted:
        if rel.kind is RelationKind.MANY_TO_ONE:
            await _many_to_one(objects, dialect, fetch, wanted, rel)
        elif rel.kind is RelationKind.MANY_TO_MANY:
            await _many_to_many(objects, dialect, fetch, wanted, rel)
        else:
            await _by_foreign_key(objects, dialect, fetch, wanted, rel)
    related: list[Any] = []
    for obj in objs:
        value = obj.__dict__.get(rel.name)
        if rel.collection:
            related.extend(value or ())
        elif value is not None:
            related.append(value)
    return list({id(o): o for o in related}.values())


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
    found: list[Any] = []
    for start in range(0, len(keys), CHUNK):
        stmt: Select[Any] = select(target.entity).where(column.in_(keys[start : start + CHUNK])).order_by(*target.pk)
        sql, params = dialect.compile_select(stmt)
        rows = await fetch(sql, params)
        found.extend(load_objects(objects.tracker(target), dialect, rows, refresh=False))
    return found


async def _many_to_one(
    objects: IdentityMap, dialect: Dialect, fetch: Fetch, objs: list[Any], rel: Relationship
) -> None:
    target = mapper_of(rel.target)
    tracker = objects.tracker(target)
    local = rel.local.name
    keys = {o.__dict__[local] for o in objs} - {None}
    held = {k: v for k in keys if (v := tracker.lookup(k)) is not NOT_HELD}
    missing = sorted(k for k in keys if k not in held)
    for obj in await _rows_where_in(objects, dialect, fetch, target, rel.remote, missing):
        held[obj.__dict__[rel.remote.name]] = obj
    for obj in objs:
        key = obj.__dict__[local]
        found = held.get(key) if key is not None else None
        obj.__dict__[rel.name] = found if found is not None and tracker.holds(found) else None


async def _by_foreign_key(
    objects: IdentityMap, dialect: Dialect, fetch: Fetch, objs: list[Any], rel: Relationship
) -> None:
    """One-to-many and one-to-one: the rows of the target whose foreign key is one of these objects' keys."""
    target = mapper_of(rel.target)
    tracker = objects.tracker(target)
    keys = sorted({o.__dict__[rel.local.name] for o in objs} - {None})
    children: dict[Any, list[Any]] = {}
    for child in await _rows_where_in(objects, dialect, fetch, target, rel.remote, keys):
        if tracker.state(child) is not ObjectState.DELETED:
            children.setdefault(child.__dict__[rel.remote.name], []).append(child)
    back = rel.back
    for obj in objs:
        mine = children.get(obj.__dict__[rel.local.name], [])
        obj.__dict__[rel.name] = loaded_list(mine) if rel.collection else (mine[0] if mine else None)
        if back is not None:
            for child in mine:
                child.__dict__.setdefault(back.name, obj)


async def _many_to_many(
    objects: IdentityMap, dialect: Dialect, fetch: Fetch, objs: list[Any], rel: Relationship
) -> None:
    """One statement per chunk: the target's rows joined to the link rows that point at these objects."""
    assert rel.link is not None
    assert rel.link_local is not None
    assert rel.link_remote is not None
    target = mapper_of(rel.target)
    link_local = rel.link_local
    keys = sorted({o.__dict__[rel.local.name] for o in objs} - {None})
    q = dialect.quote
    found: dict[Any, list[Any]] = {}
    owner_key = dialect.from_db(link_local.ctype)
    for start in range(0, len(keys), CHUNK):
        params: list[Any] = []
        where = dialect.keys_in(
            f"l.{q(link_local.column_name)}", link_local, tuple(keys[start : start + CHUNK]), params
        )
        columns = ", ".join(f"t.{q(c.column_name)}" for c in target.columns)
        sql = (
            f"SELECT {columns}, l.{q(link_local.column_name)} FROM {q(target.table)} AS t "
            f"JOIN {q(rel.link.table)} AS l ON l.{q(rel.link_remote.column_name)} = t.{q(rel.remote.column_name)} "
            f"WHERE {where} ORDER BY l.{q(link_local.column_name)}, "
            + ", ".join(f"t.{q(c.column_name)}" for c in target.pk)
        )
        rows = await fetch(sql, params)
        loaded = load_objects(objects.tracker(target), dialect, rows, refresh=False)
        for row, obj in zip(rows, loaded, strict=True):
            key = row[-1] if owner_key is None else owner_key(row[-1])
            found.setdefault(key, []).append(obj)
    for obj in objs:
        obj.__dict__[rel.name] = loaded_list(found.get(obj.__dict__[rel.local.name], []))


def unload_for_key(objects: IdentityMap, obj: Any, mapper: Mapper, field: str) -> None:
    """A foreign-key field of ``obj`` was assigned: its references over it, and the loaded
    collections that go through it (of any object), are unloaded."""
    d = obj.__dict__
    for rel in mapper.relationships.values():
        if rel.resolved and rel.kind is RelationKind.MANY_TO_ONE and rel.local.name == field:
            d.pop(rel.name, None)
    for rel in mapper.incoming:
        if (rel.remote.name == field and rel.collection) or rel.kind is RelationKind.ONE_TO_ONE:
            owners = objects.by_class.get(rel.owner)
            if owners is not None:
                for parent in owners.held():
                    parent.__dict__.pop(rel.name, None)
