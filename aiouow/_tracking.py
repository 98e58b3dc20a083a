"""Change tracking: what one session knows about the objects of one entity.

A session has one `EntityTracker` per entity it has seen. The tracker holds that entity's
identity map (one object per row), its pending objects, the original of every field assigned
since the last load or flush, the objects marked for deletion and those a flush deleted, and
the JSON text of JSON fields (which can change in place, without an assignment). It answers
`ObjectState` for each object it holds, in one place (`EntityTracker.state`).

An object's ``_aiouow_state`` slot says who tracks it:

- the `EntityTracker` of the session that holds it, so that loading and adding an object cost no
  per-object bookkeeping (after the session closes, its objects point at a closed tracker and
  are detached);
- a `DetachedState` once it is detached and has something of its own to remember (changes made
  while detached, JSON text), or was expunged;
- None: transient, as no session has seen it.

What the flush does with the tracker (take its changes, give them back, settle what was
written) is in `aiouow._flush`; what a commit settles and a rollback puts back is in `aiouow._restore`.
"""

from __future__ import annotations

from collections.abc import Container
from typing import TYPE_CHECKING, Any

from ._changes import group_changes, names_of, original_of
from ._detached import DetachedState
from ._mapping import set_state_slot
from ._state import STATE_ATTR, ObjectState
from ._txlog import TransactionLog
from ._types import dump_json
from ._unitofwork import ChangedRows, EntityChanges, UpdateStep
from ._weakmap import WeakBatch, WeakIdentity

if TYPE_CHECKING:
    from ._mapping import Mapper

#: `EntityTracker.lookup` for a key whose object the tracker does not hold.
NOT_HELD: Any = object()

_PERSISTENT, _DELETED, _PENDING = ObjectState.PERSISTENT, ObjectState.DELETED, ObjectState.PENDING
_DETACHED, _TRANSIENT = ObjectState.DETACHED, ObjectState.TRANSIENT


_set_slot = set_state_slot
_HELD = frozenset({ObjectState.PERSISTENT, ObjectState.PENDING})
#: Statements whose objects a tracker keeps as peers for batched relationship loads.
KEPT_BATCHES = 64


