"""Change tracking: dirty fields, originals, JSON in place, cost that follows the changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

import aiouow
from aiouow import AsyncSession, ObjectState
from aiouow._tracking import DetachedState, EntityTracker

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
        """One field of a loaded object (no JSON fields), assigned: it is a change exactly when the
        database would store another value."""
        user = await loaded_user(session)
        session.add(Order(user_id=user.id, total=Decimal("9.99"), note="n"))
        await session.commit()
        session.expunge_all()
        (order,) = await session.all(Order)
        assert type(order._aiouow_state) is EntityTracker  # held by its session's tracker
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
        # The change is recorded by the entity's tracker, by key; no object got a state of its own.
        tracker = tags[7]._aiouow_state
        assert isinstance(tracker, EntityTracker) and all(t._aiouow_state is tracker for t in tags)
        assert tracker.changes == {"t0007": {"label": "x"}}
        await session.flush()
        assert session.stats().statements.get("update", 0) == 1

    async def test_who_tracks_an_object_through_its_lifecycle(self, session: AsyncSession) -> None:
        """Pending and persistent objects point at their entity's tracker in the session; an expunged
        object keeps its key and its changes in a state of its own; a transient one has none."""
        tag = Tag(code="a", label="x")
        other = Tag(code="b", label="x")
        assert tag._aiouow_state is None
        session.add(tag, other)
        tracker = tag._aiouow_state
        assert type(tracker) is EntityTracker and other._aiouow_state is tracker
        assert tracker.state(tag) is ObjectState.PENDING and tracker.new == {id(tag): tag, id(other): other}
        await session.commit()
        assert tracker.identity == {"a": tag, "b": other} and session.state(other) is ObjectState.PERSISTENT
        tag.label = "y"
        session.expunge(tag)
        detached = tag._aiouow_state
        assert isinstance(detached, DetachedState)
        assert (detached.key, detached.changes) == ("a", {"label": "x"})
        assert session.state(tag) is ObjectState.DETACHED and session.dirty_fields(tag) == ["label"]
        session.add(tag)  # back, with its change
        assert tag._aiouow_state is tracker and tracker.changes == {"a": {"label": "x"}}
        session.delete(other)
        await session.commit()
        assert other._aiouow_state is None and session.state(other) is ObjectState.TRANSIENT


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
