"""The identity map: one object per row per session."""

from __future__ import annotations

import pytest

import aiouow
from aiouow import AsyncSession, select

from .models import OrderLine, Tag, User


class Loose(aiouow.Entity, table="loose"):
    id: int = aiouow.field(primary_key=True)
    label: str


async def seed(pool: aiouow.Pool) -> None:
    async with AsyncSession(pool) as s:
        s.add(Tag(code="a", label="A"), Tag(code="b", label="B"))
        await s.commit()


async def delete_elsewhere(pool: aiouow.Pool, code: str) -> None:
    """Another transaction deletes the tag's row (and commits)."""
    async with AsyncSession(pool) as other:
        await other.execute("DELETE FROM tags WHERE code = " + ("?" if pool.dialect == "sqlite" else "$1"), code)
        await other.commit()


class TestIdentityMap:
    @pytest.mark.parametrize("changed", [False, True])
    async def test_a_locking_read_that_finds_the_row_gone_drops_its_object(
        self, pool: aiouow.Pool, changed: bool
    ) -> None:
        """get(for_update=True) finding no row: the stale object leaves the map, and a plain get asks the database."""
        await seed(pool)
        async with AsyncSession(pool) as s:
            a = await s.get_one(Tag, "a")
            await s.commit()
            await delete_elsewhere(pool, "a")
            if changed:  # an unflushed change goes with the object (a flush would find no row to update)
                a.label = "unflushed"
            with s.no_autoflush():
                assert await s.get(Tag, "a", for_update=True) is None
            assert a not in s
            assert s.state(a) is aiouow.ObjectState.DETACHED
            before = s.stats().statements.get("select", 0)
            assert await s.get(Tag, "a") is None
            assert s.stats().statements.get("select", 0) == before + 1  # asked, not answered from the map
            assert not s.dirty
            await s.commit()

    async def test_a_refresh_that_finds_the_row_gone_drops_its_object(self, pool: aiouow.Pool) -> None:
        """refresh() finding no row: NotFoundError, and the object leaves the session (detached), so that
        a plain get asks the database instead of returning it as PERSISTENT."""
        await seed(pool)
        async with AsyncSession(pool) as s:
            a = await s.get_one(Tag, "a")
            await s.commit()
            await delete_elsewhere(pool, "a")
            with pytest.raises(aiouow.NotFoundError, match=r"Tag\(code='a'\): its row no longer exists"):
                await s.refresh(a)
            assert a not in s and s.state(a) is aiouow.ObjectState.DETACHED
            before = s.stats().statements.get("select", 0)
            assert await s.get(Tag, "a") is None
            assert s.stats().statements.get("select", 0) == before + 1
            await s.commit()

    async def test_get_twice_returns_same_object_without_sql(self, pool: aiouow.Pool) -> None:
        """A get that hits the identity map runs no SQL."""
        await seed(pool)
        async with AsyncSession(pool) as s:
            a = await s.get(Tag, "a")
            before = s.stats().statements.get("select", 0)
            assert await s.get(Tag, "a") is a
            assert await s.get(Tag, ("a",)) is a
            assert s.stats().statements.get("select", 0) == before

    async def test_query_returns_objects_already_in_map(self, pool: aiouow.Pool) -> None:
        """Rows loaded again come back as the same objects, keeping their unflushed changes."""
        await seed(pool)
        async with AsyncSession(pool) as s, s.begin():
            a = await s.get_one(Tag, "a")
            with s.no_autoflush():
                a.label = "unflushed"
                again = await s.scalars(select(Tag).order_by(Tag.code))
                assert again[0] is a
                assert a.label == "unflushed"
                assert s.dirty_fields(a) == ["label"]

    async def test_query_of_rows_partly_in_map(self, pool: aiouow.Pool) -> None:
        """A query whose rows the map holds in part: the held ones come back as they are, the
        others become new objects, each entered in the map."""
        async with AsyncSession(pool) as s:
            s.add_all([Tag(code=c, label=c.upper()) for c in "abcd"])
            await s.commit()
        async with AsyncSession(pool) as s, s.begin():
            b = await s.get_one(Tag, "b")
            b.label = "unflushed"
            with s.no_autoflush():
                tags = await s.scalars(select(Tag).order_by(Tag.code))
            assert [t.code for t in tags] == list("abcd")
            assert tags[1] is b and b.label == "unflushed"
            assert [t.label for t in tags] == ["A", "unflushed", "C", "D"]
            for t in tags:
                assert await s.get(Tag, t.code) is t
                assert s.state(t) is aiouow.ObjectState.PERSISTENT
            assert s.dirty_fields(tags[0]) == []

    async def test_first_load_into_a_session(self, pool: aiouow.Pool) -> None:
        """Rows no object stands for yet (loaded in bulk): composite keys, converted values, and
        objects that track changes like any other."""
        from decimal import Decimal

        from .models import Order

        async with AsyncSession(pool) as s:
            u = User(name="a", email="a@x")
            s.add(u)
            await s.flush()
            o = Order(user_id=u.id, total=Decimal("12.50"))
            s.add(o)
            await s.flush()
            s.add_all([OrderLine(order_id=o.id, line=n, sku=f"s{n}") for n in (1, 2, 3)])
            await s.commit()
        async with AsyncSession(pool) as s:
            lines = await s.scalars(select(OrderLine).order_by(OrderLine.line))
            assert [(x.order_id, x.line, x.sku) for x in lines] == [(o.id, n, f"s{n}") for n in (1, 2, 3)]
            assert await s.get(OrderLine, (o.id, 2)) is lines[1]
            (order,) = await s.all(Order)
            assert order.total == Decimal("12.50") and type(order.total) is Decimal
            lines[2].sku = "changed"
            assert s.dirty_fields(lines[2]) == ["sku"]
            await s.commit()
        async with AsyncSession(pool) as s:
            assert (await s.get_one(OrderLine, (o.id, 3))).sku == "changed"

    async def test_a_key_twice_among_rows_is_one_object(self, pool: aiouow.Pool) -> None:
        """A table whose key column is not unique in the database (no constraint): the rows of
        one key come back as one object, whether the map held it before or not."""
        await pool.drop_all(Loose)
        async with AsyncSession(pool) as s:
            await s.execute("CREATE TABLE loose (id INTEGER, label TEXT)")
            for key, label in ((1, "a"), (1, "b"), (2, "c")):
                await s.execute(f"INSERT INTO loose (id, label) VALUES ({key}, '{label}')")
            await s.commit()
        try:
            async with AsyncSession(pool) as s:
                got = await s.all(Loose)
                assert len(got) == 3 and got[0] is got[1] and got[2] is not got[0]
                assert await s.get(Loose, 1) is got[0]
                assert s.stats().identity_map_size == 2
                again = await s.all(Loose)
                assert again == got
        finally:
            await pool.drop_all(Loose)

    async def test_missing_row_is_none_and_get_one_raises(self, session: AsyncSession) -> None:
        """get() of a missing key is None; get_one() raises NotFoundError (a LookupError)."""
        assert await session.get(Tag, "nope") is None
        with pytest.raises(LookupError, match="cannot get Tag: no row with primary key 'nope'") as info:
            await session.get_one(Tag, "nope")
        assert isinstance(info.value, aiouow.NotFoundError)

    async def test_flushed_insert_enters_map(self, session: AsyncSession) -> None:
        """An inserted object is in the map after flush: get returns it with no query."""
        u = User(name="a", email="a@x")
        session.add(u)
        await session.flush()
        before = session.stats().total_statements
        assert await session.get(User, u.id) is u
        assert session.stats().total_statements == before

    async def test_composite_key(self, pool: aiouow.Pool) -> None:
        """Composite keys are looked up with a tuple."""
        from decimal import Decimal

        from .models import Order

        async with AsyncSession(pool) as s:
            u = User(name="a", email="a@x")
            s.add(u)
            await s.flush()
            o = Order(user_id=u.id, total=Decimal(1))
            s.add(o)
            await s.flush()
            line = OrderLine(order_id=o.id, line=1, sku="x")
            s.add(line)
            await s.commit()
            s.expunge_all()
            got = await s.get_one(OrderLine, (o.id, 1))
            assert got.sku == "x"
            assert await s.get(OrderLine, (o.id, 1)) is got
            assert await s.get(OrderLine, (o.id, 2)) is None

    async def test_bad_key_argument_is_a_query_error(self, session: AsyncSession) -> None:
        """A key of the wrong type or arity raises QueryError naming the entity."""
        with pytest.raises(aiouow.QueryError, match="cannot get User: primary key 'id' expects int, got str"):
            await session.get(User, "1")
        with pytest.raises(aiouow.QueryError, match="pass a tuple of 2 values"):
            await session.get(OrderLine, 1)
        with pytest.raises(aiouow.QueryError, match=r"primary key 'id' is not nullable"):
            await session.get(User, None)

    async def test_get_for_update_refreshes_unchanged_fields(self, pool: aiouow.Pool) -> None:
        """get(for_update=True) asks the database: fields without unflushed changes take the row's values."""
        await seed(pool)
        async with AsyncSession(pool) as s:
            a = await s.get_one(Tag, "a")
            await s.commit()
            async with AsyncSession(pool) as other:
                (await other.get_one(Tag, "a")).label = "elsewhere"
                await other.commit()
            assert a.label == "A"
            locked = await s.get_one(Tag, "a", for_update=True)
            assert locked is a and a.label == "elsewhere"
            assert s.dirty_fields(a) == []
            await s.commit()

    async def test_len_and_contains(self, session: AsyncSession) -> None:
        """len() counts the map plus pending objects; `in` tells membership."""
        t = Tag(code="x", label="x")
        assert t not in session
        session.add(t)
        assert t in session and len(session) == 1
        await session.flush()
        assert len(session) == 1
        assert session.stats().identity_map_size == 1
