"""Faults at awkward moments and bad options end in the right aiouow error and session state."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import asyncpg.exceptions as pgerr
import pytest

import aiouow
from aiouow import AsyncSession, ConfigurationError, ConnectionLostError, PoolTimeoutError, SessionState
from aiouow.dialects.postgresql import PooledConnection
from aiouow.dialects.postgresql.errors import translate as pg_translate

from .conftest import url_for
from .models import ALL, AllTypes, Tag


class TestPoolTimeoutLeavesTheSession:
    @pytest.mark.parametrize("operation", ["flush", "commit"])
    async def test_pool_timeout_at_flush_or_commit_leaves_the_session_as_it_was(self, url: str, operation: str) -> None:
        """No connection to be had: PoolTimeoutError, the session IDLE with its pending objects,
        and the same call succeeds once a connection is free."""
        async with aiouow.create_pool(url, max_size=1, acquire_timeout=0.2) as pool:
            await pool.drop_all(*ALL)
            await pool.create_all(*ALL)
            holder = AsyncSession(pool)
            await holder.all(Tag)  # holds the pool's only connection
            async with AsyncSession(pool) as s:
                tag = Tag(code="t", label="pending")
                s.add(tag)
                with pytest.raises(PoolTimeoutError) as caught:
                    await getattr(s, operation)()
                assert "earlier statement" not in str(caught.value)
                assert s.session_state is SessionState.IDLE
                assert s.state(tag) is aiouow.ObjectState.PENDING and tag in s.new
                await holder.close()
                await s.commit()  # the same session, as it was: nothing to roll back first
            async with AsyncSession(pool) as s:
                assert (await s.get_one(Tag, "t")).label == "pending"
            await pool.drop_all(*ALL)


async def two_pools_on_one_file(tmp_path: Path, busy_timeout: float) -> tuple[aiouow.Pool, aiouow.Pool]:
    """Two pools (as two processes would be) on one SQLite file holding the tag "a"."""
    url = f"sqlite:///{tmp_path}/shared.db"
    mine, theirs = await aiouow.create_pool(url, busy_timeout=busy_timeout), await aiouow.create_pool(url)
    await mine.create_all(Tag)
    async with AsyncSession(mine) as s:
        s.add(Tag(code="a", label="a"))
        await s.commit()
    return mine, theirs


async def read_then_lock_elsewhere(s: AsyncSession, other: AsyncSession) -> None:
    """``s`` reads (a snapshot) and changes tag "a"; ``other`` then takes SQLite's write lock."""
    tag = await s.get_one(Tag, "a")
    await other.execute("INSERT INTO tags (code, label) VALUES ('b', 'b')")
    tag.label = "changed"


class TestSQLiteWriteLock:
    async def test_read_then_write_waits_for_another_pools_write_lock(self, tmp_path: Path) -> None:
        """A read transaction that starts writing while another pool (process) holds SQLite's write
        lock waits for it, up to busy_timeout, instead of failing at once."""
        mine, theirs = await two_pools_on_one_file(tmp_path, busy_timeout=5)
        async with mine, theirs:
            async with AsyncSession(theirs) as other, AsyncSession(mine) as s:
                await read_then_lock_elsewhere(s, other)

                async def release_later() -> None:
                    await asyncio.sleep(0.3)
                    await other.commit()

                releasing = asyncio.create_task(release_later())
                await s.commit()  # waits for their commit, then writes
                await releasing
            async with AsyncSession(mine) as s:
                assert {t.code: t.label for t in await s.all(Tag)} == {"a": "changed", "b": "b"}

    async def test_read_then_write_gives_up_after_busy_timeout(self, tmp_path: Path) -> None:
        mine, theirs = await two_pools_on_one_file(tmp_path, busy_timeout=0.5)
        async with mine, theirs, AsyncSession(theirs) as other, AsyncSession(mine) as s:
            await read_then_lock_elsewhere(s, other)
            started = time.monotonic()
            with pytest.raises(aiouow.OperationalError, match="locked"):
                await s.commit()
            assert time.monotonic() - started >= 0.4  # it waited for the lock
            await other.rollback()


class TestSQLiteClosedPool:
    @pytest.mark.parametrize("later", [False, True])
    async def test_commit_after_pool_close_is_connection_lost_and_not_unknown(
        self, tmp_path: Path, later: bool
    ) -> None:
        pool = await aiouow.create_pool(f"sqlite:///{tmp_path}/c.db", cleanup_timeout=0.1)
        await pool.create_all(Tag)
        s = AsyncSession(pool)
        s.add(Tag(code="a", label="a"))
        await s.flush()
        await pool.close()  # closes the session's connection after cleanup_timeout
        if later:
            await asyncio.sleep(0.2)
        with pytest.raises(ConnectionLostError):
            await s.commit()
        assert not s.commit_outcome_unknown
        await s.close()


