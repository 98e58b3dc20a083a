"""One flush: take the trackers' changes and plan them, then settle what the database wrote, or abort.

The session runs a flush in three moves (see "The life of a flush" in ``docs/internals.md``):
`take` (before any await: plan every change, values checked, then take the changes from the
trackers), the run of the plan's steps on the transaction's connection, then `Flush.settle` when
the steps succeeded or `Flush.abort` when they did not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._cascade import resolve_waiting
from ._graphsync import keep_in_step
from ._ondelete import mirror_on_delete
from ._unitofwork import DeleteStep, EntityChanges, FlushPlan, InsertStep, UpdateStep, expected_count, plan_flush
from .errors import StaleDataError, with_details

if TYPE_CHECKING:
    from ._identity import IdentityMap
    from ._mapping import Mapper
    from ._stats import StatsRecorder
    from ._tracking import EntityTracker
    from .dialects._base import Dialect


class Flush:
    """A planned flush, and what it took from each tracker, until it is settled or aborted."""

    __slots__ = ("more", "objects", "plan", "stats", "taken")

    def __init__(
        self,
        plan: FlushPlan,
        taken: list[tuple[EntityTracker, EntityChanges, int]],
        stats: StatsRecorder,
        objects: IdentityMap,
        *,
        more: bool = False,
    ) -> None:
        self.objects = objects  # the session's identity map (for the relationships kept in step)
        #: Objects wait for keys this flush generates: the session takes another round after it.
        self.more = more
        self.plan = plan
        #: (tracker, the changes taken from it, its count of edits to pending objects then)
        self.taken = taken
        self.stats = stats

    def check(self, results: Sequence[Any]) -> None:
        """Every update and versioned delete matched the rows it had to (else `StaleDataError`)."""
        for step, result in zip(self.plan.steps, results, strict=True):
            expected = expected_count(step)
            if expected is not None and result != expected:
                versioned = not isinstance(step, InsertStep) and step.version is not None
                what = "update" if isinstance(step, UpdateStep) else "delete"
                why = "a row was changed or deleted by another transaction" if versioned else "a row no longer exists"
                raise with_details(
                    StaleDataError(
                        f"cannot {what} {step.mapper.name}: expected to match {expected} row(s) in "
                        f"{step.mapper.table}, matched {result} ({why})"
                    ),
                    entity=step.mapper.name,
                )

    def abort(self) -> None:
        """The flush did not happen: its changes are recorded again (with any made meanwhile)."""
        for tracker, changes, _ in self.taken:
            tracker.untake(changes)

    def settle(self, results: Sequence[Any]) -> None:
        """The flush succeeded (``results``: per step, an insert's generated keys or a row count):
        record what the database now holds, and what was written in each tracker's log."""
        trackers = {tracker.mapper: (tracker, edits) for tracker, _, edits in self.taken}
        for step, result in zip(self.plan.steps, results, strict=True):
            tracker, edits = trackers[step.mapper]
            # The flush inserted every pending object unless some were added or removed meanwhile.
            every_new = edits == tracker.new_edits
            log = tracker.log
            if isinstance(step, InsertStep):
                log.record_inserts(tracker.settle_inserted(step.objs, result, every_new), step.objs)
            elif isinstance(step, UpdateStep) and step.replaced is not None:
                # A row switch: the new objects took over the rows of the deleted ones. For a
                # rollback the rows were updated (what they held is the deleted objects' row),
                # the old objects deleted, and the new ones leave the session.
                replaced = step.replaced
                names = tuple(c.name for c in step.columns)
                log.record_updates(step.keys, [tracker.row_of(obj, names) for obj in replaced.objs])
                tracker.settle_deleted(replaced.ids, replaced.objs)
                log.record_deletes(replaced.ids, replaced.objs)
                log.record_switches(tracker.settle_inserted(step.objs, None, every_new), step.objs)
                version = step.mapper.version
                if version is not None:
                    for obj, old in zip(step.objs, replaced.objs, strict=True):
                        obj.__dict__[version.name] = old.__dict__[version.name] + 1
            elif isinstance(step, UpdateStep):
                log.record_updates(step.keys, tracker.settle_updated(step))
            elif isinstance(step, DeleteStep):
                tracker.settle_deleted(step.ids, step.objs)
                log.record_deletes(step.ids, step.objs)
        for tracker, _, _ in self.taken:
            tracker.inflight = None
            if tracker.kept:
                tracker.prune_kept()
        # Rows inserted or deleted change what relationships into their entity hold; updates do not
        # (a foreign key assigned is kept in step, or unloads what goes through it, when assigned).
        inserted: list[tuple[Mapper, list[Any]]] = []
        deleted: list[tuple[Mapper, list[Any]]] = []
        deleted_keys: list[tuple[Mapper, list[Any]]] = []  # (what the database's ON DELETE acts on)
        for step in self.plan.steps:
            if isinstance(step, InsertStep):
                inserted.append((step.mapper, step.objs))
            elif isinstance(step, DeleteStep):
                deleted.append((step.mapper, step.objs))
                deleted_keys.append((step.mapper, step.ids))
            elif step.replaced is not None:
                deleted.append((step.mapper, step.replaced.objs))
                inserted.append((step.mapper, step.objs))
        nulled: list[tuple[Mapper, str, list[Any]]] = []
        if deleted_keys:
            cascaded, nulled = mirror_on_delete(self.objects, deleted_keys)
            deleted.extend(cascaded)
        if inserted or deleted:
            keep_in_step(self.objects, inserted, deleted, nulled)
        self.stats.flushes += 1


def take(objects: IdentityMap, dialect: Dialect, stats: StatsRecorder) -> Flush | None:
    """The first half of a flush, before any await: plan it (values are checked here, and a
    `DataError` leaves everything as it was), then take the changes. None: nothing to send.

    Objects whose foreign keys wait for a parent's generated key (relationship writes) are left
    to a later round: the flush's ``more`` says that the session must take another after this
    one has run (see `AsyncSession._rounds_before_the_last`)."""
    held_back = resolve_waiting(objects) if objects.waiting or objects.parents else None
    found: list[tuple[EntityTracker, EntityChanges]] = []
    for tracker in objects:
        if tracker.has_changes():
            changes = tracker.changes_to_flush(held_back)
            if changes is not None:
                found.append((tracker, changes))
            else:  # only fields set back to their originals (if anything): nothing to keep
                tracker.drop_changes()
    if not found:
        return None
    plan = plan_flush([changes for _, changes in found], dialect)  # may raise DataError
    for tracker, changes in found:
        tracker.take(changes)
    if plan.empty:
        return None
    # (edits of -1: pending objects were held back, so the flush does not insert every one)
    taken = [(t, c, -1 if held_back and len(c.new) < len(t.new) else t.new_edits) for t, c in found]
    return Flush(plan, taken, stats, objects, more=bool(objects.waiting or objects.parents))
