"""The identity map: one object per row per session."""

from __future__ import annotations

import pytest

import aiouow
from aiouow import AsyncSession, select

from .models import OrderLine, Tag, User


async def seed(pool: aiouow.Pool) -> None:
    async with AsyncSession(pool) as s:
        s.add(Tag(code="a", label="A"), Tag(code="b", label="B"))
        await s.commit()


class TestIdentityMap:
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
