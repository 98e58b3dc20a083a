"""Cancellation and faults: whatever happens to the task that holds a session, the database sees
every transaction whole or not at all, the pool gets every connection back healthy or closed, no
lock stays held, and the caller gets a clear error.

Each case runs under ``Task.cancel()`` and under an anyio cancel scope where that applies, and ends
with `assert_clean`: no connection lent, none of ours left in a transaction, no lock held.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest

import aiouow
from aiouow import AsyncSession, SessionState, select

from .conftest import PG_URL, url_for
from .faults import HOW, LONG_SQL, BlackHoleProxy, Injector, assert_clean, fault_url, interrupt
from .models import Tag

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def fpool(url: str) -> AsyncIterator[aiouow.Pool]:
    async with aiouow.create_pool(fault_url(url), max_size=3, cleanup_timeout=2.0) as pool:
        await pool.drop_all(Tag)
        await pool.create_all(Tag)
        yield pool
        await pool.drop_all(Tag)


@contextlib.contextmanager
def slow_release(pool: aiouow.Pool, delay: float) -> Iterator[None]:
    """Within the block, the pool takes a connection back ``delay`` seconds later than it would."""
    real_release = pool.driver.release

    async def slow(conn: Any) -> None:
        await asyncio.sleep(delay)
        await real_release(conn)

    pool.driver.release = slow  # type: ignore[method-assign]
    try:
        yield
    finally:
        pool.driver.release = real_release  # type: ignore[method-assign]


def slow_rollback(s: AsyncSession, delay: float) -> Any:
    """Make the ROLLBACK of the session's connection take ``delay`` seconds longer; return the connection."""
    conn: Any = s._tx.conn  # type: ignore[union-attr]
    real_rollback = conn.rollback

    async def slow() -> None:
        await asyncio.sleep(delay)
        await real_rollback()

    conn.rollback = slow
    return conn


@pytest.fixture
async def pgpool(tmp_path: Path) -> AsyncIterator[aiouow.Pool]:
    """A PostgreSQL-only pool, for what only PostgreSQL can do (pg_terminate_backend)."""
    url = await url_for("postgresql", tmp_path)
    async with aiouow.create_pool(fault_url(url), max_size=3, cleanup_timeout=2.0) as pool:
        await pool.drop_all(Tag)
        await pool.create_all(Tag)
        yield pool
        await pool.drop_all(Tag)


async def tag_codes(pool: aiouow.Pool) -> set[str]:
    async with AsyncSession(pool) as s:
        return {t.code for t in await s.all(Tag)}


async def seed(pool: aiouow.Pool, *codes: str) -> None:
    async with AsyncSession(pool) as s:
        s.add_all(Tag(code=c, label="seed") for c in codes)
        await s.commit()


