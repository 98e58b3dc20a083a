"""What the open transaction has written, so that a rollback can put memory back."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from ._state import InstanceState

if TYPE_CHECKING:
    from ._mapping import Mapper


class SessionState(enum.Enum):
    """The lifecycle of a session.

    ``IDLE``: no transaction open (no connection held). ``ACTIVE``: a transaction is open on a
    connection. ``FAILED``: a statement (of a flush, a commit, a query) failed or was interrupted
    and the database transaction was rolled back; only ``rollback()`` or ``close()`` are accepted.
    ``CLOSED``: finished for good.
    """

    IDLE = "idle"
    ACTIVE = "active"
    FAILED = "failed"
    CLOSED = "closed"


class TransactionLog:
    """Objects inserted, deleted and updated by flushes of the open transaction.

    ``updated`` keeps, for each row a flush updated (by mapper and identity key), the value every
    written field had when the transaction began: that is what the database holds again after a
    rollback. It is kept by row, not by object: an object expunged after its update and the row
    loaded again is another object, and the first update of the row knows what it held before.
    """

    __slots__ = ("_inserted_rows", "_rows_of", "deleted", "deleted_new_rows", "inserted", "updated")

    def __init__(self) -> None:
        self.inserted: list[InstanceState] = []
        self.deleted: list[InstanceState] = []
        self.deleted_new_rows: set[InstanceState] = set()  # of ``deleted``: rows this transaction inserted
        self.updated: dict[tuple[Mapper, Any], dict[str, Any]] = {}
        self._inserted_rows: set[tuple[Mapper, Any]] = set()
        self._rows_of = 0  # how many of ``inserted`` are in _inserted_rows

    def inserted_here(self, row: tuple[Mapper, Any]) -> bool:
        """Whether the row was inserted by this transaction (a rollback removes it: nothing to restore)."""
        if not self.inserted:
            return False
        if self._rows_of != len(self.inserted):  # built when asked, from the inserts since
            self._inserted_rows.update((st.mapper, st.key) for st in self.inserted[self._rows_of :])
            self._rows_of = len(self.inserted)
        return row in self._inserted_rows

    def record_update(self, st: InstanceState, before: dict[str, Any]) -> None:
        """Note what an updated row held (``before`` becomes the log's: pass a dict nobody changes)."""
        row = (st.mapper, st.key)
        if self.inserted_here(row):
            return
        snap = self.updated.get(row)
        if snap is None:
            self.updated[row] = before
        else:
            for name, value in before.items():
                snap.setdefault(name, value)  # the first update of the row knows the original

    def record_deletes(self, states: list[InstanceState]) -> None:
        """Rows a flush deleted; those this transaction had inserted are noted (a rollback leaves
        their objects transient, where the others get their rows back)."""
        self.deleted.extend(states)
        if self.inserted:
            for st in states:
                if self.inserted_here((st.mapper, st.key)):
                    self.deleted_new_rows.add(st)

    def clear(self) -> None:
        self.inserted = []
        self.deleted = []
        self.deleted_new_rows = set()
        self.updated = {}
        self._inserted_rows = set()
        self._rows_of = 0
