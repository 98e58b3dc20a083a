"""What the database's ``ON DELETE`` did, mirrored in the session's objects after a flush.

When a flush deletes rows, the database applies the ``on_delete`` of the foreign keys that
reference them: ``cascade`` deletes the referencing rows (and, in turn, theirs), ``set null``
clears their keys. The objects the session holds for those rows must agree: the cascaded ones
become deleted by the flush (TRANSIENT after the commit, like any committed delete), the others
get ``None`` in the key. Both are written to the transaction log, so a rollback puts them back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._mapping import Mapper
    from ._tracking import EntityTracker


def mirror_on_delete(
    trackers: Iterable[EntityTracker], deleted: list[tuple[Mapper, list[Any]]]
) -> tuple[list[tuple[Mapper, list[Any]]], list[tuple[Mapper, str, list[Any]]]]:
    """Apply ``cascade`` and ``set null`` to the held objects that referenced the rows ``deleted``
    ((mapper, identity keys) per delete step); returns the objects deleted by a cascade, and those
    whose key was set to NULL (with the field)."""
    held = [t for t in trackers if any(c.on_delete in ("cascade", "set null") for c, _, _ in t.mapper.foreign_keys)]
    cascaded: list[tuple[Mapper, list[Any]]] = []
    nulled: list[tuple[Mapper, str, list[Any]]] = []
    work = [(mapper, set(keys)) for mapper, keys in deleted if len(mapper.pk) == 1 and keys]
    while work and held:
        parent, gone = work.pop()
        for tracker in held:
            for column, table, _ in tracker.mapper.foreign_keys:
                if table != parent.table or column.on_delete not in ("cascade", "set null"):
                    continue
                name = column.name
                hits = [(key, obj) for key, obj in tracker.identity.items() if obj.__dict__.get(name) in gone]
                if not hits:
                    continue
                keys, objs = [k for k, _ in hits], [o for _, o in hits]
                if column.on_delete == "cascade":
                    tracker.settle_deleted(keys, objs)
                    tracker.log.record_deletes(keys, objs)
                    work.append((tracker.mapper, set(keys)))
                    cascaded.append((tracker.mapper, objs))
                else:
                    tracker.log.record_updates(keys, [{name: o.__dict__[name]} for o in objs])
                    for obj in objs:
                        obj.__dict__[name] = None  # (what the row holds now: not a change to flush)
                    nulled.append((tracker.mapper, name, objs))
    return cascaded, nulled
