"""What the open transaction has written to one entity's table, so that a rollback can put memory back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


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
    """

    __slots__ = ("_deletes", "_inserted_rows", "_inserts", "_rows_of", "_switches", "_updates")

    def __init__(self) -> None:
        # (the inserted rows' keys, their objects), per insert step
        self._inserts: list[tuple[list[Any], list[Any]]] = []
        # (insert steps logged before, the deleted rows' keys, their objects)
        self._deletes: list[tuple[int, list[Any], list[Any]]] = []
        # (insert steps logged before, the updated rows' keys, what each held before)
        self._updates: list[tuple[int, list[Any], list[dict[str, Any]]]] = []
        # (the keys, the new objects that took those rows over), per row switch
        self._switches: list[tuple[list[Any], list[Any]]] = []
        self._inserted_rows: set[Any] = set()
        self._rows_of = 0  # how many of the insert steps are in _inserted_rows

    def __bool__(self) -> bool:
        """Whether any flush of the open transaction wrote rows."""
        return bool(self._inserts or self._deletes or self._updates or self._switches)

    def _inserted_among(self, key: Any, first: int) -> bool:
        """Whether the row of ``key`` is one of those the first ``first`` insert steps inserted."""
        if self._rows_of < first:  # built when asked, from the inserts since
            for keys, _ in self._inserts[self._rows_of : first]:
                self._inserted_rows.update(keys)
            self._rows_of = first
        return key in self._inserted_rows

    def record_inserts(self, keys: list[Any], objs: list[Any]) -> None:
        """Note rows a flush inserted: their identity keys and the objects that stand for them."""
        self._inserts.append((keys, objs))

    def inserted(self) -> Iterator[tuple[Any, Any]]:
        """Each row inserted: its key and object."""
        for keys, objs in self._inserts:
            yield from zip(keys, objs, strict=True)

    def record_switches(self, keys: list[Any], objs: list[Any]) -> None:
        """Note new objects that took over existing rows of their keys (a row switch: the rows
        were updated, logged with `record_updates`, and their old objects with `record_deletes`)."""
        self._switches.append((keys, objs))

    def switched(self) -> Iterator[tuple[Any, Any]]:
        """Each new object that took a row over: its key and object."""
        for keys, objs in self._switches:
            yield from zip(keys, objs, strict=True)

    def record_updates(self, keys: list[Any], before: list[dict[str, Any]]) -> None:
        """Note rows a flush updated: ``before[i]`` holds what the written fields of the row of
        ``keys[i]`` held (the log keeps both lists: pass lists nobody changes)."""
        self._updates.append((len(self._inserts), keys, before))

    def updated(self) -> dict[Any, dict[str, Any]]:
        """For each row updated and not inserted by this transaction (by identity key), what every
        written field held when the transaction began: what a rollback restores."""
        out: dict[Any, dict[str, Any]] = {}
        for inserted, keys, before in self._updates:
            for key, held in zip(keys, before, strict=True):
                if inserted and self._inserted_among(key, inserted):
                    continue  # a rollback removes the row: nothing to restore
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

    def deleted(self) -> Iterator[tuple[Any, Any, bool]]:
        """Each row deleted: its key and object, and whether this transaction had inserted it (a
        rollback leaves such an object transient, where the others get their rows back)."""
        for inserted, keys, objs in self._deletes:
            for key, obj in zip(keys, objs, strict=True):
                yield key, obj, bool(inserted) and self._inserted_among(key, inserted)

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
        if self._rows_of:
            self._inserted_rows = set()
            self._rows_of = 0
