"""What the open transaction has written, so that a rollback can put memory back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._mapping import Mapper


class TransactionLog:
    """Objects inserted, deleted and updated by flushes of the open transaction.

    Updates are logged as flushes make them (the updated rows' keys, and what their written
    fields held before), at a cost per flush step; what a rollback needs, the value every
    written field of every updated row had when the transaction began, is worked out from that
    log by `updated` only when a rollback asks. It is kept by row, not by object: an object
    expunged after its update and the row loaded again is another object, and the first update
    of the row knows what it held before.
    """

    __slots__ = ("_deletes", "_inserted_rows", "_inserts", "_rows_of", "_switches", "_updates")

    def __init__(self) -> None:
        # (the mapper, the inserted rows' keys, their objects), per insert step
        self._inserts: list[tuple[Mapper, list[Any], list[Any]]] = []
        # (insert steps logged before, the mapper, the deleted rows' keys, their objects)
        self._deletes: list[tuple[int, Mapper, list[Any], list[Any]]] = []
        # (insert steps logged before, the mapper, the updated rows' keys, what each held before)
        self._updates: list[tuple[int, Mapper, list[Any], list[dict[str, Any]]]] = []
        # (the mapper, the keys, the new objects that took those rows over), per row switch
        self._switches: list[tuple[Mapper, list[Any], list[Any]]] = []
        self._inserted_rows: set[tuple[Mapper, Any]] = set()
        self._rows_of = 0  # how many of the insert steps are in _inserted_rows

    def __bool__(self) -> bool:
        """Whether any flush of the open transaction wrote rows."""
        return bool(self._inserts or self._deletes or self._updates or self._switches)

    def _inserted_among(self, row: tuple[Mapper, Any], first: int) -> bool:
        """Whether the row is one of those the first ``first`` insert steps inserted."""
        if self._rows_of < first:  # built when asked, from the inserts since
            for mapper, keys, _ in self._inserts[self._rows_of : first]:
                self._inserted_rows.update((mapper, key) for key in keys)
            self._rows_of = first
        return row in self._inserted_rows

    def record_inserts(self, mapper: Mapper, keys: list[Any], objs: list[Any]) -> None:
        """Note rows a flush inserted: their identity keys and the objects that stand for them."""
        self._inserts.append((mapper, keys, objs))

    def inserted(self) -> Iterator[tuple[Mapper, Any, Any]]:
        """Each row inserted: its mapper, key and object."""
        for mapper, keys, objs in self._inserts:
            for key, obj in zip(keys, objs, strict=True):
                yield mapper, key, obj

    def record_switches(self, mapper: Mapper, keys: list[Any], objs: list[Any]) -> None:
        """Note new objects that took over existing rows of their keys (a row switch: the rows
        were updated, logged with `record_updates`, and their old objects with `record_deletes`)."""
        self._switches.append((mapper, keys, objs))

    def switched(self) -> Iterator[tuple[Mapper, Any, Any]]:
        """Each new object that took a row over: its mapper, key and object."""
        for mapper, keys, objs in self._switches:
            for key, obj in zip(keys, objs, strict=True):
                yield mapper, key, obj

    def record_updates(self, mapper: Mapper, keys: list[Any], before: list[dict[str, Any]]) -> None:
        """Note rows a flush updated: ``before[i]`` holds what the written fields of the row of
        ``keys[i]`` held (the log keeps both lists: pass lists nobody changes)."""
        self._updates.append((len(self._inserts), mapper, keys, before))

    def updated(self) -> dict[tuple[Mapper, Any], dict[str, Any]]:
        """For each row updated and not inserted by this transaction (by mapper and identity key),
        what every written field held when the transaction began: what a rollback restores."""
        out: dict[tuple[Mapper, Any], dict[str, Any]] = {}
        for inserted, mapper, keys, before in self._updates:
            for key, held in zip(keys, before, strict=True):
                row = (mapper, key)
                if inserted and self._inserted_among(row, inserted):
                    continue  # a rollback removes the row: nothing to restore
                snap = out.get(row)
                if snap is None:
                    out[row] = dict(held)
                else:
                    for name, value in held.items():
                        snap.setdefault(name, value)  # the first update of the row knows the original
        return out

    def record_deletes(self, mapper: Mapper, keys: list[Any], objs: list[Any]) -> None:
        """Note rows a flush deleted (by identity key) and the objects that stood for them."""
        self._deletes.append((len(self._inserts), mapper, keys, objs))

    def deleted_objects(self) -> Iterator[tuple[Mapper, list[Any]]]:
        """The objects of the deleted rows, per flush step, with their mapper."""
        for _, mapper, _, objs in self._deletes:
            yield mapper, objs

    def deleted(self) -> Iterator[tuple[Mapper, Any, Any, bool]]:
        """Each row deleted: its mapper, key and object, and whether this transaction had
        inserted it (a rollback leaves such an object transient, where the others get their
        rows back)."""
        for inserted, mapper, keys, objs in self._deletes:
            for key, obj in zip(keys, objs, strict=True):
                yield mapper, key, obj, bool(inserted) and self._inserted_among((mapper, key), inserted)

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
