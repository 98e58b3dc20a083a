"""Loaded relationships kept true when a flush inserts and deletes rows.

A row inserted with a foreign key (``Hero(team_id=3)``, or a link row added by hand) belongs in
the loaded collections of its parent; a deleted row leaves them; a key set to NULL by the
database's ``ON DELETE SET NULL`` leaves its references empty. Relationship writes keep memory in
step as they are made (`aiouow._graphwrite`), so for them this finds everything in place; for
rows written through their foreign-key fields it puts the loaded relationships in step, or
unloads a collection it cannot complete without a query (a link row to an object the session
does not hold). Updates need nothing here: assigning a foreign key unloads what goes through it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._graphwrite import _M2M, _M2O, _O2M, _O2O, RelatedList, _over, _raw_add, _raw_remove
from ._rellog import changing

if TYPE_CHECKING:
    from ._identity import IdentityMap
    from ._mapping import Mapper


def keep_in_step(
    objects: IdentityMap,
    inserted: Iterable[tuple[Mapper, list[Any]]],
    deleted: Iterable[tuple[Mapper, list[Any]]],
    nulled: Iterable[tuple[Mapper, str, list[Any]]],
) -> None:
    """After a flush settled: ``inserted`` and ``deleted`` objects per entity, and the objects
    whose foreign-key field the database set to NULL."""
    for mapper, objs in deleted:
        if mapper.incoming or mapper.through:
            _deleted(objects, mapper, objs)
    gone = {id(obj) for _, objs in deleted for obj in objs} if nulled else set()
    for mapper, field, objs in nulled:
        for ref in _over(mapper, field).refs:
            for obj in objs:
                parent = obj.__dict__.get(ref.name)
                # (a reference assigned to another parent, whose key the next round sets, stays)
                if parent is not None and id(parent) in gone:
                    changing(obj, ref.name)
                    obj.__dict__[ref.name] = None
    for mapper, objs in inserted:
        if mapper.incoming or mapper.through:
            _inserted(objects, mapper, objs)


def _parents(objects: IdentityMap, entity: type) -> dict[Any, Any]:
    tracker = objects.by_class.get(entity)
    return tracker.identity if tracker is not None else {}


def _inserted(objects: IdentityMap, mapper: Mapper, objs: list[Any]) -> None:
    for rel in mapper.incoming:
        if rel.kind not in (_O2M, _O2O) or rel.remote.entity is not mapper.entity:
            continue
        parents = _parents(objects, rel.owner)
        if not parents:
            continue
        field, name = rel.remote.name, rel.name
        back = rel.back.name if rel.back is not None else None
        present: dict[int, set[int]] = {}  # parent -> ids of its loaded collection
        for obj in objs:
            d = obj.__dict__
            parent = parents.get(d.get(field))
            if parent is None or (back is not None and d.get(back) is parent):
                continue  # (no parent held; or related through the relationship, which kept both sides in step)
            current = parent.__dict__.get(name)
            if not rel.collection:
                if name in parent.__dict__:
                    changing(parent, name)
                    parent.__dict__[name] = obj
            elif isinstance(current, RelatedList):
                ids = present.get(id(parent))
                if ids is None:
                    ids = present[id(parent)] = {id(o) for o in current}
                if id(obj) not in ids:
                    changing(parent, name)
                    list.append(current, obj)
                    ids.add(id(obj))
    for rel in mapper.through:  # link rows: the pair's collections on both sides
        for side in (rel, rel.back) if rel.back is not None else (rel,):
            _linked(objects, side, objs)


def _linked(objects: IdentityMap, rel: Any, links: list[Any]) -> None:
    """Link rows were inserted: each owner's loaded collection gains the target (or, when the
    session does not hold the target, is unloaded: it cannot be completed without a query)."""
    owners = _parents(objects, rel.owner)
    if not owners:
        return
    targets = _parents(objects, rel.target)
    local, remote, name = rel.link_local.name, rel.link_remote.name, rel.name
    for row in links:
        d = row.__dict__
        owner = owners.get(d.get(local))
        if owner is None or not isinstance(owner.__dict__.get(name), RelatedList):
            continue
        target = targets.get(d.get(remote))
        if target is None:
            changing(owner, name)
            del owner.__dict__[name]
        else:
            _raw_add(owner.__dict__[name], target)


def _deleted(objects: IdentityMap, mapper: Mapper, objs: list[Any]) -> None:
    gone = {id(obj) for obj in objs}
    for rel in mapper.incoming:
        held_owners = objects.by_class.get(rel.owner)
        if held_owners is None:
            continue
        name = rel.name
        if rel.kind in (_O2M, _O2O) and rel.remote.entity is mapper.entity:
            parents = held_owners.identity
            back = rel.back.name if rel.back is not None else None
            for obj in objs:
                d = obj.__dict__
                parent = parents.get(d.get(rel.remote.name))
                if parent is None and back is not None:
                    parent = d.get(back)  # (a new parent whose generated key it was still waiting for)
                if parent is None:
                    continue
                if rel.collection:
                    _raw_remove(parent.__dict__.get(name), obj)
                elif parent.__dict__.get(name) is obj:
                    changing(parent, name)
                    parent.__dict__[name] = None
        elif rel.kind is _M2M:  # the deleted objects leave the collections of the other side
            for owner in held_owners.held():
                current = owner.__dict__.get(name)
                if isinstance(current, RelatedList) and any(id(o) in gone for o in current):
                    changing(owner, name)
                    list.__setitem__(current, slice(None), [o for o in current if id(o) not in gone])
        elif rel.kind is _M2O:  # references to a deleted row (its children were moved, or are not held)
            for owner in held_owners.held():
                d = owner.__dict__
                value = d.get(name)
                if value is not None and id(value) in gone:
                    changing(owner, name)
                    d[name] = None
    for rel in mapper.through:  # link rows deleted: the pair's collections on both sides
        for side in (rel, rel.back) if rel.back is not None else (rel,):
            owners = _parents(objects, side.owner)
            targets = _parents(objects, side.target)
            assert side.link_local is not None
            assert side.link_remote is not None
            for row in objs:
                d = row.__dict__
                owner = owners.get(d.get(side.link_local.name))
                target = targets.get(d.get(side.link_remote.name))
                if owner is not None and target is not None:
                    _raw_remove(owner.__dict__.get(side.name), target)
