"""The identity map of a session: its `EntityTracker` per entity, and the operations over all of them.

Each tracker holds one entity's objects (one object per row) and their changes; this map finds
the tracker of an object or class, and runs what concerns every object the session holds: adding
and deleting (with the checks that name the object), and what a commit, a rollback or a close
settles.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from . import _restore
from ._cascade import cascade_new
from ._mapping import Mapper, describe, mapper_of
from ._rellog import RelationshipLog, RelationshipMark
from ._state import STATE_ATTR, ObjectState
from ._tracking import EntityTracker
from .errors import SessionError


class SavepointMark(NamedTuple):
    """What a savepoint keeps to put memory back: each tracker's mark, the relationship log's, and
    copies of the relationship writes' bookkeeping (small: a savepoint opens right after a flush)."""

    trackers: dict[Mapper, _restore.TrackerMark]
    relationships: RelationshipMark
    waiting: dict[int, tuple[Any, dict[str, Any]]]
    parents: dict[tuple[int, str], tuple[Any, Any]]
    links: dict[tuple[Any, ...], Any]
    stubs: int


class IdentityMap:
    """The trackers of one session, by mapper and by entity class."""

    __slots__ = ("by_class", "links", "parents", "rel_log", "session", "stubs", "trackers", "waiting", "weak")

    def __init__(self, session: object, *, weak: bool = False) -> None:
        self.session = session
        self.weak = weak  # identity_map="weak" (see aiouow._weakmap)
        self.trackers: dict[Mapper, EntityTracker] = {}
        #: The same trackers by entity class: what `AsyncSession.get`'s identity-map hit looks up.
        self.by_class: dict[type, EntityTracker] = {}
        #: Relationship writes of the open transaction (see `aiouow._graphwrite`): objects whose
        #: foreign keys wait for a parent's generated key (``id`` -> (object, {field: parent})),
        #: the link objects made for many-to-many pairs, and stubs standing for link rows to delete.
        self.waiting: dict[int, tuple[Any, dict[str, Any]]] = {}
        #: ... and the new parents whose loaded collections list children waiting for their keys
        #: ((``id``, collection name) -> (parent, the children's reference to it)).
        self.parents: dict[tuple[int, str], tuple[Any, Any]] = {}
        self.links: dict[tuple[Any, ...], Any] = {}
        self.stubs: list[Any] = []
        #: What the open transaction did to loaded relationships (put back by a rollback).
        self.rel_log = RelationshipLog(session, weak=weak)

    def tracker(self, mapper: Mapper) -> EntityTracker:
        """The tracker of an entity (made on first use)."""
        tracker = self.trackers.get(mapper)
        if tracker is None:
            tracker = self.trackers[mapper] = self.by_class[mapper.entity] = EntityTracker(
                mapper, self.session, weak=self.weak
            )
        return tracker

    def __iter__(self) -> Iterator[EntityTracker]:
        return iter(self.trackers.values())

    # -- adding and deleting -------------------------------------------------------------------------
    def add(self, objs: tuple[Any, ...]) -> None:
        """New objects become pending; detached ones persistent again; those already here stay."""
        kind: type | None = None
        tracker: EntityTracker | None = None
        for obj in objs:
            if type(obj) is not kind:  # objects come in runs of one class
                kind = type(obj)
                tracker = self.by_class.get(kind)
            holder = getattr(obj, STATE_ATTR, None)
            if tracker is None:
                self._add_one(obj)  # (the first object of its entity in this session, or not an entity)
                tracker = self.by_class.get(kind)
                if holder is None and tracker is not None and tracker.mapper.relationships:
                    cascade_new(self, obj)
            elif holder is None:
                tracker.add_new(obj)  # an object no session has seen: pending
                if tracker.mapper.relationships:
                    cascade_new(self, obj)  # (and those it reaches through its relationships)
            elif holder is not tracker or tracker.removed:
                self._add_one(obj)

    def add_new_alone(self, obj: Any) -> None:
        """A transient object becomes pending (the save cascade, which adds what it reaches itself)."""
        self.tracker(mapper_of(obj)).add_new(obj)

    def _add_one(self, obj: Any) -> None:
        tracker = self.tracker(mapper_of(obj))
        holder = getattr(obj, STATE_ATTR, None)
        if holder is None:
            tracker.add_new(obj)
        elif holder is tracker:
            if id(obj) in tracker.removed:
                raise SessionError(f"cannot add {describe(obj)}: it was deleted by a flush of this transaction")
        elif holder.session is not None:
            raise SessionError(
                f"cannot add {describe(obj)}: it belongs to another open session (expunge it there, or use merge())"
            )
        else:
            self._attach(tracker, obj, holder)

    def _attach(self, tracker: EntityTracker, obj: Any, holder: Any) -> None:
        """A detached object joins this session, persistent."""
        key, changes, json_text = holder.detached_parts(obj)
        present = tracker.identity.get(key)
        if present is not None and present is not obj:
            raise SessionError(
                f"cannot add {describe(obj)}: another object for the same row is already in this session "
                "(use merge() to copy its state onto that object)"
            )
        tracker.adopt(obj, key, changes, json_text)

    def delete(self, obj: Any) -> None:
        """Mark an object for deletion (a detached one joins the session first)."""
        mapper = mapper_of(obj)
        holder = getattr(obj, STATE_ATTR, None)
        if holder is None or holder.state_for(obj, self.session) is ObjectState.TRANSIENT:
            raise SessionError(f"cannot delete {mapper.name}: the object is not persisted (add and flush it first)")
        if holder.session is self.session:
            holder.mark_deleted(obj)
            return
        if holder.session is not None:
            raise SessionError(f"cannot delete {describe(obj)}: it belongs to another open session")
        tracker = self.tracker(mapper)
        self._attach(tracker, obj, holder)
        tracker.mark_deleted(obj)

    def expunge_all(self) -> None:
        for tracker in self.trackers.values():
            for obj in [*tracker.new.values(), *tracker.identity.values(), *tracker.removed.values()]:
                tracker.forget(obj)

    # -- what the session holds ----------------------------------------------------------------------
    def has_changes(self) -> bool:
        return any(tracker.has_changes() for tracker in self.trackers.values())

    def new(self) -> frozenset[Any]:
        return frozenset(obj for tracker in self.trackers.values() for obj in tracker.new.values())

    def dirty(self) -> frozenset[Any]:
        return frozenset(obj for tracker in self.trackers.values() for obj in tracker.dirty_objects())

    def deleted(self) -> frozenset[Any]:
        return frozenset(obj for tracker in self.trackers.values() for obj in tracker.deleting.values())

    def state_of(self, obj: Any) -> ObjectState:
        """Where ``obj`` stands relative to the session (`AsyncSession.state`)."""
        mapper_of(obj)
        holder = getattr(obj, STATE_ATTR, None)
        return ObjectState.TRANSIENT if holder is None else holder.state_for(obj, self.session)

    def dirty_fields(self, obj: Any) -> list[str]:
        mapper_of(obj)
        holder = getattr(obj, STATE_ATTR, None)
        return [] if holder is None else list(holder.dirty_fields(obj))

    def original_value(self, obj: Any, name: str) -> Any:
        mapper_of(obj).column(name, purpose="read an original value")
        holder = getattr(obj, STATE_ATTR, None)
        return obj.__dict__[name] if holder is None else holder.original_value(obj, name)

    def persistent_count(self) -> int:
        return sum(len(tracker.identity) for tracker in self.trackers.values())

    def __len__(self) -> int:
        return sum(len(tracker.identity) + len(tracker.new) for tracker in self.trackers.values())

    # -- the ends of a transaction and of the session ------------------------------------------------
    def after_commit(self) -> None:
        for tracker in self.trackers.values():
            _restore.after_commit(tracker)
        self._end_relationship_writes()
        self.rel_log.clear()

    def restore(self, *, wrote: bool) -> None:
        """The transaction was rolled back: every object holds what it held before it began.
        Relationships loaded during it are unloaded only if it ``wrote`` (they may show rows the
        rollback undid); loaded in a transaction that wrote nothing, they still hold true."""
        for tracker in self.trackers.values():
            _restore.restore(tracker)
        self._forget_stubs(self.stubs)
        self._end_relationship_writes()
        self.rel_log.restore(keep_loads=not wrote)  # (relationships as they were, like the fields)

    def mark(self) -> SavepointMark:
        """A savepoint opens (after a flush): what rolling back to it needs."""
        return SavepointMark(
            {mapper: _restore.mark(tracker) for mapper, tracker in self.trackers.items()},
            self.rel_log.mark(),
            dict(self.waiting),
            dict(self.parents),
            dict(self.links),
            len(self.stubs),
        )

    def restore_to(self, mark: SavepointMark) -> None:
        """Rolled back to the savepoint of ``mark``: every object holds what it held there (objects
        added since are transient, deleted ones are back, changed ones have their values back),
        relationships too; the marks of savepoints opened since are void."""
        for mapper, tracker in self.trackers.items():
            _restore.restore(tracker, mark.trackers.get(mapper, _restore.UNMARKED))
        self._forget_stubs(self.stubs[mark.stubs :])
        del self.stubs[mark.stubs :]
        self.waiting, self.parents, self.links = dict(mark.waiting), dict(mark.parents), dict(mark.links)
        self.rel_log.restore(mark.relationships)

    def released(self, mark: SavepointMark) -> None:
        """The savepoint of ``mark`` was released: its work belongs to the enclosing level."""
        self.rel_log.release(mark.relationships)

    def _forget_stubs(self, stubs: list[Any]) -> None:
        """Rows that were to be unlinked no longer are: their stubs stand for nothing now."""
        for stub in stubs:
            holder = getattr(stub, STATE_ATTR, None)
            if holder is not None and holder.session is self.session:
                holder.forget(stub)

    def _end_relationship_writes(self) -> None:
        if self.waiting or self.parents or self.links or self.stubs:
            self.waiting = {}
            self.parents = {}
            self.links = {}
            self.stubs = []

    def close(self, *, wrote: bool) -> None:
        """What was not committed is put back (`restore`), then every object is detached; the map
        holds nothing more."""
        self.restore(wrote=wrote)
        for tracker in self.trackers.values():
            tracker.close()
        self.trackers.clear()
        self.by_class.clear()
