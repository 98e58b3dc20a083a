"""The pool: URLs, options, stats, acquire timeout, and SQLite's shared writers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import aiouow
from aiouow import AsyncSession, create_pool

from .models import Tag


class TestURLsAndOptions:
    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("mysql://x", "unknown database scheme 'mysql'"),
            ("app.db", "is not a database URL"),
            ("sqlite:relative.db", "is not a database URL"),
            ("sqlite://relative.db", "has no path"),
        ],
    )
    def test_bad_urls(self, url: str, message: str) -> None:
        """A URL that names no supported database raises ConfigurationError."""
        with pytest.raises(aiouow.ConfigurationError, match=message):
            create_pool(url)

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"max_size": 0}, "max_size must be at least 1"),
            ({"min_size": 3, "max_size": 2}, "min_size \\(3\\) is larger than max_size \\(2\\)"),
            ({"acquire_timeout": 0}, "acquire_timeout must be a positive, finite number"),
            ({"min_size": -1}, "min_size must be a non-negative int"),
        ],
    )
    def test_bad_options(self, options: dict[str, int], message: str) -> None:
        """Pool options are checked when the pool is made."""
        with pytest.raises(aiouow.ConfigurationError, match=message):
            create_pool("sqlite://:memory:", **options)

    async def test_relative_and_absolute_paths(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """sqlite:///relative.db is relative to the working directory; sqlite:////abs.db is absolute."""
        monkeypatch.chdir(tmp_path)
        async with create_pool("sqlite:///rel.db") as pool:
            assert pool.dialect == "sqlite"
        assert (tmp_path / "rel.db").exists()
        async with create_pool(f"sqlite:///{tmp_path}/abs.db"):
            pass
        assert (tmp_path / "abs.db").exists()

    async def test_await_form_and_close(self, tmp_path: Path) -> None:
        """create_pool() can be awaited; close() closes it and acquiring afterwards fails clearly."""
        pool = await create_pool(f"sqlite:///{tmp_path}/a.db")
        await pool.create_all(Tag)
        await pool.close()
        with pytest.raises(aiouow.ConnectionLostError, match="the pool is closed"):
            async with AsyncSession(pool) as s:
                await s.all(Tag)

    async def test_memory_database_is_shared_by_pooled_connections(self) -> None:
        """sqlite://:memory: (the default) gives every pooled connection the same database."""
        async with create_pool(max_size=3) as pool:
            await pool.create_all(Tag)
            async with AsyncSession(pool) as a:
                a.add(Tag(code="m", label="memory"))
                await a.commit()
            sessions = [AsyncSession(pool) for _ in range(3)]
            got = await asyncio.gather(*(s.get(Tag, "m") for s in sessions))
            assert all(t is not None and t.label == "memory" for t in got)
            assert pool.stats().in_use == 3
            for s in sessions:
                await s.close()

    async def test_memory_database_goes_away_with_its_pool(self) -> None:
        """Two :memory: pools do not share data."""
        async with create_pool() as p1, create_pool() as p2:
            await p1.create_all(Tag)
            await p2.create_all(Tag)
            async with AsyncSession(p1) as s:
                s.add(Tag(code="only", label="p1"))
                await s.commit()
            async with AsyncSession(p2) as s:
                assert await s.all(Tag) == []


class TestStats:
    async def test_stats_follow_sessions(self, pool: aiouow.Pool) -> None:
        """A session holds a connection from first use to commit/rollback/close."""
        base = pool.stats()
        assert base.in_use == 0 and base.size == base.idle
        s = AsyncSession(pool)
        assert pool.stats().in_use == 0  # lazily acquired
        await s.all(Tag)
        assert pool.stats().in_use == 1
        await s.commit()
        assert pool.stats().in_use == 0
        await s.all(Tag)
        await s.rollback()
        assert pool.stats().in_use == 0
        await s.close()

    async def test_acquire_timeout(self, url: str) -> None:
        """When every connection stays in use past acquire_timeout, PoolTimeoutError says so."""
        async with create_pool(url, max_size=1, acquire_timeout=0.2) as pool:
            await pool.create_all(Tag)
            async with AsyncSession(pool) as holder:
                await holder.all(Tag)
                waiter = AsyncSession(pool)
                task = asyncio.create_task(waiter.all(Tag))
                await asyncio.sleep(0.05)
                assert pool.stats().waiting == 1
                with pytest.raises(
                    aiouow.PoolTimeoutError, match=r"all 1 connections of the pool stayed in use for 0\.2 s"
                ):
                    await task
                await waiter.close()
            assert pool.stats().in_use == 0


class TestConcurrentWriters:
    async def test_many_writer_sessions_never_see_database_is_locked(self, url: str) -> None:
        """Concurrent read-then-write sessions on one pool all succeed (writers are serialized)."""
        async with create_pool(url, max_size=5) as pool:
            await pool.drop_all(Tag)
            await pool.create_all(Tag)
            async with AsyncSession(pool) as s:
                s.add(Tag(code="counter", label="0"))
                await s.commit()

            async def writer(n: int) -> None:
                async with AsyncSession(pool) as s:
                    await s.all(Tag)  # read first: the transaction must be upgraded to write
                    counter = await s.get_one(Tag, "counter", for_update=True)
                    counter.label = str(int(counter.label) + 1)
                    s.add(Tag(code=f"w{n}", label="x"))
                    await s.commit()

            await asyncio.gather(*(writer(n) for n in range(100)))
            async with AsyncSession(pool) as s:
                assert (await s.get_one(Tag, "counter")).label == "100"
                assert len(await s.all(Tag)) == 101
            assert pool.stats().in_use == 0
            await pool.drop_all(Tag)
