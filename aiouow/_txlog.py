"""What the open transaction has written to one entity's table, so that a rollback can put memory back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple


class LogMark(NamedTuple):
    """Where a savepoint stands in a `TransactionLog`: how many steps of each kind it held then."""

    inserts: int = 0
    deletes: int = 0
    updates: int = 0
    switches: int = 0


#: The start of the transaction: what a rollback of the whole transaction undoes back to.
START = LogMark()


class TransactionLog:
    """Rows of one table inserted, deleted and updated by flushes of the open transaction.

    Each `EntityTracker` keeps one; its ``rollback`` reads it to put objects back, its
    ``committed`` clears it.

    Updates are logged as flushes make them (the updated rows' keys, and what their written
    fields held before), at a cost per flush step; what a rollback needs, the value every
    written field of every updated row had when the transaction began, is worked out from that
    log by `updated` only when a rollback asks. It is kept by row, not by object: an object
    expunged after its update and the row loaded again is another object, and the first update
    of the row knows what it held before.

    A savepoint takes a `mark`; rolling back to it reads only what was logged ``since`` the mark
    and then `truncate`s the log there (every reading method takes the mark, `START` for the
    whole transaction).
    """

    __slots__ = ("_deletes", "_inserts", "_switches", "_updates")

    def __init__(self) -> None:
        # (the inserted rows' keys, their objects), per insert step
        self._inserts: list[tuple[list[Any], list[Any]]] = []
        # (insert steps logged before, the deleted rows' keys, their objects)
        self._deletes: list[tuple[int, list[Any], list[Any]]] = []
        # (insert steps logged before, the updated rows' keys, what each held before)
        self._updates: list[tuple[int, list[Any], list[dict[str, Any]]]] = []
        # (the keys, the new objects that took those rows over), per row switch
        self._switches: list[tuple[list[Any], list[Any]]] = []

    def __bool__(self) -> bool:
        """Whether any flush of the open transaction wrote rows."""
        return bool(self._inserts or self._deletes or self._updates or self._switches)

    def mark(self) -> LogMark:
        """Where the log stands now (what a savepoint keeps)."""
        return LogMark(len(self._inserts), len(self._deletes), len(self._updates), len(self._switches))

    def inserted_rows(self, since: LogMark = START) -> dict[Any, int]:
        """The rows inserted since the mark: identity key -> the index of the first insert step that
        inserted the row (built when a rollback asks, once for `updated` and `deleted`)."""
        rows: dict[Any, int] = {}
        for index in range(since.inserts, len(self._inserts)):
            for key in self._inserts[index][0]:
                rows.setdefault(key, index)
        return rows

    def record_inserts(self, keys: list[Any], objs: list[Any]) -> None:
        """Note rows a flush inserted: their identity keys and the objects that stand for them."""
        self._inserts.append((keys, objs))

    def inserted(self, since: LogMark = START) -> Iterator[tuple[Any, Any]]:
        """Each row inserted since the mark: its key and object."""
        for keys, objs in self._inserts[since.inserts :]:
            yield from zip(keys, objs, strict=True)

    def record_switches(self, keys: list[Any], objs: list[Any]) -> None:
        """Note new objects that took over existing rows of their keys (a row switch: the rows
        were updated, logged with `record_updates`, and their old objects with `record_deletes`)."""
        self._switches.append((keys, objs))

    def switched(self, since: LogMark = START) -> Iterator[tuple[Any, Any]]:
        """Each new object that took a row over since the mark: its key and object."""
        for keys, objs in self._switches[since.switches :]:
            yield from zip(keys, objs, strict=True)

    def record_updates(self, keys: list[Any], before: list[dict[str, Any]]) -> None:
        """Note rows a flush updated: ``before[i]`` holds what the written fields of the row of
        ``keys[i]`` held (the log keeps both lists: pass lists nobody changes)."""
        self._updates.append((len(self._inserts), keys, before))

    def updated(self, since: LogMark = START, inserted_rows: dict[Any, int] | None = None) -> dict[Any, dict[str, Any]]:
        """For each row updated since the mark and not inserted since (by identity key; the rows
        of `inserted_rows`, worked out when not given), what every written field held at the
        mark: what a rollback restores."""
        if inserted_rows is None:
            inserted_rows = self.inserted_rows(since)
        out: dict[Any, dict[str, Any]] = {}
        for inserted, keys, before in self._updates[since.updates :]:
            for key, held in zip(keys, before, strict=True):
                first = inserted_rows.get(key) if inserted_rows else None
                if first is not None and first < inserted:
                    continue  # inserted since the mark, before this update: a rollback removes the row
                snap = out.get(key)
                if snap is None:
                    out[key] = dict(held)
                else:
                    for name, value in held.items():
                        snap.setdefault(name, value)  # the first update of the row knows the original
        return out

    def record_deletes(self, keys: list[Any], objs: list[Any]) -> None:
        """Note rows a flush deleted (by identity key) and the objects that stood for them."""
        self._deletes.append((len(self._inserts), keys, objs))

    def deleted(
        self, since: LogMark = START, inserted_rows: dict[Any, int] | None = None
    ) -> Iterator[tuple[Any, Any, bool]]:
        """Each row deleted since the mark: its key and object, and whether it had been inserted
        since the mark (a rollback leaves such an object transient, where the others get their
        rows back)."""
        if inserted_rows is None:
            inserted_rows = self.inserted_rows(since)
        for inserted, keys, objs in self._deletes[since.deletes :]:
            for key, obj in zip(keys, objs, strict=True):
                first = inserted_rows.get(key) if inserted_rows else None
                yield key, obj, first is not None and first < inserted

    def truncate(self, mark: LogMark) -> None:
        """Forget what was logged since the mark (its savepoint was rolled back)."""
        del self._inserts[mark.inserts :]
        del self._deletes[mark.deletes :]
        del self._updates[mark.updates :]
        del self._switches[mark.switches :]

    def clear(self) -> None:
        # (Only what holds something is replaced: a commit clears the log of every transaction.)
        if self._inserts:
            self._inserts = []
        if self._deletes:
            self._deletes = []
        if self._updates:
            self._updates = []
        if self._switches:
            self._switches = []
