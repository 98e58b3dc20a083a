"""What the open transaction did to loaded relationships, for a rollback to put back exactly.

Fields are put back from the trackers' logs (`aiouow._restore`); relationships live in the
objects' ``__dict__`` and change in memory (writes through them, loads, what a flush keeps in
step, what an assignment unloads). Every such change of an object backed by a row goes through
this log first: the value before the first change of each relationship in the transaction, and
the batches that a load filled (they were not loaded before, so a rollback unloads them). A
rollback undoes them newest first; a commit forgets them. Pending objects are not logged: a
rollback makes them transient, keeping their relationships as the program set them.

A savepoint takes a `mark` (where the log stands, and the changes logged before it); from then
on the value before each relationship's first change *since the savepoint* is logged, so that
`restore` back to the mark puts back what the savepoint saw, and `release` joins the two levels.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ._fields import MISSING
from ._state import STATE_ATTR
from ._weakmap import WeakBatch


class RelationshipMark(NamedTuple):
    """Where a savepoint stands in the log: how many entries it held, and which changes."""

    ops: int
    seen: set[tuple[int, str]]


class RelationshipLog:
    """The log of one session's relationship changes since its transaction began."""

    __slots__ = ("ops", "seen", "session", "weak")

    def __init__(self, session: object, *, weak: bool = False) -> None:
        self.session = session
        self.weak = weak  # identity_map="weak": the batches loaded are not kept alive by this log
        #: (object, name, value before) for a change, (None, name, objects) for a load, oldest first.
        self.ops: list[tuple[Any, str, Any]] = []
        self.seen: set[tuple[int, str]] = set()  # (id, name) of the changes logged already

    def changing(self, obj: Any, name: str) -> None:
        """``obj``'s relationship ``name`` is about to change (logged the first time only)."""
        key = (id(obj), name)
        if key in self.seen:
            return
        holder = getattr(obj, STATE_ATTR, None)
        if holder is None or getattr(holder, "session", None) is not self.session or id(obj) in holder.new:
            return  # (not backed by a row of this session)
        self.seen.add(key)
        value = obj.__dict__.get(name, MISSING)
        self.ops.append((obj, name, tuple(value) if isinstance(value, list) else value))

    def loaded(self, name: str, objs: list[Any]) -> None:
        """A load filled relationship ``name`` of ``objs`` (a list the caller hands over), none of
        which had it loaded."""
        self.ops.append((None, name, WeakBatch(objs) if self.weak else objs))

    def mark(self) -> RelationshipMark:
        """A savepoint opens: what it keeps, and a fresh record of the changes logged since."""
        mark = RelationshipMark(len(self.ops), self.seen)
        self.seen = set()
        return mark

    def release(self, mark: RelationshipMark) -> None:
        """The savepoint was released: what was logged since belongs to the enclosing level."""
        self.seen |= mark.seen

    def restore(self, since: RelationshipMark | None = None, *, keep_loads: bool = False) -> None:
        """Rolled back (to the savepoint of ``since``, or the whole transaction): every relationship
        logged since holds what it held then; with ``keep_loads`` (the transaction wrote nothing,
        so what it loaded is still true) the loads are kept, and only the changes undone. (Closing
        a read-only session that loaded 10,000 relationships skips 10,000 dict pops: ~1.3 ms.)"""
        from ._graphwrite import RelatedList  # (which builds on this module)
        from ._mapping import mapper_of

        start = 0 if since is None else since.ops
        for obj, name, before in reversed(self.ops[start:]):
            if obj is None:
                if keep_loads:
                    continue
                for loaded in before:
                    loaded.__dict__.pop(name, None)
                continue
            d = obj.__dict__
            if before is MISSING:
                d.pop(name, None)
            elif isinstance(before, tuple):
                current = d.get(name)
                if isinstance(current, RelatedList):
                    list.__setitem__(current, slice(None), before)
                else:
                    d[name] = RelatedList(obj, mapper_of(obj).relationships[name], before)
            else:
                d[name] = before
        if since is None:
            self.clear()
        else:
            del self.ops[start:]
            self.seen = since.seen

    def clear(self) -> None:
        if self.ops:
            self.ops = []
            self.seen = set()


def changing(obj: Any, name: str) -> None:
    """Before relationship ``name`` of ``obj`` changes in memory: logged in the log of the session
    that holds it (if any)."""
    holder = getattr(obj, STATE_ATTR, None)
    session = getattr(holder, "session", None)
    if session is not None:
        log: RelationshipLog = session._objects.rel_log
        log.changing(obj, name)
