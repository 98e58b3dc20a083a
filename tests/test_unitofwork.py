"""Flush planning (pure, no database) and flush execution: order, batching, generated keys."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

import aiouow
from aiouow import AsyncSession, Entity, field
from aiouow._mapping import mapper_of
from aiouow._tracking import EntityTracker
from aiouow._unitofwork import DeleteStep, EntityChanges, FlushPlan, InsertStep, UpdateStep, plan_flush, table_order
from aiouow.dialects._base import Dialect
from aiouow.dialects.postgresql.dialect import PostgresDialect
from aiouow.dialects.sqlite.dialect import SQLiteDialect

from .models import Color, Order, OrderLine, Tag, User


class Trackers:
    """The trackers of a session that holds the objects given (no database): what a flush plans from."""

    def __init__(self) -> None:
        self.session = object()
        self.by_mapper: dict[object, EntityTracker] = {}

    def tracker(self, obj: object) -> EntityTracker:
        mapper = mapper_of(obj)
        if mapper not in self.by_mapper:
            self.by_mapper[mapper] = EntityTracker(mapper, self.session)
        return self.by_mapper[mapper]

    def new(self, *objs: object) -> None:
        for obj in objs:
            self.tracker(obj).add_new(obj)

    def persistent(self, *objs: object) -> None:
        for obj in objs:
            self.tracker(obj).adopt(obj, mapper_of(obj).key_of_values(obj.__dict__), {}, None)

    def deleted(self, *objs: object) -> None:
        self.persistent(*objs)
        for obj in objs:
            self.tracker(obj).mark_deleted(obj)

    def changes(self) -> list[EntityChanges]:
        found = [tracker.changes_to_flush() for tracker in self.by_mapper.values()]
        return [c for c in found if c is not None]

    def plan(self, dialect: Dialect) -> FlushPlan:
        return plan_flush(self.changes(), dialect)


DIALECTS = [SQLiteDialect(), PostgresDialect()]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
class TestPlan:
    def test_inserts_updates_deletes_in_fk_order(self, dialect: Dialect) -> None:
        """Inserts parents first, then updates, then deletes children first, whatever the add order."""
        held = Trackers()
        held.new(OrderLine(order_id=1, line=1, sku="x"), Order(user_id=1, total=Decimal(1)), User(name="u", email="e"))
        t = Tag(code="a", label="A")
        held.persistent(t)
        t.label = "B"
        old_order = Order(user_id=1, total=Decimal(1))
        old_order.__dict__["id"] = 5
        old_user = User(name="o", email="o")
        old_user.__dict__["id"] = 9
        held.deleted(old_user, old_order)
        kinds = [(type(s).__name__, s.mapper.table) for s in held.plan(dialect).steps]
        assert kinds == [
            ("InsertStep", "users"),
            ("InsertStep", "orders"),
            ("InsertStep", "order_lines"),
            ("UpdateStep", "tags"),
            ("DeleteStep", "orders"),
            ("DeleteStep", "users"),
        ]

    def test_one_step_per_table_and_changed_columns(self, dialect: Dialect) -> None:
        """Rows batch into one step per table (per set of changed columns for updates)."""
        held = Trackers()
        held.new(*(User(name=f"u{i}", email=f"e{i}") for i in range(100)))
        tags = [Tag(code=f"t{i}", label="x") for i in range(4)]
        held.persistent(*tags)
        tags[0].label = "y"
        tags[1].label = "y"
        tags[3].label = "x"  # assigned but unchanged: not an update
        plan = held.plan(dialect)
        inserts = [s for s in plan.steps if isinstance(s, InsertStep)]
        updates = [s for s in plan.steps if isinstance(s, UpdateStep)]
        assert len(inserts) == 1 and len(inserts[0].objs) == 100
        assert inserts[0].returning is User.id
        assert inserts[0].flat is dialect.flat_inserts
        assert len(updates) == 1 and len(updates[0].rows) == 2
        assert [c.name for c in updates[0].columns] == ["label"]
        assert updates[0].rows[0] == ("y", "t0") and updates[0].keys == ["t0", "t1"]

    def test_explicit_and_generated_keys_split(self, dialect: Dialect) -> None:
        """Objects given an explicit generated-key value insert in their own step, returning nothing."""
        a = User(name="a", email="a")
        b = User(name="b", email="b")
        b.id = 77
        held = Trackers()
        held.new(a, b)
        steps = [s for s in held.plan(dialect).steps if isinstance(s, InsertStep)]
        assert [s.returning for s in steps] == [User.id, None]
        assert steps[1].objs == [b] and steps[1].rows[0][0] == 77

    def test_value_check_happens_before_any_step(self, dialect: Dialect) -> None:
        """A bad value anywhere fails planning, so nothing is sent."""
        held = Trackers()
        held.new(User(name="a", email="a"), User(name="b", email=None))  # type: ignore[arg-type]
        with pytest.raises(aiouow.DataError, match="field 'email'"):
            held.plan(dialect)

    def test_a_changed_key_is_refused_naming_the_field(self, dialect: Dialect) -> None:
        held = Trackers()
        t = Tag(code="a", label="A")
        held.persistent(t)
        t.code = "b"
        with pytest.raises(aiouow.DataError, match="primary key field 'code' changed from 'a' to 'b'"):
            held.plan(dialect)

    def test_a_new_object_of_a_deleted_key_switches_the_row(self, dialect: Dialect) -> None:
        """Delete and add of one key in one flush: one UPDATE of the row, no INSERT, no DELETE."""
        held = Trackers()
        old = Tag(code="a", label="old")
        held.deleted(old)
        new = Tag(code="a", label="new")
        held.new(new)
        (step,) = held.plan(dialect).steps
        assert isinstance(step, UpdateStep) and step.objs == [new] and step.rows == [("new", "a")]
        assert step.replaced is not None and step.replaced.objs == [old]

    def test_delete_keys_include_version(self, dialect: Dialect) -> None:
        """Versioned deletes carry the expected version."""
        from .models import Doc

        d = Doc(title="x")
        d.__dict__.update(id=3, version=4)
        held = Trackers()
        held.deleted(d)
        step = held.plan(dialect).steps[0]
        assert isinstance(step, DeleteStep) and step.keys == [(3, 4)] and step.version is Doc.version

    def test_table_order_handles_cycles(self, dialect: Dialect) -> None:
        """Mutually referencing tables still get a stable order."""

        class A(Entity, table="cyc_a"):
            id: int = field(primary_key=True)
            b_id: int | None = field(default=None, foreign_key="cyc_b.id")

        class B(Entity, table="cyc_b"):
            id: int = field(primary_key=True)
            a_id: int | None = field(default=None, foreign_key="cyc_a.id")

        order = table_order([mapper_of(B), mapper_of(A), mapper_of(Tag)])
        assert len(order) == 3 and set(order) == {mapper_of(A), mapper_of(B), mapper_of(Tag)}
        assert order == table_order([mapper_of(A), mapper_of(Tag), mapper_of(B)])


class TestFlush:
    async def test_children_added_first_still_insert_after_parents(self, pool: aiouow.Pool) -> None:
        """With foreign keys enforced, adding children before parents still flushes (parents first)."""
        async with AsyncSession(pool) as s:
            u = User(name="u", email="e")
            s.add(u)
            await s.flush()
            o = Order(user_id=u.id, total=Decimal(1))
            s.add(o)
            await s.flush()
            line = OrderLine(order_id=o.id, line=1, sku="x")
            s.add(line)
            await s.commit()
            # now delete parent and child in the "wrong" order
            s.delete(u)
            s.delete(o)
            s.delete(line)
            await s.commit()
            assert await s.all(User) == [] and await s.all(OrderLine) == []

    async def test_thousands_of_generated_keys_map_to_right_objects(self, pool: aiouow.Pool) -> None:
        """Generated keys of a large batch land on the right objects."""
        users = [User(name=f"user{i}", email=f"u{i}@x") for i in range(5000)]
        async with AsyncSession(pool) as s:
            s.add_all(users)
            await s.commit()
            ids = [u.id for u in users]
            assert ids == sorted(ids) and len(set(ids)) == 5000
            assert s.stats().statements["insert"] <= 10  # batched (SQLite: 500 rows a statement), not per object
        async with AsyncSession(pool) as s:
            rows = await s.execute("SELECT id, name FROM users")
            by_id = {r["id"]: r["name"] for r in rows}
            assert all(by_id[u.id] == u.name for u in users)

    async def test_generated_keys_of_uneven_and_mixed_batches(self, pool: aiouow.Pool) -> None:
        """Keys land on the right objects when the last statement of a batch is partly full, and
        when one object carries its own key or is of another entity (they insert in steps of their own)."""
        for extra in ("none", "own key", "other entity"):
            users = [User(name=f"{extra}{i}", email=f"{extra}{i}@x") for i in range(1234)]
            added: list[object] = list(users)
            if extra == "own key":
                users[617].id = 10_000_000
            elif extra == "other entity":
                added.insert(617, Tag(code=f"tag-{extra}", label="x"))
            async with AsyncSession(pool) as s:
                s.add_all(added)
                await s.commit()
                rows = await s.execute("SELECT id, name FROM users")
            by_id = {r["id"]: r["name"] for r in rows}
            assert [by_id[u.id] for u in users] == [u.name for u in users]
            assert len({u.id for u in users}) == 1234
            if extra == "own key":
                assert users[617].id == 10_000_000

    async def test_batches_not_round_trips(self, pool: aiouow.Pool) -> None:
        """A flush sends one statement per table and kind, not one per object."""
        async with AsyncSession(pool) as s:
            s.add_all(Tag(code=f"t{i}", label="x") for i in range(300))
            await s.commit()
            inserts = s.stats().statements["insert"]
            for t in (await s.all(Tag))[:200]:
                t.label = "y"
            for t in (await s.all(Tag))[200:]:
                s.delete(t)
            await s.commit()
            st = s.stats().statements
            assert inserts == 1 and st["update"] == 1 and st["delete"] == 1

    async def test_echo_logs_statements(self, url: str, caplog: pytest.LogCaptureFixture) -> None:
        """echo=True logs each statement at DEBUG on the aiouow.sql logger."""
        async with aiouow.create_pool(url, echo=True) as pool:
            await pool.create_all(Tag)
            with caplog.at_level(logging.DEBUG, logger="aiouow.sql"):
                async with AsyncSession(pool) as s:
                    s.add(Tag(code="log", label="me"))
                    await s.commit()
            await pool.drop_all(Tag)
        logged = [r.getMessage() for r in caplog.records if r.name == "aiouow.sql"]
        assert any("INSERT INTO" in m and "tags" in m and "log" in m for m in logged)

    async def test_stats_count_statements_rows_and_flushes(self, session: AsyncSession) -> None:
        """stats() counts statements by kind, rows, flushes and pending objects."""
        session.add_all(Tag(code=f"s{i}", label="x") for i in range(3))
        assert session.stats().pending_new == 3
        await session.flush()
        await session.all(Tag)
        stats = session.stats()
        assert stats.statements["insert"] == 1 and stats.statements["select"] == 1
        assert stats.rows_written == 3 and stats.rows_read == 3 and stats.flushes == 1
        assert stats.db_time > 0 and stats.pending_new == 0 and stats.identity_map_size == 3

    async def test_autoflush_before_query_and_no_autoflush(self, session: AsyncSession) -> None:
        """Queries flush pending changes first, unless inside no_autoflush()."""
        session.add(Tag(code="a", label="A"))
        with session.no_autoflush():
            assert await session.all(Tag) == []
        assert len(await session.all(Tag)) == 1

    async def test_autoflush_off_for_the_session(self, pool: aiouow.Pool) -> None:
        """AsyncSession(autoflush=False) leaves pending objects alone until flush()."""
        async with AsyncSession(pool, autoflush=False) as s:
            s.add(Tag(code="a", label="A"))
            assert await s.all(Tag) == []
            await s.flush()
            assert len(await s.all(Tag)) == 1


class KeyOnly(Entity, table="key_only"):
    """An entity whose only column is its generated key."""

    id: int = field(primary_key=True)


class TestKeyOnlyEntity:
    async def test_rows_of_defaults_get_their_keys(self, pool: aiouow.Pool) -> None:
        """Objects with nothing but a generated key insert (one or many) and get distinct keys."""
        await pool.create_all(KeyOnly)
        try:
            async with AsyncSession(pool) as s:
                one = KeyOnly()
                s.add(one)
                await s.flush()
                many = [KeyOnly() for _ in range(5)]
                s.add_all(many)
                await s.commit()
                ids = [one.id, *(k.id for k in many)]
                assert None not in ids and len(set(ids)) == 6
                assert len(await s.all(KeyOnly)) == 6
        finally:
            await pool.drop_all(KeyOnly)


class Paint(Entity, table="paints"):
    """An entity keyed by an enum (stored by its value: the key needs converting for the driver)."""

    color: Color = field(primary_key=True)
    label: str


class TestLoadedDeletes:
    async def test_many_deletes_by_converted_keys(self, pool: aiouow.Pool) -> None:
        """Deleting several loaded objects whose keys the driver gets converted removes exactly their rows."""
        await pool.create_all(Paint)
        try:
            async with AsyncSession(pool) as s:
                s.add_all([Paint(color=Color.RED, label="r"), Paint(color=Color.GREEN, label="g")])
                await s.commit()
            async with AsyncSession(pool) as s:
                red, green = sorted(await s.all(Paint), key=lambda p: p.label, reverse=True)
                s.delete(red)
                s.delete(green)
                assert s.state(red) is aiouow.ObjectState.DELETED and await s.get(Paint, Color.RED) is None
                await s.commit()
                assert s.state(red) is aiouow.ObjectState.TRANSIENT
            async with AsyncSession(pool) as s:
                assert await s.all(Paint) == []
        finally:
            await pool.drop_all(Paint)


class TestStatsOnFailure:
    async def test_a_failed_statement_is_counted(self, pool: aiouow.Pool) -> None:
        """A statement the database refused still counts in stats() (and its time in db_time)."""
        async with AsyncSession(pool) as s:
            s.add(Tag(code="a", label="a"))
            await s.commit()
        async with AsyncSession(pool) as s:
            s.add(Tag(code="a", label="again"))
            with pytest.raises(aiouow.UniqueViolationError):
                await s.flush()
            assert s.stats().statements.get("insert") == 1
            await s.rollback()
