"""Lifecycle enums: where an object stands (`ObjectState`), where a session stands (`SessionState`)."""

from __future__ import annotations

import enum

#: The slot of `aiouow.Entity` that says who tracks the object: the `EntityTracker` of the session
#: holding it, a `DetachedState`, or None (a slot, not a ``__dict__`` entry: a sixth key would
#: double the size of a five-field object's dict).
STATE_ATTR = "_aiouow_state"


class ObjectState(enum.Enum):
    """Where an object stands relative to a session.

    - ``TRANSIENT``: not in a session and not in the database.
    - ``PENDING``: added to the session, not flushed yet.
    - ``PERSISTENT``: in the session's identity map, backed by a row.
    - ``DELETED``: marked for deletion (or deleted by a flush) in the current transaction.
    - ``DETACHED``: backed by a row but not in this session (closed, expunged, or another session's).
    """

    TRANSIENT = "transient"
    PENDING = "pending"
    PERSISTENT = "persistent"
    DELETED = "deleted"
    DETACHED = "detached"


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
