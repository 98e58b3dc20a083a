"""Lifecycle enums: where an object stands (`ObjectState`), where a session stands (`SessionState`)."""

from __future__ import annotations

import asyncio
import enum

from .errors import ConcurrentUseError, SessionClosedError, SessionError

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


_IDLE, _ACTIVE, _FAILED, _CLOSED = SessionState.IDLE, SessionState.ACTIVE, SessionState.FAILED, SessionState.CLOSED


class SessionLifecycle:
    """Where one session stands: its `SessionState`, what made it FAILED, the event loop it
    belongs to, and the checks every operation makes before it starts."""

    __slots__ = ("commit_unknown", "failure", "in_block", "listening", "loop", "state", "transactions_ended")

    def __init__(self) -> None:
        self.state = _IDLE
        self.failure: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.commit_unknown = False
        #: Counts the transactions ended by commit() or rollback(): a begin() block checks that
        #: nothing ended the transaction it began.
        self.transactions_ended = 0
        self.in_block = False  # whether a begin() block is open
        #: While a listener runs inside an operation that holds the session's lock: its task and
        #: event (see `aiouow._dispatch`); that task's IO operations on the session are refused.
        self.listening: tuple[object, str] | None = None

    def check(self, op: str) -> None:
        """Refuse ``op`` in a closed or failed session, saying why."""
        state = self.state
        if state is _CLOSED:
            raise SessionClosedError(f"cannot {op}: the session is closed")
        if state is _FAILED:
            raise SessionError(
                f"cannot {op}: an earlier statement of this session failed or was interrupted, and its "
                f"transaction was rolled back ({type(self.failure).__name__}: {self.failure}); "
                "call rollback() or close() first"
            )

    def enter(self, op: str) -> None:
        """`check`, on the session's own event loop (bound on first use)."""
        if self.listening is not None:
            self._refuse_in_listener(op)
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            if self.loop is not None:
                raise ConcurrentUseError(
                    f"cannot {op}: the session belongs to another event loop (sessions are not thread-safe)"
                )
            self.loop = loop
        state = self.state
        if state is not _IDLE and state is not _ACTIVE:
            self.check(op)

    def _refuse_in_listener(self, op: str) -> None:
        assert self.listening is not None
        task, event = self.listening
        if task is asyncio.current_task():
            raise SessionError(
                f"cannot {op} inside a {event!r} listener: the session is in the middle of the operation that "
                "called it (make changes in memory instead: a before_flush or before_* listener's changes are "
                "written by the same flush; do IO in an after_commit listener, or before the operation)"
            )

    def enter_to_end(self, op: str) -> None:
        """`enter` for rollback() and close(), which a FAILED session accepts."""
        if self.listening is not None:
            self._refuse_in_listener(op)
        if self.state is _FAILED:
            self.loop = self.loop or asyncio.get_running_loop()
        elif self.state is not _CLOSED:
            self.enter(op)

    def failed(self, exc: BaseException, *, commit_unknown: bool = False) -> None:
        self.failure = exc
        self.state = _FAILED
        self.commit_unknown = commit_unknown

    def ended(self) -> None:
        """The transaction ended by commit() or rollback(): the session is IDLE."""
        self.transactions_ended += 1
        self.state = _IDLE
        self.failure = None
        self.commit_unknown = False

    def closed(self) -> bool:
        # A method call, so that type checkers do not narrow the state across awaits.
        return self.state is _CLOSED
