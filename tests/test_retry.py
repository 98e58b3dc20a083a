"""run_transaction: real conflicts (serializable read-then-write races, deadlocks) run again, whole."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import aiouow
from aiouow import AsyncSession, SerializationError, run_transaction

from .models import Tag


async def seed(pool: aiouow.Pool, *codes: str) -> None:
    async with AsyncSession(pool) as s:
        s.add_all(Tag(code=c, label="0") for c in codes)
        await s.commit()


async def labels(pool: aiouow.Pool) -> dict[str, str]:
    async with AsyncSession(pool) as s:
        return {t.code: t.label for t in await s.all(Tag)}


class TestConflicts:
    async def test_racing_increments_are_run_again_and_none_is_lost(self, pool: aiouow.Pool) -> None:
        """Two workers read a counter, both wait until both have read, then write it plus one:
        under SERIALIZABLE one of them conflicts (PostgreSQL 40001; SQLite's stale snapshot), is
        run again from scratch, and the counter ends at 2."""
        await seed(pool, "counter")
        both_read = asyncio.Barrier(2)
        attempts: list[int] = []
        retries: list[int] = []

        async def increment(s: AsyncSession) -> int:
            attempts.append(1)
            tag = await s.get_one(Tag, "counter")
            if len(attempts) <= 2:  # (first attempts only: a retry runs alone)
                await both_read.wait()
            tag.label = str(int(tag.label) + 1)
            await s.flush()
            return int(tag.label)

        results = await asyncio.gather(
            run_transaction(pool, increment, isolation="serializable", on_retry=lambda n, e: retries.append(n)),
            run_transaction(pool, increment, isolation="serializable", on_retry=lambda n, e: retries.append(n)),
        )
        assert sorted(results) == [1, 2]
        assert (await labels(pool))["counter"] == "2"
        assert len(attempts) == 3 and retries == [1]  # three attempts in all: one retry

    @pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
    async def test_a_real_deadlock_is_run_again(self, pool: aiouow.Pool) -> None:
        """Two workers lock two rows in opposite orders: PostgreSQL detects the deadlock (40P01),
        fails one of them, and run_transaction runs it again; both end committed."""
        await seed(pool, "a", "b")
        both_locked = asyncio.Barrier(2)
        attempts: dict[str, int] = {"ab": 0, "ba": 0}

        def worker(first: str, second: str) -> Any:
            async def fn(s: AsyncSession) -> str:
                attempts[first + second] += 1
                one = await s.get_one(Tag, first, for_update=True)
                if attempts[first + second] == 1:
                    await both_locked.wait()
                other = await s.get_one(Tag, second, for_update=True)
                one.label += first
                other.label += first
                return first

            return fn

        done = await asyncio.gather(run_transaction(pool, worker("a", "b")), run_transaction(pool, worker("b", "a")))
        assert sorted(done) == ["a", "b"]
        assert sum(attempts.values()) == 3  # one of them ran twice
        final = await labels(pool)
        assert sorted(final["a"][1:]) == sorted(final["b"][1:]) == ["a", "b"]


class TestRestartSavepoint:
    """CockroachDB's retry protocol, run on PostgreSQL (which takes SAVEPOINT cockroach_restart as any
    savepoint): a deadlock inside it is rolled back to it and the work runs again, in the same transaction."""

    async def test_a_deadlock_runs_again_inside_the_same_transaction(
        self, pool: aiouow.Pool, dialect: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        if dialect != "postgresql":
            with pytest.raises(aiouow.ConfigurationError, match="PostgreSQL-wire"):
                await run_transaction(pool, lambda s: asyncio.sleep(0), restart_savepoint="cockroach_restart")
            return
        await seed(pool, "a", "b")
        both_locked = asyncio.Barrier(2)
        transactions: dict[str, list[int]] = {"ab": [], "ba": []}

        def worker(first: str, second: str) -> Any:
            async def fn(s: AsyncSession) -> str:
                mine = transactions[first + second]
                rows = await s.execute("SELECT txid_current() AS tx")
                mine.append(rows[0]["tx"])
                one = await s.get_one(Tag, first, for_update=True)
                one.label += first  # (changed in memory: a restart puts it back)
                if len(mine) == 1:
                    await both_locked.wait()
                other = await s.get_one(Tag, second, for_update=True)
                other.label += first
                return first

            return fn

        caplog.set_level("DEBUG", logger="aiouow.sql")
        echoing: Any = pool.driver
        echoing.echo = True
        try:
            done = await asyncio.gather(
                run_transaction(pool, worker("a", "b"), restart_savepoint="cockroach_restart"),
                run_transaction(pool, worker("b", "a"), restart_savepoint="cockroach_restart"),
            )
        finally:
            echoing.echo = False
        assert sorted(done) == ["a", "b"]
        ran_twice = [t for t in transactions.values() if len(t) == 2]
        assert len(ran_twice) == 1 and ran_twice[0][0] == ran_twice[0][1]  # again, in the same transaction
        final = await labels(pool)
        assert sorted(final["a"][1:]) == sorted(final["b"][1:]) == ["a", "b"]  # each label changed once per worker
        sent = [r.getMessage().split(" | ")[0] for r in caplog.records if r.name == "aiouow.sql"]
        assert sent.count("SAVEPOINT cockroach_restart") == 2
        assert sent.count("ROLLBACK TO SAVEPOINT cockroach_restart") == 1
        assert sent.count("RELEASE SAVEPOINT cockroach_restart") == 2
        assert pool.stats().in_use == 0


class TestLimits:
    async def test_the_retry_limit_and_other_errors(self, pool: aiouow.Pool) -> None:
        calls = 0

        async def always_conflicts(s: AsyncSession) -> None:
            nonlocal calls
            calls += 1
            s.add(Tag(code=f"t{calls}", label="x"))
            await s.flush()
            raise SerializationError("cannot commit: the transaction conflicted with another one (as the test says)")

        with pytest.raises(SerializationError) as caught:
            await run_transaction(pool, always_conflicts, retries=2, backoff=0)
        assert calls == 3 and "gave up after 3 attempts (retries=2)" in str(caught.value.__notes__)
        assert await labels(pool) == {}  # every attempt rolled back

        async def fails(s: AsyncSession) -> None:
            nonlocal calls
            calls += 1
            raise ValueError("not a conflict")

        calls = 0
        with pytest.raises(ValueError, match="not a conflict"):
            await run_transaction(pool, fails)
        assert calls == 1
        with pytest.raises(aiouow.ConfigurationError, match="retries must be"):
            await run_transaction(pool, fails, retries=-1)

    async def test_a_cancellation_during_the_wait_propagates(self, pool: aiouow.Pool) -> None:
        async def conflicts(s: AsyncSession) -> None:
            raise SerializationError("cannot commit: conflict")

        task = asyncio.ensure_future(run_transaction(pool, conflicts, backoff=30, max_backoff=30, retries=3))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 1
        assert pool.stats().in_use == 0

    async def test_a_connection_lost_before_commit_is_run_again(self, pool: aiouow.Pool, dialect: str) -> None:
        calls: list[int] = []

        async def lost_once(s: AsyncSession) -> None:
            calls.append(len(calls) + 1)
            s.add(Tag(code=f"try{len(calls)}", label="x"))
            await s.flush()
            if len(calls) == 1:
                if dialect == "postgresql":  # the server ends this connection, as in a failover
                    await s.execute("SELECT pg_terminate_backend(pg_backend_pid())")
                raise aiouow.ConnectionLostError("cannot flush: the connection to the database was lost (injected)")

        await run_transaction(pool, lost_once, backoff=0)
        assert calls == [1, 2]
        async with AsyncSession(pool) as s:
            assert {t.code for t in await s.all(Tag)} == {"try2"}  # the first attempt left nothing
        assert pool.stats().in_use == 0

    async def test_an_unknown_commit_outcome_is_never_run_again(self, pool: aiouow.Pool) -> None:
        calls = 0

        async def lost_at_commit(s: AsyncSession) -> None:
            nonlocal calls
            calls += 1
            s.add(Tag(code="once", label="x"))
            await s.flush()
            conn: Any = s._tx.conn  # type: ignore[attr-defined]  # (a fault injected at COMMIT)
            real_commit = conn.commit

            async def lost(*args: Any, **kwargs: Any) -> Any:
                await real_commit(*args, **kwargs)
                raise aiouow.ConnectionLostError("cannot commit: the connection to the database was lost (injected)")

            conn.commit = lost

        with pytest.raises(aiouow.CommitOutcomeUnknownError):
            await run_transaction(pool, lost_at_commit)
        assert calls == 1
