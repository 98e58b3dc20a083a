"""Change tracking: dirty fields, originals, JSON in place, cost that follows the changes."""

from __future__ import annotations

import aiouow
from aiouow import AsyncSession
from aiouow._state import Loaded, state_of

from .models import Tag, User


async def loaded_user(s: AsyncSession) -> User:
    u = User(name="alice", email="a@x", profile={"theme": "dark", "tags": ["a"]})
    s.add(u)
    await s.commit()
    return u


class TestTracking:
    async def test_assignment_marks_field_dirty_with_original(self, session: AsyncSession) -> None:
        """Setting a field records it as changed, with its loaded value as the original."""
        u = await loaded_user(session)
        u.name = "alice2"
        assert session.dirty_fields(u) == ["name"]
        assert session.original_value(u, "name") == "alice"
        assert session.is_dirty(u)
        assert session.dirty == {u}

    async def test_set_back_to_original_is_not_a_change(self, session: AsyncSession) -> None:
        """A field set back to its loaded value is not a change, and no UPDATE runs."""
        u = await loaded_user(session)
        u.name = "x"
        u.name = "alice"
        assert session.dirty_fields(u) == []
        assert not session.is_dirty(u)
        await session.commit()
        assert session.stats().statements.get("update", 0) == 0

    async def test_in_place_json_change_is_detected(self, session: AsyncSession) -> None:
        """Changing a JSON value in place is a change."""
        u = await loaded_user(session)
        assert u.profile is not None
        u.profile["tags"].append("b")
        assert session.dirty_fields(u) == ["profile"]
        assert session.original_value(u, "profile") == {"theme": "dark", "tags": ["a"]}
        await session.commit()
        assert session.dirty_fields(u) == []
        session.expunge_all()
        again = await session.get_one(User, u.id)
        assert again.profile == {"theme": "dark", "tags": ["a", "b"]}

    async def test_dirty_fields_in_column_order(self, session: AsyncSession) -> None:
        """dirty_fields lists fields in column order, not assignment order."""
        u = await loaded_user(session)
        u.active = False
        u.name = "z"
        assert session.dirty_fields(u) == ["name", "active"]

    async def test_update_sends_only_changed_columns(self, pool: aiouow.Pool) -> None:
        """The UPDATE sets only the changed columns (other columns changed elsewhere are kept)."""
        async with AsyncSession(pool) as s:
            u = await loaded_user(s)
            async with AsyncSession(pool) as other:
                o = await other.get_one(User, u.id)
                o.active = False
                await other.commit()
            u.name = "mine"
            await s.commit()
        async with AsyncSession(pool) as s:
            got = await s.get_one(User, u.id)
            assert (got.name, got.active) == ("mine", False)

    async def test_original_value_of_new_object_is_current(self, session: AsyncSession) -> None:
        """A new object has no loaded values: original_value is its current value."""
        t = Tag(code="a", label="A")
        session.add(t)
        assert session.original_value(t, "label") == "A"
        assert session.dirty_fields(t) == []

    async def test_original_value_unknown_field(self, session: AsyncSession) -> None:
        """original_value of an unknown field raises QueryError listing the fields."""
        import pytest

        with pytest.raises(aiouow.QueryError, match="Tag has no field 'nope' \\(fields: code, label\\)"):
            session.original_value(Tag(code="a", label="b"), "nope")

    async def test_untouched_objects_cost_nothing_at_flush(self, session: AsyncSession) -> None:
        """Loading many objects and changing one flushes one UPDATE, and only changed objects are examined."""
        session.add_all(Tag(code=f"t{i:04}", label="x") for i in range(2000))
        await session.commit()
        session.expunge_all()
        tags = await session.all(Tag)
        tags[7].label = "changed"
        # The change is recorded on the session's shared stand-in, by key; no object got a state.
        mark = tags[7]._aiouow_state
        assert isinstance(mark, Loaded) and all(t._aiouow_state is mark for t in tags)
        assert mark.changes == {"t0007": {"label": "x"}} and session._candidates() == []
        await session.flush()
        assert session.stats().statements.get("update", 0) == 1

    async def test_states_made_on_the_fast_paths_are_complete(self, session: AsyncSession) -> None:
        """add() builds states on its fast path, and a changed loaded object gets its own state
        (taking its recorded change) when inspected: every slot is set, with the values the
        object's lifecycle calls for."""
        from aiouow._state import InstanceState, ObjectState

        tag = Tag(code="a", label="x")
        session.add(tag)
        pending = tag._aiouow_state
        assert isinstance(pending, InstanceState)
        assert all(hasattr(pending, name) for name in InstanceState.__slots__)
        assert (pending.status, pending.key, pending.owner, pending.changed) == (ObjectState.PENDING, None, session, {})
        await session.commit()
        session.expunge_all()
        loaded = await session.get_one(Tag, "a")
        loaded.label = "y"
        assert session.is_dirty(loaded) and type(loaded._aiouow_state) is Loaded  # inspecting makes no state
        state_of(loaded)  # what a lifecycle change calls: the object gets its own state
        st = loaded._aiouow_state
        assert isinstance(st, InstanceState)
        assert all(hasattr(st, name) for name in InstanceState.__slots__)
        assert (st.status, st.key, st.owner, st.changed, st.json_snap) == (
            ObjectState.PERSISTENT,
            "a",
            session,
            {"label": "x"},
            None,
        )