class TestCancelDuringStatements:
    @pytest.mark.parametrize("how", HOW)
    async def test_cancel_during_a_query_in_a_transaction(self, fpool: aiouow.Pool, dialect: str, how: str) -> None:
        """A long query cancelled mid-way is stopped, its transaction rolled back, its connection returned."""
        async with AsyncSession(fpool) as s:
            s.add(Tag(code="uncommitted", label="x"))
            await s.flush()
            started = time.monotonic()
            assert await interrupt(how, lambda: s.execute(LONG_SQL[dialect]), 0.3)
            assert time.monotonic() - started < 5, "the long statement ran on instead of being stopped"
            assert s.session_state is SessionState.FAILED
            with pytest.raises(aiouow.SessionError, match="interrupted"):
                await s.all(Tag)
            await s.rollback()
            assert await s.all(Tag) == []
        await assert_clean(fpool)
        async with AsyncSession(fpool) as s:  # the next caller is not blocked by the old statement
            with anyio.fail_after(3):
                assert await s.execute("SELECT 1 AS one") == [{"one": 1}]

    @pytest.mark.parametrize("how", HOW)
    async def test_cancel_while_holding_a_row_lock(self, fpool: aiouow.Pool, how: str) -> None:
        """A task cancelled during a non-database await while holding FOR UPDATE leaves no lock behind."""
        await seed(fpool, "c")

        async def work() -> None:
            async with AsyncSession(fpool) as s:
                locked = await s.get_one(Tag, "c", for_update=True)
                locked.label = "never"
                await asyncio.sleep(30)

        assert await interrupt(how, work, 0.3)
        await assert_clean(fpool)
        async with AsyncSession(fpool) as s:
            with anyio.fail_after(3):
                t = await s.get_one(Tag, "c", for_update=True)
            assert t.label == "seed"
            await s.commit()

    @pytest.mark.parametrize("how", HOW)
    async def test_timeout_propagates_and_uncancel_bookkeeping_stays_right(
        self, fpool: aiouow.Pool, dialect: str, how: str
    ) -> None:
        """asyncio.timeout around a statement raises TimeoutError and leaves cancelling() at 0."""
        async with AsyncSession(fpool) as s:
            if how == "task":
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.3):
                        await s.execute(LONG_SQL[dialect])
            else:
                with pytest.raises(TimeoutError):
                    with anyio.fail_after(0.3):
                        await s.execute(LONG_SQL[dialect])
            task = asyncio.current_task()
            assert task is not None and task.cancelling() == 0
            await s.rollback()
        await assert_clean(fpool)

    async def test_cancel_after_the_server_replied_never_leaks_a_stale_result(self, url: str) -> None:
        """A cancel that lands after the reply arrived: the next user of the connection gets its own result."""
        async with aiouow.create_pool(fault_url(url), max_size=1) as pool:
            injector = Injector(pool)
            injector.delays["after execute_raw"] = 5  # the reply is in; the task is still parked
            injector.install()
            s = AsyncSession(pool)
            assert await interrupt("task", lambda: s.execute("SELECT 'stale' AS v"), 0.3)
            injector.uninstall()
            await s.close()
            async with AsyncSession(pool) as other:
                assert await other.execute("SELECT 'mine' AS v") == [{"v": "mine"}]
            await assert_clean(pool)


class TestCancelDuringCommit:
    @pytest.mark.parametrize("how", HOW)
    async def test_commit_of_a_large_flush_is_all_or_nothing_at_any_moment(self, fpool: aiouow.Pool, how: str) -> None:
        """Cancelled at moments swept across a large flush and its COMMIT, the data is all there or absent."""
        codes = {f"t{i:05}" for i in range(3000)}

        async def work() -> None:
            async with AsyncSession(fpool) as s:
                s.add_all(Tag(code=c, label="x") for c in codes)
                await s.commit()

        full = float("inf")
        for _ in range(3):  # the first run also compiles and warms up: time the fastest
            async with AsyncSession(fpool) as s:
                await s.execute("DELETE FROM tags")
                await s.commit()
            started = time.monotonic()
            await work()
            full = min(full, time.monotonic() - started)
        seen = set()
        for k in range(1, 13):
            async with AsyncSession(fpool) as s:
                await s.execute("DELETE FROM tags")
                await s.commit()
            interrupted = await interrupt(how, work, full * k / 10)
            present = await tag_codes(fpool)
            assert present in (set(), codes), f"a torn transaction: {len(present)} of {len(codes)} rows"
            if not interrupted:
                assert present == codes
            seen.add((interrupted, bool(present)))
            await assert_clean(fpool)
        assert (True, False) in seen  # some moment did land before the COMMIT

    @pytest.mark.parametrize("commit_happens", [True, False])
    async def test_interrupted_commit_has_an_unknown_outcome(self, pgpool: aiouow.Pool, commit_happens: bool) -> None:
        """A COMMIT interrupted in flight: the cancellation propagates, the session knows the outcome is
        unknown, the connection is closed rather than reused, and the data is whole or absent.
        (PostgreSQL: SQLite sends the COMMIT with the flush, see TestFusedCommit.)"""
        fpool = pgpool
        injector = Injector(fpool)
        injector.delays["after commit" if commit_happens else "before commit"] = 5
        injector.install()
        s = AsyncSession(fpool)
        s.add_all(Tag(code=f"u{i}", label="x") for i in range(50))
        size_before = fpool.stats().size
        assert await interrupt("task", s.commit, 0.5)
        injector.uninstall()
        assert s.commit_outcome_unknown
        assert s.session_state is SessionState.FAILED
        assert fpool.stats().in_use == 0
        if fpool.dialect == "postgresql":
            assert fpool.stats().size < size_before or size_before == 0  # terminated, not pooled
        await s.rollback()
        assert not s.commit_outcome_unknown
        assert len(await tag_codes(fpool)) == (50 if commit_happens else 0)
        await s.close()
        await assert_clean(fpool)

    async def test_connection_lost_during_commit_raises_outcome_unknown(self, fpool: aiouow.Pool) -> None:
        """A connection lost while COMMIT is in flight raises CommitOutcomeUnknownError, never retried."""
        injector = Injector(fpool)
        injector.install()
        s = AsyncSession(fpool)
        s.add(Tag(code="lost", label="x"))
        await s.flush()
        conn: Any = s._tx.conn  # type: ignore[union-attr]
        real_commit = conn.commit

        async def lost() -> None:
            await real_commit()
            raise aiouow.ConnectionLostError("cannot commit: the connection to the database was lost (simulated)")

        conn.commit = lost
        with pytest.raises(aiouow.CommitOutcomeUnknownError, match="may or may not be committed"):
            await s.commit()
        injector.uninstall()
        assert s.commit_outcome_unknown
        await s.close()
        await assert_clean(fpool)


