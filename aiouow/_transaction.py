"""What the open transaction has written, so that a rollback can put memory back."""

from __future__ import annotations

import enum
from typing import Any

from ._state import InstanceState


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

    ``updated`` keeps, for each object a flush updated, the value every written field had
    when the transaction began: that is what the database holds again after a rollback.
    """

    __slots__ = ("deleted", "inserted", "updated")

    def __init__(self) -> None:
        self.inserted: list[InstanceState] = []
        self.deleted: list[InstanceState] = []
        self.updated: dict[InstanceState, dict[str, Any]] = {}

    def record_update(self, st: InstanceState, before: dict[str, Any]) -> None:
        snap = self.updated.get(st)
        if snap is None:
            self.updated[st] = dict(before)
        else:
            for name, value in before.items():
                snap.setdefault(name, value)

    def clear(self) -> None:
        self.inserted = []
        self.deleted = []
        self.updated = {}

    def __bool__(self) -> bool:
        return bool(self.inserted or self.deleted or self.updated)
