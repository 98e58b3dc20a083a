"""The save cascade, and the keys that wait for a parent's generated key.

`cascade_new`: adding a transient object adds the transient objects reachable through its
relationships, and sets (or leaves waiting) every key between them. `resolve_waiting`: when a flush
is taken, the keys whose parents have them now are set, and what still waits is held back to a
later round of the flush (see "The life of a flush" in ``docs/internals.md``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._fields import MISSING
from ._graphwrite import _M2O, _O2M, _O2O, RelatedList, _key_of, _name, link_key, session_of, set_key
from ._links import link
from ._mapping import mapper_of
from ._state import STATE_ATTR
from .errors import SessionError

if TYPE_CHECKING:
    from ._identity import IdentityMap
    from ._relations import Relationship


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
                        if not others or not any(od.get(name) for name in others):  # (no generator when none)
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
                if value and back is not None and d.get(rel.local.name) is None and isinstance(value, RelatedList):
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


def _others_of(rel: Relationship) -> tuple[str, ...]:
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
