"""expire() and expire_all(): no IO now; the next load of the row takes the database's values."""

from __future__ import annotations

import pytest

import aiouow
from aiouow import AsyncSession, DetachedInstanceError, QueryError, select

from .models import Tag
from .relmodels import REL_ALL, Hero, Team


async def seed(pool: aiouow.Pool) -> None:
    async with AsyncSession(pool) as s:
        s.add_all([Tag(code="a", label="a"), Tag(code="b", label="b")])
        await s.commit()


async def relabel(pool: aiouow.Pool, code: str, label: str) -> None:
    async with AsyncSession(pool) as other:
        (await other.get_one(Tag, code)).label = label
        await other.commit()


def selects(s: AsyncSession) -> int:
    return s.stats().statements.get("select", 0)


class TestExpire:
    async def test_a_rollback_after_a_flush_of_a_change_made_after_expire(self, pool: aiouow.Pool) -> None:
        """Found by the savepoint state machine: the UPDATE's logged "before" was the value in memory
        (a change expiring forgot), not the row's; the rollback put that value back."""
        await seed(pool)
        async with AsyncSession(pool) as s:
            tag = await s.get_one(Tag, "a")
            tag.label = "forgotten"
            s.expire(tag)
            tag.label = "written"
            await s.flush()
            await s.rollback()
            assert tag.label == "a"

    async def test_a_rollback_after_expire_and_the_same_value_again_restores_the_original(
        self, pool: aiouow.Pool
    ) -> None:
        """Found by the state machine: the change assigned after the expiry was undone after the
        one the expiry forgot, which is older, so the field kept the assigned value."""
        await seed(pool)
        async with AsyncSession(pool) as s:
            tag = await s.get_one(Tag, "a")
            tag.label = "changed"
            s.expire(tag)  # forgets the change (memory still holds it)
            tag.label = "changed"  # the same value again: a change recorded after the expiry
            await s.rollback()
            assert tag.label == "a"

    async def test_the_next_get_asks_the_database_and_takes_its_values(self, pool: aiouow.Pool) -> None:
        await seed(pool)
        async with AsyncSession(pool) as s:
            tag = await s.get_one(Tag, "a")
            await s.commit()
            await relabel(pool, "a", "theirs")
            before = selects(s)
            s.expire(tag)
            assert tag.label == "a" and selects(s) == before  # no IO: the old value, still
            assert await s.get(Tag, "a") is tag and selects(s) == before + 1  # asked the database ...
            assert tag.label == "theirs"  # ... and took its values
            assert await s.get(Tag, "a") is tag and selects(s) == before + 1  # (then hits the map again)

    async def test_a_query_takes_the_expired_fields_only(self, pool: aiouow.Pool) -> None:
        await seed(pool)
        async with AsyncSession(pool) as s:
            a, b = await s.scalars(select(Tag).order_by(Tag.code))
            await s.commit()  # (a new transaction sees what others committed since: SQLite reads a snapshot)
            a.label = "mine"  # an unflushed change of an object that is not expired stays
            await relabel(pool, "b", "theirs")
            s.expire(b, "label")
            with s.no_autoflush():
                await s.scalars(select(Tag))
            assert a.label == "mine" and b.label == "theirs"
            assert s.dirty_fields(a) == ["label"] and s.dirty_fields(b) == []

    async def test_expiring_forgets_the_unflushed_change(self, pool: aiouow.Pool) -> None:
        await seed(pool)
        async with AsyncSession(pool) as s:
            tag = await s.get_one(Tag, "a")
            tag.label = "mine"
            s.expire(tag, "label")
            assert s.dirty == frozenset() and tag.label == "mine"
            await s.refresh(tag)
            assert tag.label == "a"
            await s.commit()

    async def test_expire_all(self, pool: aiouow.Pool) -> None:
        await seed(pool)
        async with AsyncSession(pool) as s:
            tags = await s.scalars(select(Tag).order_by(Tag.code))
            await s.commit()
            tags[0].label = "mine"
            await relabel(pool, "b", "theirs")
            s.expire_all()
            assert s.dirty == frozenset()
            await s.all(Tag)
            assert [t.label for t in tags] == ["a", "theirs"]

    async def test_bad_uses_are_refused(self, pool: aiouow.Pool) -> None:
        await seed(pool)
        async with AsyncSession(pool) as s:
            with pytest.raises(DetachedInstanceError, match="not a persistent object of this session"):
                s.expire(Tag(code="new", label="x"))
            tag = await s.get_one(Tag, "a")
            with pytest.raises(QueryError, match="Tag has no field 'nope'"):
                s.expire(tag, "nope")
            with pytest.raises(QueryError, match=r"cannot expire Tag\.code: a key"):
                s.expire(tag, "code")

    async def test_a_foreign_key_taken_from_the_row_unloads_what_goes_through_it(self, pool: aiouow.Pool) -> None:
        await pool.drop_all(*REL_ALL)
        await pool.create_all(*REL_ALL)
        try:
            async with AsyncSession(pool) as s:
                s.add(Team(name="a", heroes=[Hero(name="h")]))
                s.add(Team(name="b"))
                await s.commit()
            async with AsyncSession(pool) as s:
                hero = await s.one(select(Hero).load(Hero.team))
                await s.commit()
                async with AsyncSession(pool) as other:
                    (await other.get_one(Hero, hero.id)).team_id = 2
                    await other.commit()
                s.expire(hero, "team_id")
                await s.get(Hero, hero.id)
                assert hero.team_id == 2 and not s.is_loaded(hero, Hero.team)
        finally:
            await pool.drop_all(*REL_ALL)
