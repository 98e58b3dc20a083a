"""Change tracking: dirty fields, originals, JSON in place, cost that follows the changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

import aiouow
from aiouow import AsyncSession, ObjectState
from aiouow._state import Loaded, state_of

from .faults import Injector
from .models import Order, Tag, User


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

    @pytest.mark.parametrize(
        ("name", "assigned", "is_change"),
        [
            ("total", Decimal("9.99"), False),  # an equal Decimal object: the same value
            ("total", Decimal("9.990"), True),  # equal, but stored with another exponent
            ("total", Decimal("10"), True),
            ("note", "n", False),
            ("note", "m", True),
            ("note", None, True),
        ],
    )
    async def test_loaded_object_given_one_value(
        self, session: AsyncSession, name: str, assigned: object, is_change: bool
    ) -> None:
        """One field of an object held by the session's stand-in (no JSON fields), assigned: it
        is a change exactly when the database would store another value."""
        user = await loaded_user(session)
        session.add(Order(user_id=user.id, total=Decimal("9.99"), note="n"))
        await session.commit()
        session.expunge_all()
        (order,) = await session.all(Order)
        assert type(order._aiouow_state) is Loaded  # the path under test
        setattr(order, name, assigned)
        before = session.stats().statements.get("update", 0)
        await session.commit()
        assert session.stats().statements.get("update", 0) - before == (1 if is_change else 0)
        session.expunge_all()
        (again,) = await session.all(Order)
        now = {"total": again.total.as_tuple(), "note": again.note}
        written = assigned.as_tuple() if isinstance(assigned, Decimal) else assigned
        assert now == {"total": Decimal("9.99").as_tuple(), "note": "n", **({name: written} if is_change else {})}

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
        """An added object and a changed loaded object are held by their session's stand-ins, and
        get their own state when a lifecycle change needs one: every slot is set, with the values
        the object's lifecycle calls for."""
        from aiouow._state import InstanceState, ObjectState, Pending

        tag = Tag(code="a", label="x")
        other = Tag(code="b", label="x")
        session.add(tag, other)
        assert type(tag._aiouow_state) is Pending and other._aiouow_state is tag._aiouow_state
        assert session.state(tag) is ObjectState.PENDING and type(tag._aiouow_state) is Pending  # inspection makes none
        state_of(tag)
        pending = tag._aiouow_state
        assert isinstance(pending, InstanceState)
        assert all(hasattr(pending, name) for name in InstanceState.__slots__)
        assert (pending.status, pending.key, pending.owner, pending.changed) == (ObjectState.PENDING, None, session, {})
        await session.commit()
        assert type(other._aiouow_state) is Loaded and session.state(other) is ObjectState.PERSISTENT
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


class TestAssignmentsDuringFlush:
    """An assignment made while the flush that inserts its object is in flight (another task of
    the program runs meanwhile) is never lost: the INSERT writes the values it took, the
    assignment is a change for the next flush."""

    @pytest.fixture(autouse=True)
    async def _close_sessions(self, pool: aiouow.Pool) -> AsyncIterator[None]:
        """Closes the tests' sessions, also after a failure (before the pool checks for leaks)."""
        self.sessions: list[AsyncSession] = []
        yield
        for s in self.sessions:
            await s.close()

    async def test_assignment_during_insert_is_the_next_flush_update(self, pool: aiouow.Pool) -> None:
        injector = Injector(pool)
        injector.delays["before run_steps"] = 0.3  # the flush has taken the values, its statements wait
        injector.install()
        s = AsyncSession(pool)
        self.sessions.append(s)
        try:
            tags = [Tag(code=f"f{i}", label="before") for i in range(3)]
            user = User(name="before", email="f@x", profile={"n": 1})  # JSON: an entity with its own states
            s.add_all([*tags, user])
            flush = asyncio.ensure_future(s.flush())
            await asyncio.sleep(0.1)
            tags[1].label = "during"
            user.name = "during"
            await flush
        finally:
            injector.uninstall()
        for obj in (tags[1], user):
            assert s.state(obj) is ObjectState.PERSISTENT
            assert s.dirty_fields(obj) == [{Tag: "label", User: "name"}[type(obj)]]
            assert s.original_value(obj, "label" if obj is tags[1] else "name") == "before"
        assert s.dirty == {tags[1], user}
        with s.no_autoflush():
            assert await s.execute("SELECT label FROM tags WHERE code = 'f1'") == [{"label": "before"}]
        await s.commit()
        assert not s.dirty
        async with AsyncSession(pool) as check:
            assert {t.code: t.label for t in await check.all(Tag)} == {"f0": "before", "f1": "during", "f2": "before"}
            assert (await check.get_one(User, user.id)).name == "during"

    async def test_assignment_during_a_failed_insert_is_kept_as_a_value(self, pool: aiouow.Pool) -> None:
        async with AsyncSession(pool) as s:
            s.add(Tag(code="taken", label="x"))
            await s.commit()
        injector = Injector(pool)
        injector.delays["before run_steps"] = 0.3
        injector.install()
        s = AsyncSession(pool)
        self.sessions.append(s)
        try:
            tag = Tag(code="new", label="before")
            s.add_all([tag, Tag(code="taken", label="again")])  # a duplicate key: the INSERT fails
            flush = asyncio.ensure_future(s.flush())
            await asyncio.sleep(0.1)
            tag.label = "during"
            with pytest.raises(aiouow.UniqueViolationError):
                await flush
        finally:
            injector.uninstall()
        assert s.state(tag) is ObjectState.PENDING  # nothing was inserted: still pending, no change recorded
        assert s.dirty_fields(tag) == [] and s.original_value(tag, "label") == "during"
        await s.rollback()
        assert s.state(tag) is ObjectState.TRANSIENT
        s.add(tag)
        await s.commit()
        assert s.state(tag) is ObjectState.PERSISTENT and not s.dirty
        async with AsyncSession(pool) as check:
            assert (await check.get_one(Tag, "new")).label == "during"
