"""Isolation levels and read-only sessions, on both dialects."""

from __future__ import annotations

import pytest

import aiouow
from aiouow import AsyncSession, ConfigurationError, Isolation, SerializationError, SessionError

from .models import Tag


def dialect(pool: aiouow.Pool) -> str:
    return "postgresql" if "postgresql" in repr(pool) else "sqlite"


async def seed(pool: aiouow.Pool) -> None:
    async with AsyncSession(pool) as s:
        s.add(Tag(code="a", label="a"))
        await s.commit()


class TestOptions:
    async def test_bad_options_are_configuration_errors(self, pool: aiouow.Pool) -> None:
        with pytest.raises(ConfigurationError, match="isolation must be one of 'read committed'"):
            AsyncSession(pool, isolation="snapshot")
        with pytest.raises(ConfigurationError, match="read_only must be True or False"):
            AsyncSession(pool, read_only="yes")  # type: ignore[arg-type]
        if dialect(pool) == "sqlite":
            with pytest.raises(ConfigurationError, match="SQLite has no 'repeatable read' level"):
                AsyncSession(pool, isolation="repeatable read")
        else:
            AsyncSession(pool, isolation=Isolation.REPEATABLE_READ)

    @pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
    async def test_postgresql_transactions_begin_at_the_level_asked(self, pool: aiouow.Pool) -> None:
        for level in Isolation:
            async with AsyncSession(pool, isolation=level) as s:
                for _ in range(2):  # (every transaction of the session)
                    rows = await s.execute("SHOW transaction_isolation")
                    assert rows == [{"transaction_isolation": level.value}]
                    await s.commit()
        async with AsyncSession(pool, read_only=True) as s:
            assert await s.execute("SHOW transaction_read_only") == [{"transaction_read_only": "on"}]


class TestReadOnly:
    async def test_reads_work_and_writes_are_refused(self, pool: aiouow.Pool) -> None:
        await seed(pool)
        async with AsyncSession(pool, read_only=True) as s:
            tag = await s.get_one(Tag, "a")
            tag.label = "changed"
            with pytest.raises(SessionError, match=r"cannot flush: the session is read-only"):
                await s.flush()
            with pytest.raises(SessionError, match=r"cannot commit: the session is read-only"):
                await s.commit()
            s.add(Tag(code="b", label="b"))
            with pytest.raises(SessionError, match="read-only"):
                await s.all(Tag)  # (autoflush is a flush)
            await s.rollback()
            assert tag.label == "a" and len(await s.all(Tag)) == 1
            if dialect(pool) == "sqlite":
                with pytest.raises(SessionError, match="the session is read-only"):
                    await s.execute("INSERT INTO tags (code, label) VALUES ('c', 'c')")
            else:  # the server refuses it: a read-only transaction
                with pytest.raises(aiouow.DatabaseError, match="read-only transaction"):
                    await s.execute("INSERT INTO tags (code, label) VALUES ('c', 'c')")
                await s.rollback()
            await s.commit()
        async with AsyncSession(pool) as s:
            assert [t.label for t in await s.all(Tag)] == ["a"]


class TestSerializable:
    async def test_a_write_over_a_stale_read_is_a_serialization_error(self, pool: aiouow.Pool) -> None:
        await seed(pool)
        async with AsyncSession(pool, isolation="serializable") as s, AsyncSession(pool) as other:
            tag = await s.get_one(Tag, "a")  # read in a snapshot
            moved = await other.get_one(Tag, "a")
            moved.label = "other"
            await other.commit()
            tag.label = f"{tag.label}+1"  # computed from what it read, which is stale now
            with pytest.raises(SerializationError):
                await s.commit()
            await s.rollback()
        async with AsyncSession(pool) as s:
            assert (await s.get_one(Tag, "a")).label == "other"  # no update was lost

    async def test_the_default_level_lets_the_later_write_win(self, pool: aiouow.Pool) -> None:
        """What serializable prevents: under the default level the stale read's write wins."""
        await seed(pool)
        async with AsyncSession(pool) as s, AsyncSession(pool) as other:
            tag = await s.get_one(Tag, "a")
            moved = await other.get_one(Tag, "a")
            moved.label = "other"
            await other.commit()
            tag.label = f"{tag.label}+1"
            await s.commit()
        async with AsyncSession(pool) as s:
            assert (await s.get_one(Tag, "a")).label == "a+1"
