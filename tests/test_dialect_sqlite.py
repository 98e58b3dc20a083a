"""SQLite specifics: WAL, foreign keys, the pool's write lock, and how values are stored."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import aiouow
from aiouow import AsyncSession, create_pool

from .models import ALL, AllTypes, Order, Tag


@pytest.fixture
async def lite(tmp_path: Path) -> AsyncIterator[aiouow.Pool]:
    pool = await create_pool(f"sqlite:///{tmp_path}/lite.db", max_size=4, busy_timeout=0.3)
    await pool.create_all(*ALL)
    yield pool
    await pool.close()  # tests may close it first: closing twice is fine


class TestSQLite:
    async def test_wal_and_foreign_keys_are_on(self, lite: aiouow.Pool) -> None:
        """Every connection runs in WAL mode with foreign keys enforced."""
        async with AsyncSession(lite) as s:
            assert (await s.execute("PRAGMA journal_mode"))[0]["journal_mode"] == "wal"
            assert (await s.execute("PRAGMA foreign_keys"))[0]["foreign_keys"] == 1
            s.add(Order(user_id=999, total=Decimal(1)))
            with pytest.raises(aiouow.ForeignKeyViolationError):
                await s.flush()
        await lite.close()

    async def test_exact_storage(self, lite: aiouow.Pool, tmp_path: Path) -> None:
        """Decimals and datetimes are stored as exact text, offsets included."""
        when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
        async with AsyncSession(lite) as s:
            s.add(AllTypes(dec=Decimal("1.10"), ts=when))
            await s.commit()
        await lite.close()
        raw = sqlite3.connect(tmp_path / "lite.db")
        try:
            dec, ts = raw.execute("SELECT dec, ts FROM all_types").fetchone()
        finally:
            raw.close()
        assert (dec, ts) == ("1.10", "2024-01-02 03:04:05.000000-05:00")

    async def test_reader_does_not_block_writer(self, lite: aiouow.Pool) -> None:
        """A session reading in an open transaction does not block another session's write."""
        async with AsyncSession(lite) as reader, AsyncSession(lite) as writer:
            await reader.all(Tag)
            writer.add(Tag(code="w", label="w"))
            await writer.commit()
            assert await reader.get(Tag, "w") is None  # the reader keeps its snapshot until its transaction ends
            await reader.commit()
            assert await reader.get(Tag, "w") is not None
        await lite.close()

    async def test_second_writer_waits_then_times_out_clearly(self, lite: aiouow.Pool) -> None:
        """A writer waits for the write lock up to busy_timeout, then gets a clear OperationalError."""
        async with AsyncSession(lite) as first, AsyncSession(lite) as second:
            first.add(Tag(code="a", label="a"))
            await first.flush()  # holds the write lock until commit
            second.add(Tag(code="b", label="b"))
            with pytest.raises(aiouow.OperationalError, match=r"write lock was not free within 0\.3 s"):
                await second.flush()
            await second.rollback()
            await first.commit()
        await lite.close()

    async def test_writer_waits_for_lock_release(self, lite: aiouow.Pool) -> None:
        """A waiting writer proceeds as soon as the holder commits."""
        async with AsyncSession(lite) as first, AsyncSession(lite) as second:
            first.add(Tag(code="a", label="a"))
            await first.flush()
            second.add(Tag(code="b", label="b"))
            waiting = asyncio.create_task(second.commit())
            await asyncio.sleep(0.05)
            assert not waiting.done()
            await first.commit()
            await waiting
        async with AsyncSession(lite) as s:
            assert len(await s.all(Tag)) == 2
        await lite.close()

    async def test_other_process_lock_is_translated(self, lite: aiouow.Pool, tmp_path: Path) -> None:
        """A lock held outside the pool (another process) ends in OperationalError, not a raw sqlite3 error."""
        other = sqlite3.connect(tmp_path / "lite.db", isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            async with AsyncSession(lite) as s:
                s.add(Tag(code="x", label="x"))
                with pytest.raises(
                    aiouow.OperationalError, match="cannot begin a write transaction: the database is locked"
                ):
                    await s.flush()
                await s.rollback()
        finally:
            other.execute("ROLLBACK")
            other.close()
        await lite.close()

    async def test_write_after_another_writer_committed_restarts_the_read_transaction(self, lite: aiouow.Pool) -> None:
        """A session that read, then writes after another session committed, gets a fresh write
        transaction (its stale snapshot is dropped: it had written nothing) and its flush succeeds."""
        async with AsyncSession(lite) as s:
            s.add(Tag(code="a", label="a"))
            await s.commit()
        async with AsyncSession(lite) as reader, AsyncSession(lite) as other:
            tag = await reader.get(Tag, "a")
            assert tag is not None
            other.add(Tag(code="o", label="o"))
            await other.commit()  # the reader's snapshot is now stale
            tag.label = "changed"
            reader.add(Tag(code="r", label="r"))
            await reader.commit()
            # BEGIN, SELECT; the INSERT fails on the stale snapshot; ROLLBACK, BEGIN IMMEDIATE; INSERT, UPDATE; COMMIT
            assert reader.stats().statements == {"other": 4, "select": 1, "insert": 2, "update": 1}
        async with AsyncSession(lite) as s:
            assert {t.code: t.label for t in await s.all(Tag)} == {"a": "changed", "o": "o", "r": "r"}
        await lite.close()

    async def test_a_flush_is_one_call_to_the_driver_thread(self, lite: aiouow.Pool) -> None:
        """The BEGIN goes with the first statement, and every statement of a flush (several tables,
        inserts, updates, deletes) goes to aiosqlite's thread in one call."""
        async with AsyncSession(lite) as s:
            s.add_all([Tag(code="a", label="a"), Tag(code="b", label="b")])
            await s.commit()
        async with AsyncSession(lite) as s:
            tag = await s.get(Tag, "a")  # one call: BEGIN and SELECT
            assert tag is not None
            other = await s.get_one(Tag, "b")
            conn: Any = s._tx.conn  # type: ignore[union-attr]
            calls: list[object] = []
            real = conn.db._execute

            async def counting(fn: Any, *args: Any) -> Any:
                calls.append(fn)
                return await real(fn, *args)

            conn.db._execute = counting
            tag.label = "changed"
            s.delete(other)
            s.add(Tag(code="c", label="c"))
            s.add(AllTypes())
            await s.flush()
            assert calls == [calls[0]]  # one call for the whole flush
            assert s.stats().statements == {"other": 1, "select": 2, "update": 1, "delete": 1, "insert": 2}
            await s.commit()
        async with AsyncSession(lite) as s:
            assert sorted(t.code for t in await s.all(Tag)) == ["a", "c"]
            assert len(await s.all(AllTypes)) == 1
        await lite.close()

    async def test_first_use_of_a_new_pool_can_commit(self, tmp_path: Path) -> None:
        """A pool's set-up statements are finished: nothing left running blocks the COMMIT of a first
        session that writes at once (the tables made by another connection)."""
        path = tmp_path / "fresh.db"
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("PRAGMA journal_mode=WAL")
        other.execute("CREATE TABLE tags (code TEXT PRIMARY KEY, label TEXT NOT NULL)")
        other.close()
        async with create_pool(f"sqlite:///{path}") as pool, AsyncSession(pool) as s:
            s.add(Tag(code="a", label="a"))
            await s.commit()
            assert [t.code for t in await s.all(Tag)] == ["a"]

    def test_aiosqlite_still_offers_the_call_the_pool_batches_through(self) -> None:
        """The pool hands several statements to aiosqlite's thread through ``Connection._execute(fn, *args)``
        (private, but what every public aiosqlite method uses): fail loudly if a release renames it."""
        import inspect

        import aiosqlite

        run = getattr(aiosqlite.Connection, "_execute", None)
        assert run is not None and inspect.iscoroutinefunction(run)
        assert list(inspect.signature(run).parameters)[:2] == ["self", "fn"]

    def test_a_program_that_never_closes_its_pool_still_exits(self, tmp_path: Path) -> None:
        """aiosqlite's threads are not daemons: without aiouow making them so, a program whose
        pool is left open (here an exception ends it mid-transaction) hangs at exit forever."""
        import subprocess
        import sys
        import textwrap

        script = textwrap.dedent(
            """
            import asyncio, sys
            import aiouow
            from aiouow import AsyncSession, Entity, field

            class Note(Entity):
                id: int = field(primary_key=True)
                text: str

            async def main() -> None:
                pool = await aiouow.create_pool(sys.argv[1])
                await pool.create_all(Note)
                s = AsyncSession(pool)
                s.add(Note(text="kept"))
                await s.commit()
                s.add(Note(text="never committed"))
                await s.flush()  # a write transaction, and SQLite's write lock, left open
                raise SystemExit(3)

            asyncio.run(main())
            """
        )
        path = tmp_path / "left-open.db"
        done = subprocess.run(
            [sys.executable, "-c", script, f"sqlite:///{path}"], capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 3, done.stderr
        with sqlite3.connect(path) as db:  # the unfinished transaction was rolled back, the committed one kept
            assert db.execute("SELECT text FROM note").fetchall() == [("kept",)]