class EntityTracker:
    """Every object of one entity that one session holds, and where each stands.

    - ``identity``: identity key -> object, for objects backed by a row (persistent, or marked for
      deletion and not flushed yet);
    - ``new``: pending objects by ``id``, in the order they were added;
    - ``changes``: identity key -> the original of each field assigned since the last load or
      flush (a field set back to its original is no change, which the flush finds out);
    - ``deleting``: identity key -> object marked for deletion;
    - ``removed``: objects whose DELETE a flush of the open transaction ran (by ``id``: a row
      switch can give their key to another object), with their keys, and what a rollback gives
      back to them: the originals of fields assigned since their last load or flush, their JSON
      text (kept in dicts of their own by ``id``, not in an object per deleted object: deleting
      1,000 objects measured 1 ms slower with one);
    - ``inflight``: while a flush inserting pending objects is in flight, what is assigned to them
      meanwhile (by ``id``), so that the next flush sends it;
    - ``json_text``: identity key -> the JSON text of the object's JSON fields at its last load
      or flush (entities with JSON fields only);
    - ``log``: what the open transaction wrote to the table (`TransactionLog`).
    """

    __slots__ = (
        "batches",
        "changes",
        "deleting",
        "expired",
        "fields",
        "identity",
        "inflight",
        "json_text",
        "kept",
        "key_fields",
        "key_type",
        "log",
        "mapper",
        "new",
        "new_edits",
        "pk",
        "rekeyed",
        "removed",
        "removed_changes",
        "removed_edits",
        "removed_json",
        "removed_keys",
        "session",
        "watched",
    )

    def __init__(self, mapper: Mapper, session: object, *, weak: bool = False) -> None:
        self.mapper = mapper
        self.session: object | None = session  # None once the session closed
        self.fields = mapper.column_names  # the names the assignment hook records
        self.pk: str | None = mapper.pk_name  # a single-column key's field (None: composite)
        self.key_fields = frozenset(c.name for c in mapper.pk)
        #: The exact type of a single-column key: the type an identity-map hit in `get` expects.
        self.key_type: type | None = mapper.pk[0].ctype.python_type if self.pk is not None else None
        # ``identity_map="weak"``: objects nobody refers to leave it, changed ones are `kept` until
        # a flush (entities with JSON fields are held: an in-place change needs the object to be seen).
        weak = weak and not mapper.json_columns
        self.identity: dict[Any, Any] = WeakIdentity() if weak else {}  # type: ignore[assignment]
        self.kept: dict[Any, Any] | None = {} if weak else None
        self.new: dict[int, Any] = {}
        #: Counts the changes to ``new`` other than a flush's: none while a flush was in flight
        #: means that it inserted every pending object.
        self.new_edits = 0
        self.changes: dict[Any, dict[str, Any]] = {}
        #: ``id`` -> identity key of the objects whose key fields were assigned (their key is
        #: what it was: a flush refuses the change, naming the field).
        self.rekeyed: dict[int, Any] = {}
        self.deleting: dict[Any, Any] = {}
        self.removed: dict[int, Any] = {}
        self.removed_keys: dict[int, Any] = {}
        self.removed_changes: dict[int, dict[str, Any]] = {}
        self.removed_json: dict[int, dict[str, str]] = {}
        #: While a savepoint is open: every assignment to an object deleted by a flush, (object,
        #: field, value before, whether it added the field to ``removed_changes``), for rolling
        #: back to the savepoint (see `aiouow._restore.TrackerMark`); None otherwise.
        self.removed_edits: list[tuple[Any, str, Any, bool]] | None = None
        self.inflight: dict[int, dict[str, Any]] | None = None
        self.json_text: dict[Any, dict[str, str]] = {}
        #: identity key -> the fields the next load of its row takes from it (None: all), and the
        #: originals of the changes that expiring forgot (for a rollback): see `aiouow._expire`
        self.expired: dict[Any, tuple[frozenset[str] | None, dict[str, Any]]] = {}
        self.log = TransactionLog()
        #: Entities with relationships: the objects of the last statements that loaded some, for
        #: peer batching (see ``_graph``); at most `KEPT_BATCHES`.
        self.batches: list[list[Any] | WeakBatch] = []
        self.watched = mapper.watched  # foreign keys that loaded relationships go through

    # -- relationships ---------------------------------------------------------------------------
    def loaded_batch(self, objs: list[Any]) -> None:
        """Objects one statement loaded (entities with relationships): peers for batched loads."""
        self.batches.append(objs if self.kept is None else WeakBatch(objs))  # (weak: not kept alive by this)
        if len(self.batches) > KEPT_BATCHES:
            del self.batches[0]

    def holds(self, obj: Any) -> bool:
        """Whether the object is persistent or pending here (it may have left since it was seen)."""
        return getattr(obj, STATE_ATTR, None) is self and self.state(obj) in _HELD

    def held(self) -> list[Any]:
        """The persistent and pending objects."""
        return [*self.identity.values(), *self.new.values()]

    def key_assigned(self, obj: Any, name: str) -> None:
        """A foreign key that loaded relationships go through was assigned: they are unloaded."""
        from ._graph import unload_for_key  # (the loading of relationships builds on this module)

        assert self.session is not None
        unload_for_key(self.session._objects, obj, self.mapper, name)  # type: ignore[attr-defined]

    # -- keys and states -------------------------------------------------------------------------
    def key_of(self, obj: Any) -> Any:
        """The identity key of a held object: the key of its row, whatever its fields say now."""
        if self.rekeyed:
            key = self.rekeyed.get(id(obj), NOT_HELD)
            if key is not NOT_HELD:
                return key
        d = obj.__dict__
        return d.get(self.pk) if self.pk is not None else self.mapper.key_of_values(d)

    def state(self, obj: Any) -> ObjectState:
        """Where an object this tracker holds stands: the one place that answers it."""
        if self.session is None:
            return _DETACHED
        if self.new and id(obj) in self.new:
            return _PENDING
        key = self.key_of(obj)
        if self.identity.get(key) is obj:
            return _DELETED if self.deleting and self.deleting.get(key) is obj else _PERSISTENT
        assert id(obj) in self.removed, "an object points at a tracker that does not hold it"
        return _DELETED

    def state_for(self, obj: Any, session: object) -> ObjectState:
        """The object's state as ``session`` sees it (another session's objects are not its own)."""
        if session is self.session:
            return self.state(obj)
        return _TRANSIENT if self.new and id(obj) in self.new else _DETACHED

    def lookup(self, key: Any) -> Any:
        """The identity-map hit of `AsyncSession.get`: the object of ``key``, None when it is marked
        for deletion, `NOT_HELD` when the tracker holds none (a few dict lookups: a hit costs
        0.7-0.9 µs in all on the benchmark machine, against a target of 1 µs)."""
        obj = self.identity.get(key, NOT_HELD)
        if obj is not NOT_HELD and (self.deleting or self.expired):
            if self.deleting.get(key) is obj:
                return None
            if key in self.expired:  # (expired: the database is asked, and the row's values taken)
                return NOT_HELD
        return obj

    def detached_parts(self, obj: Any) -> tuple[Any, dict[str, Any], dict[str, str] | None]:
        """For an object of this closed tracker: its key, no changes, no JSON text (see `close`)."""
        return self.key_of(obj), {}, None

    # -- recording assignments -------------------------------------------------------------------
    def record(self, obj: Any, d: dict[str, Any], name: str, original: Any) -> None:
        """The assignment hook (`Entity.__setattr__`): field ``name`` of ``obj`` (whose ``__dict__``
        is ``d``) is about to replace ``original``. The first original of each field is kept
        until the next flush takes it."""
        pk = self.pk
        key = d.get(pk) if pk is not None else self.mapper.key_of_values(d)
        # Without pending objects, objects deleted by a flush, assigned keys or a closed session,
        # every object held here is backed by a row: no need to look it up in the identity map
        # (the usual case; the lookup measured 0.2-0.4 µs more per assignment).
        if (self.new or self.removed or self.rekeyed or self.session is None) and (
            self.session is None or self.identity.get(key) is not obj
        ):
            self._record_elsewhere(obj, name, original)
            return
        changed = self.changes.get(key)
        if changed is None:
            self.changes[key] = {name: original}
            if self.kept is not None:
                self.kept[key] = obj
        elif name not in changed:
            changed[name] = original
        else:
            return
        if name in self.key_fields:
            self.rekeyed[id(obj)] = key

    def _record_elsewhere(self, obj: Any, name: str, original: Any) -> None:
        """`record` for an object that is not a persistent one of an open session."""
        if self.session is None:  # closed: the object is detached and records its own changes
            detached = DetachedState(self.mapper, self.key_of(obj), {}, None)
            _set_slot(obj, detached)
            detached.record(obj, obj.__dict__, name, original)
            return
        i = id(obj)
        if self.new and i in self.new:  # pending: its INSERT takes its values as they are ...
            if self.inflight is not None:  # ... unless that INSERT is in flight
                changed = self.inflight.setdefault(i, {})
                changed.setdefault(name, original)
            return
        key = self.rekeyed.get(i, NOT_HELD) if self.rekeyed else NOT_HELD
        if key is not NOT_HELD:  # its key fields were assigned: recorded under its key
            self.changes[key].setdefault(name, original)
            return
        assert i in self.removed, "an object points at a tracker that does not hold it"
        changed = self.removed_changes.setdefault(i, {})
        if self.removed_edits is not None:
            self.removed_edits.append((obj, name, original, name not in changed))
        changed.setdefault(name, original)  # (for a rollback to put back)

    # -- lifecycle -------------------------------------------------------------------------------
    def add_new(self, obj: Any) -> None:
        """A transient object becomes pending."""
        _set_slot(obj, self)
        self.new[id(obj)] = obj
        self.new_edits += 1

    def adopt(self, obj: Any, key: Any, changes: dict[str, Any], json_text: dict[str, str] | None) -> None:
        """A detached object joins the session, persistent, with what it recorded while detached."""
        self.identity[key] = obj
        _set_slot(obj, self)
        if changes:
            self.changes[key] = changes
            if self.kept is not None:
                self.kept[key] = obj
            if not self.key_fields.isdisjoint(changes):
                self.rekeyed[id(obj)] = key
        if self.mapper.json_columns:
            self.json_text[key] = json_text if json_text is not None else self.take_json_text(obj)

    def mark_deleted(self, obj: Any) -> None:
        """``delete(obj)``: a pending object is un-added (transient), a persistent one marked."""
        if self.new or self.removed:  # (else every object held here is persistent)
            i = id(obj)
            if i in self.new:
                self.discard_new(obj)
                return
            if i in self.removed:  # deleted by a flush already: nothing to do
                return
        self.deleting[self.key_of(obj)] = obj

    def undelete(self, obj: Any) -> None:
        """A held object marked for deletion is no longer (a link row related again)."""
        if self.deleting:
            key = self.key_of(obj)
            if self.deleting.get(key) is obj:
                del self.deleting[key]

    def discard_new(self, obj: Any) -> None:
        """A pending object leaves the session, transient."""
        del self.new[id(obj)]
        self.new_edits += 1
        if self.inflight:
            self.inflight.pop(id(obj), None)
        _set_slot(obj, None)

    def forget(self, obj: Any) -> None:
        """The object leaves the session (expunge, or its row is gone): a pending one becomes
        transient, one backed by a row detached, keeping its unflushed changes."""
        i = id(obj)
        if self.new and i in self.new:
            self.discard_new(obj)
            return
        _set_slot(obj, DetachedState(self.mapper, *self.release(obj)))

    def release(self, obj: Any) -> tuple[Any, dict[str, Any], dict[str, str] | None]:
        """A held object backed by a row (persistent, marked for deletion, or deleted by a flush)
        leaves every collection of the tracker; returns what was recorded for it: its identity
        key, the originals of its unflushed changes, its JSON text. The caller sets its slot."""
        i = id(obj)
        if i in self.removed:
            return self.pop_removed(obj)
        key = self.key_of(obj)
        self.rekeyed.pop(i, None)
        if self.expired:
            self.expired.pop(key, None)
        if self.identity.get(key) is obj:
            del self.identity[key]
        if self.deleting.get(key) is obj:
            del self.deleting[key]
        return key, self.changes.pop(key, {}), self.json_text.pop(key, None)

    def evict(self, key: Any) -> None:
        """The object held for ``key``, if any, no longer stands for the row: it leaves, detached."""
        obj = self.identity.get(key)
        if obj is not None:
            self.forget(obj)

    def close(self) -> None:
        """The session closed (after putting everything back): every object is detached. Those with
        JSON fields keep their JSON text in a state of their own; the others point at this tracker."""
        if self.mapper.json_columns:
            for key, obj in self.identity.items():
                _set_slot(obj, DetachedState(self.mapper, key, {}, self.json_text.get(key)))
        self.session = None
        self.identity = {}
        self.kept = None
        self.new = {}
        self.changes = {}
        self.json_text = {}

    # -- loading ---------------------------------------------------------------------------------
    def take_json_text(self, obj: Any) -> dict[str, str]:
        d = obj.__dict__
        return {c.name: dump_json(d[c.name]) for c in self.mapper.json_columns}

    def loaded(self, obj: Any) -> None:
        """A new object loaded for an entity with JSON fields: remember their JSON text."""
        self.json_text[self.key_of(obj)] = self.take_json_text(obj)

    def refreshed(self, obj: Any, names: tuple[str, ...], values: Any) -> None:
        """A row read again for a held object: every field without an unflushed change takes the
        row's value; a changed field keeps its new value, and the row's becomes its original."""
        key = self.key_of(obj)
        d = obj.__dict__
        changed = self.changes.get(key, {})
        for name, value in zip(names, values, strict=True):
            if name in changed:
                changed[name] = value
            else:
                d[name] = value
        if self.mapper.json_columns:
            self.json_text[key] = self.take_json_text(obj)

    def discard_changes(self, obj: Any) -> None:
        """Forget the unflushed changes of a held object (``refresh()`` reads the row next)."""
        key = self.key_of(obj)
        self.changes.pop(key, None)
        if self.expired:
            self.expired.pop(key, None)
        self.rekeyed.pop(id(obj), None)

    # -- inspection ------------------------------------------------------------------------------
    def dirty_fields(self, obj: Any) -> tuple[str, ...]:
        """The changed fields of a held persistent object, in column order."""
        i = id(obj)
        if self.removed and i in self.removed:  # deleted by a flush: what was assigned since its last load or flush
            return names_of(self.mapper, obj, i, self.removed_changes.get(i, {}), self.removed_json.get(i))
        key = self.key_of(obj)
        if self.identity.get(key) is not obj:
            return ()
        return names_of(self.mapper, obj, key, self.changes.get(key, {}), self.json_text.get(key))

    def original_value(self, obj: Any, name: str) -> Any:
        """The value of field ``name`` at the last load or flush (the current one for new objects)."""
        if self.session is None or (self.new and id(obj) in self.new):
            return obj.__dict__[name]
        i = id(obj)
        if self.removed and i in self.removed:
            changed, json_text = self.removed_changes.get(i, {}), self.removed_json.get(i)
        else:
            key = self.key_of(obj)
            changed, json_text = self.changes.get(key, {}), self.json_text.get(key)
        return original_of(self.mapper, obj, name, changed, json_text)

    def dirty_objects(self) -> list[Any]:
        """The persistent objects with changes not flushed yet."""
        rows = self.changes_to_flush()
        return [] if rows is None else [obj for group in rows.updates.values() for obj in group.objs]

    def prune_kept(self) -> None:
        """(Weak identity map) Let go of the changed objects whose changes a flush has written."""
        if self.kept:
            self.kept = {key: obj for key, obj in self.kept.items() if key in self.changes}

    def has_changes(self) -> bool:
        """Whether a flush may find something to send (it finds out what)."""
        return bool(self.new or self.changes or self.deleting or self.json_text)

    # -- flushing --------------------------------------------------------------------------------
    def changes_to_flush(self, held_back: Container[int] | None = None) -> EntityChanges | None:
        """What a flush would send for this entity, as values (read only: `take` takes them). The
        changed objects are grouped by the fields that changed; objects marked for deletion are
        deletes, whatever was assigned to them. ``held_back``: pending objects (by ``id``) left
        to a later round of the flush (they wait for their parents' generated keys)."""
        updates: dict[tuple[str, ...], ChangedRows] = {}
        json_text = self.json_text
        if json_text:  # every object can have changed (in place): each one's recorded changes, or none
            no_change: dict[str, Any] = {}
            changes = self.changes
            updates = group_changes(
                self.mapper,
                self.identity,
                ((key, changes.get(key, no_change)) for key in json_text.keys() | changes.keys()),
                json_text,
                self.deleting,
            )
        elif self.changes:
            updates = group_changes(self.mapper, self.identity, self.changes.items(), None, self.deleting)
        new = list(self.new.values())
        if held_back:
            new = [obj for obj in new if id(obj) not in held_back]
        if not (new or updates or self.deleting):
            return None
        return EntityChanges(self.mapper, new, updates, dict(self.deleting))

    def take(self, changes: EntityChanges) -> None:
        """The flush is planned: its changes are taken from the tracker (those of fields set back
        go too), and assignments to the objects it inserts are recorded while it is in flight."""
        self.drop_changes()
        if changes.new:
            self.inflight = {}

    def drop_changes(self) -> None:
        """Forget the recorded changes a flush takes (or that set fields back, when it takes none);
        an object marked for deletion keeps its changes, for a rollback to put back."""
        if self.changes:
            if self.deleting:
                self.changes = {k: v for k, v in self.changes.items() if k in self.deleting}
            else:
                self.changes = {}

    def untake(self, changes: EntityChanges) -> None:
        """The flush failed: what it took is recorded again, merged with what was assigned since."""
        for group in changes.updates.values():
            for obj, key, original in zip(group.objs, group.keys, group.originals, strict=True):
                holder = obj._aiouow_state
                if holder is self and self.identity.get(key) is obj:
                    now = self.changes.get(key)
                    self.changes[key] = original if now is None else {**now, **original}
                elif isinstance(holder, DetachedState):  # expunged while the flush was in flight
                    holder.changes = {**holder.changes, **original}
        self.inflight = None

    def settle_inserted(self, objs: list[Any], generated: list[Any] | None, every_new: bool) -> list[Any]:
        """The rows of ``objs`` exist (``generated``: their generated keys): the objects are
        persistent. Returns their identity keys."""
        mapper = self.mapper
        gen = mapper.generated_pk
        version = mapper.version
        keys: list[Any]
        if generated is not None and gen is not None and version is None:  # the usual case
            keys = generated
            name = gen.name
            for obj, key in zip(objs, keys, strict=True):
                obj.__dict__[name] = key
        else:  # the values the database gave (generated key, first version), then the keys
            keys = []
            for i, obj in enumerate(objs):
                d = obj.__dict__
                if generated is not None and gen is not None:
                    d[gen.name] = generated[i]
                if version is not None:
                    d[version.name] = 1
                keys.append(mapper.key_of_values(d))
        self.identity.update(zip(keys, objs, strict=True))
        if every_new:  # (nothing was added or expunged while the flush was in flight)
            self.new = {}
        else:
            for obj in objs:
                self.new.pop(id(obj), None)
                if obj._aiouow_state is not self:  # expunged while in flight: its row exists, so it is back
                    _set_slot(obj, self)
        inflight, self.inflight = self.inflight, None
        if inflight:  # assignments made while the INSERT was in flight: changes for the next flush
            for obj, key in zip(objs, keys, strict=True):
                changed = inflight.pop(id(obj), None)
                if changed is not None:
                    self.changes[key] = changed
            self.inflight = inflight or None  # (objects of another step of this flush)
        if mapper.json_columns:
            for obj, key in zip(objs, keys, strict=True):
                self.json_text[key] = self.take_json_text(obj)
        return keys

    def settle_updated(self, step: UpdateStep) -> list[dict[str, Any]]:
        """The rows of an update step hold the new values: versions move on, JSON text is taken
        again. Returns what the written fields held before, per row (for the transaction log)."""
        befores = self._befores(step)
        if self.expired:  # (a change that expiring forgot left memory unlike the row: the row's value)
            befores = [self._row_before(key, before) for key, before in zip(step.keys, befores, strict=True)]
        return befores

    def _row_before(self, key: Any, before: dict[str, Any]) -> dict[str, Any]:
        entry = self.expired.get(key)
        if not entry or not entry[1]:
            return before
        originals = entry[1]
        written = [name for name in before if name in originals]
        if not written:
            return before
        out = dict(before)
        for name in written:
            out[name] = originals.pop(name)  # (the row holds the new value now: nothing more to give back)
        return out

    def _befores(self, step: UpdateStep) -> list[dict[str, Any]]:
        mapper = self.mapper
        version = mapper.version
        if version is None and not mapper.json_columns:
            return step.originals  # (a field set back to its original holds that value anyway)
        names = tuple(c.name for c in step.columns)
        befores: list[dict[str, Any]] = []
        for obj, key, original in zip(step.objs, step.keys, step.originals, strict=True):
            json_text = self.json_text.get(key)
            before = {name: original_of(mapper, obj, name, original, json_text) for name in names}
            if version is not None:
                before[version.name] = obj.__dict__[version.name]
                obj.__dict__[version.name] += 1
            if json_text is not None:
                self.json_text[key] = self.take_json_text(obj)
            befores.append(before)
        return befores

    def settle_deleted(self, keys: list[Any], objs: list[Any]) -> None:
        """The rows of ``keys`` are gone: their objects leave the identity map, deleted by a flush."""
        identity, deleting, removed, removed_keys = self.identity, self.deleting, self.removed, self.removed_keys
        gone: list[tuple[Any, Any]] = []  # (key, object) of those with recorded changes or JSON text
        keep = bool(self.changes or self.json_text or self.rekeyed)
        if self.expired:  # (the key may name another object's row later)
            for key in keys:
                self.expired.pop(key, None)
        for key, obj in zip(keys, objs, strict=True):
            held = identity.pop(key, None)
            if held is not obj:  # expunged while the flush was in flight (the key may hold another now)
                if held is not None:
                    identity[key] = held
                continue
            deleting.pop(key, None)  # (marked for deletion, it was the identity map's object of its key)
            removed[id(obj)] = obj
            removed_keys[id(obj)] = key
            if keep:
                gone.append((key, obj))
        for key, obj in gone:
            i = id(obj)
            changed = self.changes.pop(key, None)
            if changed is not None:
                self.removed_changes[i] = changed
            json_text = self.json_text.pop(key, None)
            if json_text is not None:
                self.removed_json[i] = json_text
            self.rekeyed.pop(i, None)

    def pop_removed(self, obj: Any) -> tuple[Any, dict[str, Any], dict[str, str] | None]:
        """An object deleted by a flush is no longer held: its key, changes since and JSON text."""
        i = id(obj)
        del self.removed[i]
        return self.removed_keys.pop(i), self.removed_changes.pop(i, {}), self.removed_json.pop(i, None)

    def clear_removed(self) -> None:
        if self.removed:
            self.removed = {}
            self.removed_keys = {}
            self.removed_changes = {}
            self.removed_json = {}

    def row_of(self, obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
        """What the fields ``names`` of a held persistent object hold in its row: their values, or
        the originals of those changed since the last load or flush."""
        key = self.key_of(obj)
        changed = self.changes.get(key, {})
        json_text = self.json_text.get(key)
        return {name: original_of(self.mapper, obj, name, changed, json_text) for name in names}
