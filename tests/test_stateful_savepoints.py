"""The session state machine of ``test_stateful`` with savepoints: open, release and roll back
(by ``sp.rollback()`` or by an exception leaving the block), to a depth of three, mixed with every
other rule; restart savepoints (``run_transaction(restart_savepoint=)``) too, and their restart.
After each step the same invariants check every object's state, values, dirty fields
and originals, the session's collections and connection, and the committed rows.

The model keeps, per open savepoint, a copy of itself taken when the savepoint opened (after its
flush). Rolling back to it puts that copy back for the objects the session held then; objects
added since are transient (their generated key cleared, the rest as the program left it); objects
loaded since stay, holding their row as it was at the savepoint. A unique violation inside a
savepoint rolls back to the innermost one and the transaction goes on; ``commit()`` inside one is
refused. ``expunge()`` is not a rule while a savepoint is open: leaving the session is not undone
by a savepoint's rollback (documented), and the model does not follow that.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from aiouow import Savepoint, SessionState
from aiouow.errors import SessionError, UniqueViolationError

from .models import User
from .test_stateful import (
    DETACHED,
    PENDING,
    PERSISTENT,
    TRANSIENT,
    Rows,
    SessionMachine,
    Tracked,
    fields_of,
    run_machine,
)

#: What the model keeps of one object at a savepoint.
Kept = tuple[Any, dict[str, Any], dict[str, Any] | None, Any, bool, bool, set[str] | None]


class SavepointMachine(SessionMachine):
    """`SessionMachine` with savepoint steps."""

    def __init__(self, dialect: str) -> None:
        super().__init__(dialect)
        self.savepoints: list[tuple[Savepoint, dict[int, Kept], Rows]] = []

    # -- the savepoint rules ----------------------------------------------------------------------
    @precondition(lambda self: self.session_state is not SessionState.FAILED and len(self.savepoints) < 3)
    @rule(restart=st.booleans())
    def open_savepoint(self, restart: bool) -> None:
        """begin_nested(): flush, SAVEPOINT; the model keeps a copy of itself. Or a restart savepoint
        (CockroachDB's retry protocol, as run_transaction(restart_savepoint=) opens it)."""
        name = f"restart_{len(self.savepoints)}" if restart else None
        sp = Savepoint(self.s, restart_name=name) if restart else self.s.begin_nested()
        self.run(sp.__aenter__())
        self.model_flush()
        self.session_state = SessionState.ACTIVE
        kept = {
            id(m): (
                m.state,
                copy.deepcopy(m.values),
                copy.deepcopy(m.loaded),
                m.key,
                m.flushed_delete,
                m.inserted_in_tx,
                set(m.expired) if m.expired is not None else None,
            )
            for m in self.objects
        }
        self.savepoints.append((sp, kept, copy.deepcopy(self.txdb)))

    @precondition(lambda self: bool(self.savepoints))
    @rule()
    def release_savepoint(self) -> None:
        """Leaving the block normally: flush, RELEASE; the work joins the enclosing level."""
        sp, _, _ = self.savepoints.pop()
        self.run(sp.__aexit__(None, None, None))
        self.model_flush()

    @precondition(lambda self: bool(self.savepoints))
    @rule(by_exception=st.booleans())
    def rollback_savepoint(self, by_exception: bool) -> None:
        """sp.rollback(), or an exception leaving the block: memory as it was at the savepoint."""
        sp, _, _ = self.savepoints[-1]
        if by_exception:
            self.run(sp.__aexit__(RuntimeError, RuntimeError("leaving the block"), None))
        else:
            self.run(sp.rollback())
        self.model_rollback_to_innermost()

    @precondition(
        lambda self: (
            bool(self.savepoints) and self.savepoints[-1][0].restart and self.session_state is not SessionState.FAILED
        )
    )
    @rule()
    def restart_at_savepoint(self) -> None:
        """A restart savepoint's restart: rolled back to, memory too, and still open for the work
        to run again."""
        sp, kept, txdb = self.savepoints[-1]
        self.run(sp.restart_work())
        self.model_rollback_to_innermost()
        self.savepoints.append((sp, kept, txdb))

    def model_rollback_to_innermost(self) -> None:
        _, kept, txdb = self.savepoints.pop()
        for m in self.objects:
            held = kept.get(id(m))
            if held is not None and held[0] not in (TRANSIENT, DETACHED):
                state, values, loaded, key, flushed_delete, inserted, expired = copy.deepcopy(held)
                m.state, m.values, m.loaded, m.key = state, values, loaded, key
                m.flushed_delete, m.inserted_in_tx, m.expired = flushed_delete, inserted, expired
            elif held is None and m.owned and m.key is not None and not m.inserted_in_tx and m.key in txdb[m.entity]:
                m.state = PERSISTENT  # loaded since: it stays, holding its row as at the savepoint
                m.load(txdb[m.entity][m.key])
                m.flushed_delete = False
            elif m.owned:  # added since: transient again, its generated key cleared
                m.state, m.key = TRANSIENT, None
                m.flushed_delete = m.inserted_in_tx = False
                m.expired = None
                if m.entity is User:
                    m.values["id"] = None
        self.txdb = copy.deepcopy(txdb)  # (the savepoint keeps its copy: it may be rolled back to again)

    # -- the rules that savepoints change ---------------------------------------------------------
    def do_commit(self) -> None:
        if self.savepoints and self.session_state is not SessionState.FAILED:
            with pytest.raises(SessionError, match="inside a begin_nested"):
                self.run(self.s.commit())
            return
        super().do_commit()

    def do_rollback(self) -> None:
        super().do_rollback()
        self.savepoints.clear()  # (they ended with the transaction)

    def do_failed_flush(self, email: str, via_commit: bool) -> None:
        if not self.savepoints:
            super().do_failed_flush(email, via_commit)
            return
        dup = User(name="dup", email=email)
        self.s.add(dup)
        m = Tracked(dup, PENDING, fields_of(dup))
        self.objects.append(m)
        if via_commit:  # refused before anything is sent: the duplicate is taken back out
            with pytest.raises(SessionError, match="inside a begin_nested"):
                self.run(self.s.commit())
            self.s.expunge(dup)
            m.state = TRANSIENT
            return
        with pytest.raises(UniqueViolationError):
            self.run(self.s.flush())
        # The innermost savepoint was rolled back (and stays open): the rest of the flush too.
        sp, kept, txdb = self.savepoints[-1]
        self.model_rollback_to_innermost()
        self.savepoints.append((sp, kept, txdb))

    def expungeable(self, m: Tracked) -> bool:
        return not self.savepoints and super().expungeable(m)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_savepoints_follow_model(dialect: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_machine(SavepointMachine, dialect, tmp_path, monkeypatch)