class TestCancelDuringCleanup:
    @pytest.mark.parametrize("how", HOW)
    async def test_cancel_during_rollback(self, fpool: aiouow.Pool, how: str) -> None:
        """rollback() interrupted: the connection is rolled back or closed, never pooled mid-transaction."""
        await seed(fpool, "r")
        injector = Injector(fpool)
        injector.install()
        s = AsyncSession(fpool)
        (await s.get_one(Tag, "r", for_update=True)).label = "changed"
        await s.flush()
        slow_rollback(s, 0.5)
        await interrupt(how, s.rollback, 0.1)
        injector.uninstall()
        await s.close()
        await assert_clean(fpool)
        async with AsyncSession(fpool) as check:
            assert (await check.get_one(Tag, "r")).label == "seed"

    async def test_repeated_native_cancellation_during_cleanup(self, fpool: aiouow.Pool) -> None:
        """Task.cancel() again and again while a session closes: no connection leaks, the cancel propagates."""
        s = AsyncSession(fpool)
        s.add(Tag(code="x", label="x"))
        await s.flush()
        slow_rollback(s, 0.3)
        task = asyncio.ensure_future(s.close())
        for _ in range(20):
            await asyncio.sleep(0.01)
            task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.1)
        assert s.session_state is SessionState.CLOSED
        await assert_clean(fpool)
        assert await tag_codes(fpool) == set()

    async def test_anyio_cancellation_does_not_interrupt_shielded_cleanup(self, fpool: aiouow.Pool) -> None:
        """An anyio scope cancelled during close(): the shielded rollback finishes, the connection is pooled."""
        s = AsyncSession(fpool)
        s.add(Tag(code="x", label="x"))
        await s.flush()
        conn = slow_rollback(s, 0.3)
        with anyio.move_on_after(0.05):
            await s.close()
        assert not conn.broken  # the rollback completed under the shield
        await assert_clean(fpool)

    async def test_cancel_during_release(self, fpool: aiouow.Pool) -> None:
        """A native cancel while the pool takes the connection back: it is closed, and counted back once."""
        s = AsyncSession(fpool)
        await s.all(Tag)
        with slow_release(fpool, 0.5):
            assert await interrupt("task", s.commit, 0.1)
        await asyncio.sleep(0.6)
        await s.close()
        await assert_clean(fpool)

    @pytest.mark.parametrize("flushed", [False, True])
    async def test_cancel_during_the_release_after_a_commit_keeps_the_commit(
        self, fpool: aiouow.Pool, flushed: bool
    ) -> None:
        """A cancellation that lands in the release just after COMMIT succeeded: the session is
        committed (IDLE, objects persistent with their values); closing it and adding the object
        again inserts no second row."""
        await seed(fpool, "old")
        s = AsyncSession(fpool)
        old = await s.get_one(Tag, "old")
        old.label = "changed"
        new = Tag(code="new", label="x")
        s.add(new)
        if flushed:  # the commit sends only COMMIT; else (SQLite: in one call) the flush and COMMIT
            await s.flush()
        with slow_release(fpool, 0.3):
            assert await interrupt("task", s.commit, 0.1)
        assert s.session_state is SessionState.IDLE
        assert s.state(new) is aiouow.ObjectState.PERSISTENT
        assert not s.new and not s.dirty
        await asyncio.sleep(0.4)
        await s.close()
        assert s.state(new) is aiouow.ObjectState.DETACHED
        assert (new.code, new.label, old.label) == ("new", "x", "changed")
        async with AsyncSession(fpool) as again:
            again.add(new)  # detached: attached again, not inserted a second time
            await again.commit()
        async with AsyncSession(fpool) as check:
            assert sorted((t.code, t.label) for t in await check.all(Tag)) == [("new", "x"), ("old", "changed")]
        await assert_clean(fpool)

    async def test_network_black_hole_during_cleanup_ends_in_bounded_time(self, tmp_path: Path) -> None:
        """A connection whose network goes silent during cleanup is closed within the cleanup timeout."""
        url = await url_for("postgresql", tmp_path)
        target = urlsplit(url)
        async with BlackHoleProxy(target.hostname or "127.0.0.1", target.port or 5432).running() as proxy:
            proxied = f"postgresql://{target.username or 'postgres'}@127.0.0.1:{proxy.port}{target.path}"
            async with aiouow.create_pool(fault_url(proxied), max_size=2, cleanup_timeout=0.5) as pool:
                await pool.create_all(Tag)
                s = AsyncSession(pool)
                s.add(Tag(code="bh", label="x"))
                await s.flush()
                proxy.blackhole = True
                started = time.monotonic()
                assert await interrupt("task", lambda: s.execute("SELECT 1"), 0.2)
                await s.close()
                assert time.monotonic() - started < 3
                assert pool.stats().in_use == 0
                proxy.blackhole = False
        await assert_clean_pg_only()


