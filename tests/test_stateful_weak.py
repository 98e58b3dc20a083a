"""The session state machine (with savepoints) on a session opened with ``identity_map="weak"``,
plus one rule of its own: the program lets go of an unchanged persistent object, which must then
leave the session (the invariants compare ``len(s)`` with the objects the model still holds),
and a later get or query of its row loads a new object. Everything else must behave exactly as
with the default identity map.

(``Tag`` objects only: ``User`` has a JSON field, and objects of such entities stay held, since an
in-place change of a JSON value can only be seen through the object.)
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from .models import Tag
from .test_stateful import (
    PERSISTENT,
    run_machine,
)
from .test_stateful_savepoints import SavepointMachine


class WeakMachine(SavepointMachine):
    SESSION_OPTIONS: ClassVar[dict[str, Any]] = {"n_plus_one": "ignore", "identity_map": "weak"}

    def forgettable(self) -> list[int]:
        """Unchanged persistent Tags, and not assigned to since the last flush (an object assigned to
        is kept until the next flush, even when the value assigned is the one it had)."""
        tracker = self.s._objects.by_class.get(Tag)
        assigned = tracker.kept or {} if tracker is not None else {}
        return [
            i
            for i, m in enumerate(self.objects)
            if m.entity is Tag
            and m.state is PERSISTENT
            and not m.dirty_fields()
            and not m.inserted_in_tx
            and m.key not in assigned
        ]

    @precondition(lambda self: bool(self.forgettable()))
    @rule(data=st.data())
    def let_go(self, data: st.DataObject) -> None:
        """The program drops its last reference to an unchanged object: it leaves the session."""
        # (An index is drawn, not the object: hypothesis keeps what it draws, for its report.)
        i = data.draw(st.sampled_from(self.forgettable()))
        del self.objects[i]
        gc.collect()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_weak_identity_map_follows_model(dialect: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_machine(WeakMachine, dialect, tmp_path, monkeypatch)