class TestPostgresConnectionFaults:
    async def test_failed_reset_at_release_is_connection_lost_after_the_commit(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The server ends the connection between the COMMIT and the release's reset query: the
        session stays committed and ConnectionLostError is raised (never a raw asyncpg error)."""
        url = await url_for("postgresql", tmp_path)
        real_reset = PooledConnection.aiouow_reset

        async def reset_on_a_dead_connection(con: PooledConnection) -> None:
            killer = await asyncpg.connect(url)
            try:
                await killer.execute("SELECT pg_terminate_backend($1)", con.get_server_pid())
            finally:
                await killer.close()
            await asyncio.sleep(0.1)
            await real_reset(con)

        async with aiouow.create_pool(url, max_size=2) as pool:
            await pool.drop_all(Tag)
            await pool.create_all(Tag)
            monkeypatch.setattr(PooledConnection, "aiouow_reset", reset_on_a_dead_connection)
            with pytest.raises(ConnectionLostError, match="reset"):
                async with AsyncSession(pool) as s:
                    await s.execute("INSERT INTO tags (code, label) VALUES ('r', 'r')")  # raw SQL: a reset
                    await s.commit()
            assert s.session_state is SessionState.CLOSED and not s.commit_outcome_unknown
            monkeypatch.setattr(PooledConnection, "aiouow_reset", real_reset)
            async with AsyncSession(pool) as s2:
                assert [t.code for t in await s2.all(Tag)] == ["r"]
            assert pool.stats().in_use == 0
            await pool.drop_all(Tag)

    def test_busy_protocol_at_begin_is_connection_lost(self) -> None:
        exc = pgerr.InternalClientError("cannot switch to state 15; another operation (2) is in progress")
        assert isinstance(pg_translate(exc, "begin a transaction"), ConnectionLostError)

    async def test_driver_data_error_names_the_field(self, tmp_path: Path) -> None:
        """asyncpg's "invalid input for query argument $N" names the field that carried it."""

        class OpaqueUUID(uuid.UUID):
            @property
            def bytes(self) -> bytes:  # type: ignore[override]
                raise ValueError("no bytes here")

        url = await url_for("postgresql", tmp_path)
        async with aiouow.create_pool(url) as pool:
            await pool.drop_all(AllTypes)
            await pool.create_all(AllTypes)
            async with AsyncSession(pool) as s:
                s.add(AllTypes(u=OpaqueUUID(int=5)))
                with pytest.raises(aiouow.DataError, match=r"cannot insert AllTypes into all_types: field 'u' holds"):
                    await s.flush()
                await s.rollback()
            await pool.drop_all(AllTypes)


class TestOptions:
    @pytest.mark.parametrize("name", ["acquire_timeout", "busy_timeout", "cleanup_timeout"])
    @pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, 0])
    def test_timeouts_must_be_positive_and_finite(self, name: str, value: float) -> None:
        with pytest.raises(ConfigurationError, match=f"{name} must be a positive, finite number"):
            aiouow.create_pool("sqlite://:memory:", **{name: value})

    def test_busy_timeout_fits_sqlite(self) -> None:
        with pytest.raises(ConfigurationError, match="busy_timeout must be at most"):
            aiouow.create_pool("sqlite://:memory:", busy_timeout=10**7)

    @pytest.mark.parametrize(
        ("url", "why"),
        [
            ("postgresql://app@127.0.0.1:abc/db", "port 'abc'"),
            ("postgresql://app@127.0.0.1:99999/db", "port '99999'"),
            ("postgresql://app@h1:5432,h2:x/db", "port 'x'"),
            ("postgresql://app@[::1]:0/db", "port '0'"),
            ("postgresql://app@127.0.0.1/db?sslmode=bogus", "sslmode 'bogus'"),
            ("postgresql://app:pw@[::1/db", "not a valid URL"),
        ],
    )
    def test_malformed_postgresql_urls(self, url: str, why: str) -> None:
        with pytest.raises(ConfigurationError, match=why) as caught:
            aiouow.create_pool(url)
        assert "pw" not in str(caught.value)

    @pytest.mark.parametrize(
        "url", ["postgresql://app@[::1]:5432/db", "postgresql://app@h1:5432,h2:5433/db?sslmode=require"]
    )
    def test_good_postgresql_urls_pass(self, url: str) -> None:
        aiouow.create_pool(url)  # (nothing connects before it is awaited)

    async def test_asyncpg_refusal_of_a_url_is_a_configuration_error(self, tmp_path: Path) -> None:
        # asyncpg checks more parameters than aiouow does (e.g. target_session_attrs).
        bad: Any = await url_for("postgresql", tmp_path) + "?target_session_attrs=nonsense"
        with pytest.raises(ConfigurationError, match="target_session_attrs"):
            await aiouow.create_pool(bad)