async def assert_clean_pg_only() -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    try:
        for _ in range(100):
            n = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'aiouow-faults' "
                "AND state LIKE 'idle in transaction%'"
            )
            if n == 0:
                return
            await asyncio.sleep(0.1)
        raise AssertionError("a backend stayed idle in transaction")
    finally:
        await conn.close()


class TestCancelAroundTheConnection:
    @pytest.mark.parametrize("how", HOW)
    async def test_cancel_while_waiting_for_an_exhausted_pool(self, url: str, how: str) -> None:
        """A task cancelled while waiting to acquire leaves the pool's counts right."""
        async with aiouow.create_pool(fault_url(url), max_size=1, acquire_timeout=30) as pool:
            await pool.create_all(Tag)
            async with AsyncSession(pool) as holder:
                await holder.all(Tag)
                waiter = AsyncSession(pool)
                assert await interrupt(how, lambda: waiter.all(Tag), 0.2)
                assert pool.stats().waiting == 0
                await waiter.close()
            await assert_clean(pool)

    @pytest.mark.parametrize("how", HOW)
    async def test_cancel_during_connect(self, url: str, how: str) -> None:
        """A task cancelled while its connection is being opened leaks neither the connection nor a thread."""
        threads = threading.active_count()
        async with aiouow.create_pool(fault_url(url), min_size=0, max_size=4) as pool:
            await pool.create_all(Tag)
            for delay in (0, 0.001, 0.005, 0.02):
                held = [AsyncSession(pool) for _ in range(pool.stats().idle)]
                for h in held:
                    await h.all(Tag)  # every idle connection lent: the next acquire must connect
                s = AsyncSession(pool)
                await interrupt(how, lambda s=s: s.all(Tag), delay)  # type: ignore[misc]
                await s.close()
                for h in held:
                    await h.close()
            await asyncio.sleep(0.2)
            await assert_clean(pool)
        await asyncio.sleep(0.2)
        assert threading.active_count() <= threads

    async def test_garbage_collected_session_warns_and_frees_its_connection(self, fpool: aiouow.Pool) -> None:
        """A session dropped without close() warns (ResourceWarning) and its connection is not leaked."""
        s: AsyncSession | None = AsyncSession(fpool)
        assert s is not None
        s.add(Tag(code="gc", label="x"))
        await s.flush()
        assert fpool.stats().in_use == 1
        with pytest.warns(ResourceWarning, match="garbage-collected without close"):  # noqa: PT031
            s = None
            gc.collect()
        await asyncio.sleep(0.2)
        await assert_clean(fpool)
        assert await tag_codes(fpool) == set()

    async def test_killed_connection_then_rollback_recovers(self, pgpool: aiouow.Pool) -> None:
        """A connection killed by the server: ConnectionLostError, rollback() succeeds, the pool replaces it."""
        fpool = pgpool
        async with AsyncSession(fpool) as s:
            s.add(Tag(code="k", label="k"))
            await s.flush()
            pid = (await s.execute("SELECT pg_backend_pid() AS pid"))[0]["pid"]
            async with AsyncSession(fpool) as killer:
                await killer.execute("SELECT pg_terminate_backend($1)", pid)
            await asyncio.sleep(0.1)
            with pytest.raises(aiouow.ConnectionLostError):
                await s.all(Tag)
            await s.rollback()
            assert await s.all(Tag) == []
        await assert_clean(fpool)


