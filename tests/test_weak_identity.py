"""``AsyncSession(pool, identity_map="weak")``: objects nobody refers to leave the session; changed,
pending and deleted ones are kept until a flush writes them; nothing is lost."""

from __future__ import annotations

import gc

import pytest

import aiouow
from aiouow import AsyncSession, ConfigurationError, ObjectState, select

from .models import Tag, User
from .relmodels import REL_ALL, Hero, Team


async def seed(pool: aiouow.Pool, n: int = 5) -> None:
    async with AsyncSession(pool) as s:
        s.add_all(Tag(code=f"t{i}", label="x") for i in range(n))
        await s.commit()


def selects(s: AsyncSession) -> int:
    return s.stats().statements.get("select", 0)


class TestWeakIdentityMap:
    async def test_unreferenced_unchanged_objects_leave(self, pool: aiouow.Pool) -> None:
        await seed(pool)
        async with AsyncSession(pool, identity_map="weak") as s:
            tags = await s.all(Tag)
            kept = tags[0]
            assert len(s) == 5
            del tags
            gc.collect()
            assert len(s) == 1 and s.state(kept) is ObjectState.PERSISTENT
            assert await s.get(Tag, "t0") is kept  # still one object per row while it is referred to
            before = selects(s)
            again = await s.get(Tag, "t1")  # gone: loaded again, as a new object
            assert again is not None and selects(s) == before + 1

    async def test_changed_objects_are_kept_until_a_flush_writes_them(self, pool: aiouow.Pool) -> None:
        await seed(pool)
        async with AsyncSession(pool, identity_map="weak") as s:
            tags = {t.code: t for t in await s.all(Tag)}
            tags["t1"].label = "changed"
            s.delete(tags["t2"])
            s.add(Tag(code="new", label="pending"))
            del tags  # no reference kept to any of them
            gc.collect()
            assert len(s) == 3 and len(s.dirty) == 1 and len(s.deleted) == 1 and len(s.new) == 1
            await s.flush()
            gc.collect()
            # Written: only the inserted one stays, until the transaction ends (a rollback needs it).
            assert len(s) == 1
            await s.commit()
            gc.collect()
            assert len(s) == 0
        async with AsyncSession(pool) as s:
            assert {t.code: t.label for t in await s.all(Tag)} == {
                "t0": "x",
                "t1": "changed",
                "t3": "x",
                "t4": "x",
                "new": "pending",
            }

    async def test_a_rollback_after_the_objects_went_loses_nothing(self, pool: aiouow.Pool) -> None:
        await seed(pool)
        async with AsyncSession(pool, identity_map="weak") as s:
            (await s.get_one(Tag, "t1")).label = "changed"
            await s.flush()
            gc.collect()
            await s.rollback()
            tag = await s.get_one(Tag, "t1")
            assert tag.label == "x"

    async def test_savepoint_rollback_with_collected_objects(self, pool: aiouow.Pool) -> None:
        await seed(pool)
        async with AsyncSession(pool, identity_map="weak") as s:
            kept = await s.get_one(Tag, "t0")
            with pytest.raises(RuntimeError):
                async with s.begin_nested():
                    kept.label = "inside"
                    (await s.get_one(Tag, "t1")).label = "inside too"
                    await s.flush()
                    gc.collect()
                    raise RuntimeError
            assert kept.label == "x"
            assert (await s.get_one(Tag, "t1")).label == "x"
            await s.commit()

    async def test_objects_of_entities_with_json_fields_stay_held(self, pool: aiouow.Pool) -> None:
        """An in-place change of a JSON value can only be seen through the object: it stays."""
        async with AsyncSession(pool) as s:
            s.add(User(name="ann", email="ann@example.org", profile={"a": 1}))
            await s.commit()
        async with AsyncSession(pool, identity_map="weak") as s:
            (await s.get_one(User, 1)).profile["a"] = 2  # type: ignore[index]
            gc.collect()
            assert len(s) == 1
            await s.commit()
        async with AsyncSession(pool) as s:
            assert (await s.get_one(User, 1)).profile == {"a": 2}

    async def test_related_objects_go_with_their_cycle(self, pool: aiouow.Pool) -> None:
        await pool.create_all(*REL_ALL)
        try:
            async with AsyncSession(pool) as s:
                s.add(Team(name="t", heroes=[Hero(name="h")]))
                await s.commit()
            async with AsyncSession(pool, identity_map="weak") as s:
                teams = await s.scalars(select(Team).load(Team.heroes))
                assert teams[0].heroes[0].team is teams[0] and len(s) == 2
                del teams
                gc.collect()  # (team <-> hero is a reference cycle)
                assert len(s) == 0
        finally:
            await pool.drop_all(*REL_ALL)

    async def test_a_bad_value_is_refused(self, pool: aiouow.Pool) -> None:
        with pytest.raises(ConfigurationError, match='identity_map must be "strong"'):
            AsyncSession(pool, identity_map="weakest")
