"""Many-to-many writes: each related pair is a row of the link entity.

`link` adds a link object to the session (its keys waiting on pending sides); `unlink` deletes the
link row, through the held link object or a *stub*: an object standing for a link row that was
never loaded, holding only its key, put out of the session again when the transaction ends.
`check_link` refuses, before a collection changes, what could not be written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._fields import MISSING
from ._graphwrite import _key_of, _name, _over, wait_for
from ._state import STATE_ATTR
from .errors import SessionError

if TYPE_CHECKING:
    from ._identity import IdentityMap
    from ._mapping import Mapper
    from ._relations import Relationship


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


def check_link(rel: Relationship, owner: Any, *, adding: bool, removing: bool) -> None:
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
    row = link_mapper.entity(**{fa: ka, fb: kb})  # (its other fields have defaults: `check_link`)
    rd = row.__dict__
    for field, end in ((fa, owner), (fb, target)):
        for ref in _over(link_mapper, field).refs:
            rd[ref.name] = end
    tracker.add_new(row)
    objects.links[pair] = row
    for field, end, key in ((fa, owner, ka), (fb, target, kb)):
        if key is None:
            wait_for(objects, row, field, end)


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
    key = _link_key(link_mapper, {fa: ka, fb: kb})  # (the pair is its primary key: `check_link`)
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