class TestCancelAtEveryAwaitPoint:
    async def test_cancel_at_every_point_of_a_flush_and_commit(self, fpool: aiouow.Pool) -> None:
        """Cancelled before and after every driver call of a flush and commit, the invariants hold each time."""
        await seed(fpool, *(f"s{i}" for i in range(10)))
        before = await tag_codes(fpool)
        after = (before - {f"s{i}" for i in range(5)}) | {f"n{i}" for i in range(20)}

        async def work() -> None:
            async with AsyncSession(fpool) as s:
                s.add_all(Tag(code=f"n{i}", label="new") for i in range(20))
                await s.flush()
                for t in await s.scalars(select(Tag).where(Tag.code.like("s%")).order_by(Tag.code)):
                    if t.code < "s5":
                        s.delete(t)
                    else:
                        t.label = "changed"
                await s.commit()

        injector = Injector(fpool)
        injector.install()
        try:
            await work()  # a dry run: learn the points
            points = list(injector.points)
            assert len(points) >= 10
            async with AsyncSession(fpool) as s:
                await s.execute("DELETE FROM tags")
                await s.commit()
            await seed(fpool, *before)
            for k in range(len(points)):
                injector.points.clear()
                injector.cancel_at = k
                try:
                    await work()
                    cancelled = False
                except asyncio.CancelledError:
                    cancelled = True
                    task = asyncio.current_task()
                    assert task is not None
                    task.uncancel()  # this test cancelled itself on purpose
                injector.cancel_at = None
                present = await tag_codes(fpool)
                assert present in (before, after), f"torn at point {k} ({points[k]}): {sorted(present)}"
                if not cancelled:
                    assert present == after
                await assert_clean(fpool)
                if present == after:  # reset for the next round
                    async with AsyncSession(fpool) as s:
                        await s.execute("DELETE FROM tags")
                        await s.commit()
                    await seed(fpool, *before)
        finally:
            injector.uninstall()


