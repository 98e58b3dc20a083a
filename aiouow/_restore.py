"""After the transaction ends: what a commit settles and what a rollback puts back, per entity.

Both read the tracker's `TransactionLog` (what the flushes of the transaction wrote) and the
tracker's records of what changed since (see `aiouow._tracking`).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, NamedTuple

from ._changes import originals_of
from ._expire import Expiries, copy_expired, restore_expired
from ._mapping import Mapper, set_state_slot
from ._txlog import START, LogMark

if TYPE_CHECKING:
    from ._tracking import EntityTracker


def after_commit(tracker: EntityTracker) -> None:
    """The transaction committed: objects whose rows a flush deleted leave the session, transient
    (as if no session had seen them), and the log starts again."""
    for obj in tracker.removed.values():  # (each points at the tracker: `forget` takes the others out)
        set_state_slot(obj, None)
    tracker.clear_removed()
    tracker.removed_edits = None
    tracker.log.clear()
    tracker.prune_kept()  # (weak identity map: what was changed is written)


class TrackerMark(NamedTuple):
    """What a savepoint keeps of one tracker: where its log stood, its expired keys then, and what
    the expired objects held (a load of their rows may replace it, and a flush does not log
    that). A savepoint opens right after a flush, so nothing else is unflushed at that moment."""

    log: LogMark
    expired: Expiries
    expired_values: dict[Any, dict[str, Any]]
    removed_edits: int  # (where `EntityTracker.removed_edits` stood)


#: The mark of a tracker made after the savepoint opened: all it holds is since.
UNMARKED = TrackerMark(START, {}, {}, 0)


def mark(tracker: EntityTracker) -> TrackerMark:
    if tracker.removed_edits is None:
        tracker.removed_edits = []
    edits = len(tracker.removed_edits)
    if not tracker.expired:
        return TrackerMark(tracker.log.mark(), {}, {}, edits)
    mapper = tracker.mapper
    held: dict[Any, dict[str, Any]] = {}
    for key, (names, _) in tracker.expired.items():
        obj = tracker.identity.get(key)
        if obj is not None:
            held[key] = copy.deepcopy({name: obj.__dict__[name] for name in names or mapper.names})
    return TrackerMark(tracker.log.mark(), copy_expired(tracker.expired), held, edits)


def restore(tracker: EntityTracker, since: TrackerMark | None = None) -> None:
    """The transaction was rolled back (``since`` None), or rolled back to a savepoint (``since``:
    the tracker's mark at the savepoint): every object of the tracker holds what the database
    holds, and the log forgets what it undid.

    What a flush wrote is undone by row, not by object: for the object that was flushed and,
    when that one was expunged and its row loaded again in the same transaction, for the object
    loaded since.
    """
    log = tracker.log
    if not (
        log
        or tracker.new
        or tracker.changes
        or tracker.deleting
        or tracker.removed
        or tracker.json_text
        or tracker.expired
        or (since is not None and since.expired)
    ):
        return  # nothing written, nothing changed (a close after a commit)
    start = START if since is None else since.log
    edits = tracker.removed_edits
    if since is not None and edits:
        # Assignments since the savepoint to objects deleted by a flush before it, newest first.
        for obj, name, before, added in reversed(edits[since.removed_edits :]):
            obj.__dict__[name] = before
            if added:
                changed = tracker.removed_changes.get(id(obj))
                if changed is not None:
                    changed.pop(name, None)
                    if not changed:
                        del tracker.removed_changes[id(obj)]
        del edits[since.removed_edits :]
    mapper = tracker.mapper
    identity = tracker.identity
    inserted_rows = log.inserted_rows(start)
    updated = log.updated(start, inserted_rows)
    # Rows inserted since no longer exist: every object standing for one becomes transient, its
    # generated key cleared (also one loaded again and deleted since).
    for key, obj in log.inserted(start):
        _make_inserted_transient(tracker, key, obj)
        other = identity.get(key)
        if other is not None:
            _make_inserted_transient(tracker, key, other)
    # New objects that took over the rows of deleted ones leave the session; the rows are back
    # to what they held (below), and so are their old objects.
    switched_in: set[int] = set()
    for key, obj in log.switched(start):
        switched_in.add(id(obj))
        _make_inserted_transient(tracker, key, obj)
    for obj in tracker.new.values():
        set_state_slot(obj, None)
    tracker.new = {}
    tracker.inflight = None
    # Unflushed changes are undone, newest first: those recorded since the last load or flush
    # (and JSON values changed in place), then those that expiring forgot, which are older; the
    # flushed ones below, from the log, older still. Deletes not flushed are forgotten; flushed
    # ones below.
    for key, changed in tracker.changes.items():
        identity[key].__dict__.update(changed)
    for key, text in tracker.json_text.items():
        obj = identity.get(key)
        if obj is not None:
            obj.__dict__.update(originals_of({}, text))
    if tracker.expired or since is not None:
        restore_expired(tracker, None if since is None else since.expired)
    tracker.changes = {}
    tracker.rekeyed = {}
    tracker.deleting = {}
    removed = tracker.removed
    for key, obj, new_row in log.deleted(start, inserted_rows):
        if id(obj) not in removed or removed[id(obj)] is not obj or id(obj) in switched_in:
            continue  # expunged since, or already put back
        _, changes, removed_json = tracker.pop_removed(obj)
        if new_row:  # the row no longer exists: the object is transient, as it is
            _forget_generated_key(mapper, obj)
            set_state_slot(obj, None)
            continue
        obj.__dict__.update(originals_of(changes, removed_json))
        if identity.get(key) is not obj:
            # Another object was loaded for the key since: the row the transaction put there (by
            # raw SQL) is gone, so that object leaves the session, detached.
            tracker.evict(key)
        identity[key] = obj
    if since is None:
        tracker.clear_removed()
    for key, before in updated.items():
        # The row's object in this session now (maybe not the one that was updated: that one may
        # have been expunged and the row loaded again).
        obj = identity.get(key)
        if obj is not None:
            obj.__dict__.update(before)
    if since is not None:
        for key, values in since.expired_values.items():
            obj = identity.get(key)
            if obj is not None:
                obj.__dict__.update(copy.deepcopy(values))
    if mapper.json_columns:
        tracker.json_text = {key: tracker.take_json_text(obj) for key, obj in identity.items()}
    if since is None:
        tracker.removed_edits = None
        log.clear()
    else:
        log.truncate(since.log)
    tracker.prune_kept()  # (weak identity map: the changes it kept objects for are undone)


def _make_inserted_transient(tracker: EntityTracker, key: Any, obj: Any) -> None:
    """``obj`` stood for a row the rollback removes: if the tracker holds it, it becomes transient,
    its generated key cleared, with whatever was recorded for it."""
    if obj._aiouow_state is not tracker or id(obj) in tracker.new:
        return
    if id(obj) not in tracker.removed and tracker.identity.get(key) is not obj:
        return  # (no longer stands for that row)
    tracker.release(obj)
    _forget_generated_key(tracker.mapper, obj)
    set_state_slot(obj, None)


def _forget_generated_key(mapper: Mapper, obj: Any) -> None:
    """A row that no longer exists: clear the values the database gave its object (key, version)."""
    d = obj.__dict__
    gen = mapper.generated_pk
    if gen is not None:
        d[gen.name] = None
    if mapper.version is not None:
        d[mapper.version.name] = None