class TestFusedCommit:
    """SQLite sends a commit's statements and its COMMIT to aiosqlite's thread in one call. An
    interruption is cleaned up first (no further statement starts, the running one is interrupted,
    the ROLLBACK waits for the call to end); then the session knows whether the COMMIT went through."""

    @pytest.fixture
    async def lite(self, tmp_path: Path) -> AsyncIterator[aiouow.Pool]:
        url = await url_for("sqlite", tmp_path)
        async with aiouow.create_pool(url, max_size=2, cleanup_timeout=0.3) as pool:
            await pool.create_all(Tag)
            yield pool

    async def test_cancelled_after_the_commit_went_through_completes_the_commit(self, lite: aiouow.Pool) -> None:
        injector = Injector(lite)
        injector.delays["after run_steps"] = 5
        injector.install()
        s = AsyncSession(lite)
        tags = [Tag(code=f"u{i}", label="x") for i in range(50)]
        s.add_all(tags)
        assert await interrupt("task", s.commit, 0.3)
        injector.uninstall()
        assert not s.commit_outcome_unknown
        assert s.session_state is SessionState.IDLE  # committed: the session goes on
        assert all(s.state(t) is aiouow.ObjectState.PERSISTENT for t in tags)
        assert len(await tag_codes(lite)) == 50
        tags[0].label = "again"
        await s.commit()
        await s.close()
        await assert_clean(lite)

    async def test_cancelled_before_anything_was_sent_is_a_plain_failure(self, lite: aiouow.Pool) -> None:
        injector = Injector(lite)
        injector.delays["before run_steps"] = 5
        injector.install()
        s = AsyncSession(lite)
        s.add_all(Tag(code=f"u{i}", label="x") for i in range(50))
        assert await interrupt("task", s.commit, 0.3)
        injector.uninstall()
        assert not s.commit_outcome_unknown  # nothing was sent: the outcome is known
        assert s.session_state is SessionState.FAILED
        await s.rollback()
        assert await tag_codes(lite) == set()
        await s.close()
        await assert_clean(lite)

    async def test_call_still_running_after_the_cleanup_timeout_is_an_unknown_outcome(
        self, lite: aiouow.Pool, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from aiouow.dialects.sqlite import connection as dialect

        real = dialect.run_batch

        def slow(db: Any, batch: Any) -> None:
            time.sleep(1.0)  # the thread is busy beyond cleanup_timeout (0.3 s)
            real(db, batch)

        s = AsyncSession(lite)
        s.add_all(Tag(code=f"u{i}", label="x") for i in range(50))
        monkeypatch.setattr(dialect, "run_batch", slow)
        started = time.monotonic()
        assert await interrupt("task", s.commit, 0.1)
        assert time.monotonic() - started < 0.9  # the cleanup did not wait for the thread
        assert s.commit_outcome_unknown
        assert s.session_state is SessionState.FAILED
        assert lite.stats().in_use == 0  # the connection was closed, not pooled
        monkeypatch.setattr(dialect, "run_batch", real)
        await s.rollback()
        assert not s.commit_outcome_unknown
        await asyncio.sleep(1.2)  # the stopped call ends without its COMMIT
        assert await tag_codes(lite) == set()
        await s.close()
        await assert_clean(lite)

    async def test_stale_update_is_found_before_the_commit(self, lite: aiouow.Pool) -> None:
        """A fused commit checks every step's row count before COMMIT: an update of a vanished row
        commits nothing."""
        await seed(lite, "a", "b")
        async with AsyncSession(lite) as s:
            a, b = await s.get_one(Tag, "a"), await s.get_one(Tag, "b")
            await s.commit()
            async with AsyncSession(lite) as other:
                await other.execute("DELETE FROM tags WHERE code = 'b'")
                await other.commit()
            a.label = "changed"
            b.label = "changed"
            s.add(Tag(code="c", label="new"))
            with pytest.raises(aiouow.StaleDataError, match="a row no longer exists"):
                await s.commit()
            await s.rollback()
        async with AsyncSession(lite) as s:
            assert {t.code: t.label for t in await s.all(Tag)} == {"a": "seed"}
        await assert_clean(lite)


class TestLoad:
    async def test_many_concurrent_sessions_lose_no_update(self, url: str) -> None:
        """1,000 concurrent sessions over a pool of 10 increment shared counters.

        No update is lost, no connection leaks, nothing deadlocks."""
        async with aiouow.create_pool(fault_url(url), max_size=10, acquire_timeout=120) as pool:
            await pool.drop_all(Tag)
            await pool.create_all(Tag)
            await seed(pool, *(f"c{i}" for i in range(5)))
            async with AsyncSession(pool) as s:
                await s.execute("UPDATE tags SET label = '0'")
                await s.commit()

            async def bump(n: int) -> None:
                async with AsyncSession(pool) as s:
                    counter = await s.get_one(Tag, f"c{n % 5}", for_update=True)
                    counter.label = str(int(counter.label) + 1)
                    await s.commit()

            with anyio.fail_after(110):
                await asyncio.gather(*(bump(n) for n in range(1000)))
            async with AsyncSession(pool) as s:
                assert sum(int(t.label) for t in await s.all(Tag)) == 1000
            await assert_clean(pool)
            await pool.drop_all(Tag)
