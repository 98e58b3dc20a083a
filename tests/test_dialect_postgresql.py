"""PostgreSQL specifics: DDL, statement shapes, locks, cursors, error translation, wrapping asyncpg."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import asyncpg.exceptions as pgerr
import pytest

import aiouow
from aiouow import AsyncSession, errors, select
from aiouow.dialects import postgresql as pg

from .conftest import url_for
from .models import ALL, Order, Tag, User


@pytest.fixture
async def pgpool(tmp_path: Path) -> AsyncIterator[aiouow.Pool]:
    url = await url_for("postgresql", tmp_path)
    async with aiouow.create_pool(url, max_size=4) as pool:
        await pool.drop_all(*ALL)
        await pool.create_all(*ALL)
        yield pool
        await pool.drop_all(*ALL)


class TestDDL:
    async def test_identity_unique_and_index(self, pgpool: aiouow.Pool) -> None:
        """create_all makes identity keys, unique constraints, indexes, and the right column types."""
        async with AsyncSession(pgpool) as s:
            cols = await s.execute(
                "SELECT column_name, data_type, is_identity FROM information_schema.columns "
                "WHERE table_name = 'users' ORDER BY ordinal_position"
            )
            types = {r["column_name"]: (r["data_type"], r["is_identity"]) for r in cols}
            assert types["id"] == ("bigint", "YES")
            assert types["created"][0] == "timestamp with time zone"
            assert types["profile"][0] == "jsonb"
            idx = await s.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'orders'")
            assert "ix_orders_user_id" in {r["indexname"] for r in idx}
            cons = await s.execute("SELECT conname FROM pg_constraint WHERE conrelid = 'users'::regclass")
            assert "uq_users_email" in {r["conname"] for r in cons}
            naive = await s.execute(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = 'all_types' AND column_name = 'naive'"
            )
            assert naive[0]["data_type"] == "timestamp without time zone"


class TestStatements:
    async def test_flush_statement_text_does_not_depend_on_row_count(self, pgpool: aiouow.Pool) -> None:
        """Batches of any size reuse one prepared INSERT (unnest arrays), so the statement cache holds one entry."""
        for n in (2, 7, 300):
            async with AsyncSession(pgpool) as s:
                s.add_all(Tag(code=f"{n}-{i}", label="x") for i in range(n))
                await s.commit()
                assert s.stats().statements["insert"] == 1
        dialect = pgpool.driver.dialect
        assert isinstance(dialect, pg.PostgresDialect)
        inserts = [k for k in dialect._flush_sql if k[0] == "insert" and k[1].table == "tags" and not k[4]]
        assert len(inserts) == 1

    async def test_generated_keys_match_objects_beyond_parameter_limit(self, pgpool: aiouow.Pool) -> None:
        """40,000 rows in one flush (more than 32767 parameters would allow) get the right keys."""
        users = [User(name=f"n{i}", email=f"{i}@x") for i in range(40_000)]
        async with AsyncSession(pgpool) as s:
            s.add_all(users)
            await s.commit()
            assert s.stats().statements["insert"] == 1
            rows = await s.execute("SELECT id, email FROM users")
        by_id = {r["id"]: r["email"] for r in rows}
        assert all(by_id[u.id] == u.email for u in users)

    async def test_stream_uses_a_server_side_cursor(self, pgpool: aiouow.Pool) -> None:
        """stream() reads through a cursor in batches."""
        async with AsyncSession(pgpool) as s:
            s.add_all(Tag(code=f"t{i:04}", label="x") for i in range(1000))
            await s.commit()
            s.expunge_all()
            n = 0
            async for _ in s.stream(select(Tag), batch_size=100):
                n += 1
            assert n == 1000
            assert s.stats().statements["fetch"] >= 10

    async def test_for_update_blocks_a_second_locker(self, pgpool: aiouow.Pool) -> None:
        """get(for_update=True) holds a row lock until the transaction ends."""
        async with AsyncSession(pgpool) as s:
            s.add(Tag(code="c", label="0"))
            await s.commit()
        async with AsyncSession(pgpool) as a, AsyncSession(pgpool) as b:
            locked = await a.get_one(Tag, "c", for_update=True)
            second = asyncio.create_task(b.get_one(Tag, "c", for_update=True))
            await asyncio.sleep(0.2)
            assert not second.done()
            locked.label = "1"
            await a.commit()
            got = await second
            assert got.label == "1"
            await b.commit()

    async def test_in_list_is_one_array_parameter(self, pgpool: aiouow.Pool) -> None:
        """in_() compiles to = ANY($1) whatever the list's length."""
        from aiouow import col

        sql, params = pgpool.driver.dialect.compile_select(select(User).where(col(User.id).in_([1, 2, 3])))
        assert "= ANY($1::bigint[])" in sql and params == [[1, 2, 3]]


class TestErrors:
    def test_every_asyncpg_error_class_is_translated(self) -> None:
        """Every exception class asyncpg can raise maps to an aiouow DatabaseError, never passes through."""
        classes = [
            c
            for _, c in inspect.getmembers(pgerr, inspect.isclass)
            if issubclass(c, BaseException) and not issubclass(c, Warning)  # warnings are logged, never raised
        ]
        assert len(classes) > 200
        for cls in classes:
            assert issubclass(cls, pg.TRANSLATED), cls
            try:
                exc = cls("boom")
            except TypeError:
                exc = cls.__new__(cls)
            out = pg.translate(exc, "do it")
            assert isinstance(out, errors.DatabaseError), cls
            assert str(out).startswith("cannot do it: ")

    @pytest.mark.parametrize(
        ("cls", "expected"),
        [
            (pgerr.UniqueViolationError, errors.UniqueViolationError),
            (pgerr.ForeignKeyViolationError, errors.ForeignKeyViolationError),
            (pgerr.NotNullViolationError, errors.NotNullViolationError),
            (pgerr.CheckViolationError, errors.CheckViolationError),
            (pgerr.ExclusionViolationError, errors.IntegrityError),
            (pgerr.SerializationError, errors.SerializationError),
            (pgerr.DeadlockDetectedError, errors.SerializationError),
            (pgerr.NumericValueOutOfRangeError, errors.DataError),
            (pgerr.InvalidTextRepresentationError, errors.DataError),
            (pgerr.AdminShutdownError, errors.ConnectionLostError),
            (pgerr.ConnectionDoesNotExistError, errors.ConnectionLostError),
            (pgerr.QueryCanceledError, errors.OperationalError),
            (pgerr.LockNotAvailableError, errors.OperationalError),
            (pgerr.UndefinedTableError, errors.DatabaseError),
        ],
    )
    def test_sqlstates_map_to_specific_errors(self, cls: type[Exception], expected: type[Exception]) -> None:
        """SQLSTATEs map to the specific aiouow errors."""
        assert type(pg.translate(cls("x"), "do it")) is expected

    async def test_constraint_names_reach_the_error(self, pgpool: aiouow.Pool) -> None:
        """A unique violation names its constraint, and keeps asyncpg's error as __cause__."""
        async with AsyncSession(pgpool) as s:
            s.add(User(name="a", email="same"), User(name="b", email="same"))
            with pytest.raises(aiouow.UniqueViolationError, match="uq_users_email") as info:
                await s.commit()
            assert info.value.constraint == "uq_users_email"
            assert isinstance(info.value.__cause__, pgerr.UniqueViolationError)
            await s.rollback()

    async def test_numeric_overflow_is_a_data_error(self, pgpool: aiouow.Pool) -> None:
        """A value the database refuses (22xxx) raises DataError and fails the session."""
        async with AsyncSession(pgpool) as s:
            with pytest.raises(aiouow.DataError, match="22"):
                await s.execute("SELECT 1 / 0")
            assert s.session_state is aiouow.SessionState.FAILED
            await s.rollback()

    async def test_unreachable_server_is_a_connection_error(self) -> None:
        """A pool on a server that does not answer fails with ConnectionLostError, password redacted."""
        with pytest.raises(aiouow.ConnectionLostError) as info:
            await aiouow.create_pool("postgresql://u:secret@127.0.0.1:1/db")
        assert "secret" not in str(info.value) and "***" in str(info.value)


class TestWrapping:
    async def test_from_asyncpg_wraps_and_leaves_pool_open(self, tmp_path: Path) -> None:
        """Pool.from_asyncpg works like a pool of our own and does not close the wrapped pool."""
        url = await url_for("postgresql", tmp_path)
        raw = await asyncpg.create_pool(url, min_size=1, max_size=2)
        try:
            pool = aiouow.Pool.from_asyncpg(raw)
            assert pool.dialect == "postgresql"
            await pool.create_all(User, Order)
            async with AsyncSession(pool) as s:
                u = User(name="w", email="w@x")
                s.add(u)
                await s.flush()
                s.add(Order(user_id=u.id, total=Decimal("1.5")))
                await s.commit()
            await pool.drop_all(User, Order)
            await pool.close()
            assert not raw.is_closing()
            async with raw.acquire() as conn:
                assert await conn.fetchval("SELECT 1") == 1
        finally:
            await raw.close()

    def test_from_asyncpg_needs_an_asyncpg_pool(self) -> None:
        """Wrapping something else raises ConfigurationError."""
        with pytest.raises(aiouow.ConfigurationError, match=r"expected an asyncpg\.Pool"):
            aiouow.Pool.from_asyncpg(object())


class TestAcquire:
    async def test_a_free_slot_is_lent_without_a_timer(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """With a free slot, acquire sets no acquire_timeout timer (it cannot wait for another
        session); with every slot lent, it waits under the timer and times out. The free slots
        are read from asyncpg's private queue: this fails if asyncpg stops having one."""
        url = await url_for("postgresql", tmp_path)
        timers: list[float | None] = []
        real_timeout = asyncio.timeout

        def spy(delay: float | None) -> asyncio.Timeout:
            timers.append(delay)
            return real_timeout(delay)

        async with aiouow.create_pool(url, max_size=2, acquire_timeout=0.2) as pool:
            driver = pool.driver
            assert isinstance(driver, pg.PostgresPool)
            assert isinstance(driver._free, asyncio.Queue)
            monkeypatch.setattr(asyncio, "timeout", spy)
            first = await driver.acquire()
            second = await driver.acquire()  # (asyncpg opens the second connection)
            assert timers == []
            with pytest.raises(aiouow.PoolTimeoutError):
                await driver.acquire()
            assert timers == [0.2]
            await driver.release(first)
            third = await driver.acquire()
            assert timers == [0.2]
            for conn in (second, third):
                await driver.release(conn)
            assert pool.stats().in_use == 0

    async def test_cancelled_during_the_release_after_commit(
        self, pgpool: aiouow.Pool, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A commit cancelled while asyncpg resets the connection for the pool (no cancel scope
        of aiouow's around it): the commit stands, and asyncpg finishes the release."""
        driver = pgpool.driver
        assert isinstance(driver, pg.PostgresPool)
        real_reset = pg.PooledConnection.aiouow_reset

        async def slow_reset(self: pg.PooledConnection) -> None:
            await asyncio.sleep(0.3)
            await real_reset(self)

        s = AsyncSession(pgpool)
        s.add(Tag(code="kept", label="x"))
        await s.flush()
        monkeypatch.setattr(pg.PooledConnection, "aiouow_reset", slow_reset)
        with anyio.move_on_after(0.1) as scope:
            await s.commit()
        assert scope.cancelled_caught
        assert s.session_state is aiouow.SessionState.IDLE  # committed, whatever the release met
        assert pgpool.stats().in_use == 0
        await asyncio.sleep(0.4)
        monkeypatch.undo()
        assert driver.raw.get_idle_size() == driver.raw.get_size()  # back in the pool, not closed
        await s.close()
        async with AsyncSession(pgpool) as check:
            assert [t.code for t in await check.all(Tag)] == ["kept"]


class _Logged:
    """The statements a pool's one connection runs (asyncpg's query logger, which sees the reset
    query of a release too)."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def __call__(self, record: Any) -> None:
        self.queries.append(record.query)

    async def install(self, pool: aiouow.Pool) -> None:
        driver = pool.driver
        assert isinstance(driver, pg.PostgresPool)
        conn = await driver.acquire()
        conn.raw.add_query_logger(self)
        await driver.release(conn)
        self.queries.clear()

    def resets(self) -> int:
        return sum("RESET ALL" in q for q in self.queries)


class TestRelease:
    """A connection that ran only aiouow's statements goes back to aiouow's pool without asyncpg's
    reset query; one that ran raw SQL is reset, as asyncpg resets every connection."""

    async def test_a_session_of_aiouow_statements_is_not_reset(self, tmp_path: Path) -> None:
        url = await url_for("postgresql", tmp_path)
        async with aiouow.create_pool(url, max_size=1) as pool:
            await pool.drop_all(*ALL)
            await pool.create_all(*ALL)
            log = _Logged()
            await log.install(pool)
            async with AsyncSession(pool) as s:
                s.add(Tag(code="a", label="x"))
                await s.commit()
            async with AsyncSession(pool) as s:
                tag = await s.get(Tag, "a")
                assert tag is not None
                tag.label = "y"
                await s.commit()
            async with AsyncSession(pool) as s:  # rolled back, not committed
                s.add(Tag(code="b", label="x"))
                await s.flush()
            async with AsyncSession(pool) as s:
                assert [t.label async for t in s.stream(select(Tag))] == ["y"]
            assert log.resets() == 0
            assert any(q.startswith("UPDATE") for q in log.queries)
            await pool.drop_all(*ALL)

    async def test_raw_sql_gets_the_reset(self, tmp_path: Path) -> None:
        """Settings and advisory locks a session's raw SQL took do not outlive its release."""
        url = await url_for("postgresql", tmp_path)
        async with aiouow.create_pool(url, max_size=1) as pool:
            log = _Logged()
            await log.install(pool)
            async with AsyncSession(pool) as s:
                default = (await s.execute("SHOW application_name"))[0]["application_name"]
            assert log.resets() == 1  # SHOW is raw SQL too: aiouow cannot tell what it does
            async with AsyncSession(pool) as s:
                await s.execute("SET application_name = 'changed by a session'")
                await s.execute("SELECT pg_advisory_lock(424242)")
                await s.commit()
            assert log.resets() == 2
            async with AsyncSession(pool) as s:
                rows = await s.execute("SHOW application_name")
            assert rows == [{"application_name": default}]
            other = await asyncpg.connect(url)
            try:
                assert await other.fetchval("SELECT pg_try_advisory_lock(424242)") is True
            finally:
                await other.close()

    async def test_a_wrapped_pool_keeps_its_own_reset(self, tmp_path: Path) -> None:
        """aiouow does not change the release of an asyncpg pool it did not make."""
        url = await url_for("postgresql", tmp_path)
        raw = await asyncpg.create_pool(url, min_size=1, max_size=1)
        try:
            pool = aiouow.Pool.from_asyncpg(raw)
            await pool.create_all(Tag)
            log = _Logged()
            await log.install(pool)
            async with AsyncSession(pool) as s:
                s.add(Tag(code="w", label="x"))
                await s.commit()
            assert log.resets() == 1
            await pool.drop_all(Tag)
        finally:
            await raw.close()

    async def test_server_settings_in_the_url(self, tmp_path: Path) -> None:
        """Query parameters asyncpg does not know are server settings of every connection; the
        release keeps them (RESET ALL would too: they are the connection's defaults)."""
        url = await url_for("postgresql", tmp_path)
        sep = "&" if "?" in url else "?"
        async with aiouow.create_pool(f"{url}{sep}application_name=aiouow-test", max_size=1) as pool:
            for _ in range(2):
                async with AsyncSession(pool) as s:
                    rows = await s.execute("SHOW application_name")
                assert rows == [{"application_name": "aiouow-test"}]


class TestSmallFixes:
    def test_password_in_query_string_is_redacted(self) -> None:
        """A password passed in the URL's query string never reaches an error message."""
        assert "secret" not in pg.redact("postgresql://u@h/db?sslmode=disable&password=secret")
        assert "secret" not in pg.redact("postgresql://u:secret@h/db")

    def test_only_40001_and_40p01_are_serialization_errors(self) -> None:
        """Other transaction-rollback SQLSTATEs are not reported as retryable."""
        assert (
            type(pg.translate(pgerr.TransactionIntegrityConstraintViolationError("x"), "do")) is errors.IntegrityError
        )
        assert type(pg.translate(pgerr.StatementCompletionUnknownError("x"), "do")) is errors.OperationalError
        assert type(pg.translate(pgerr.TransactionRollbackError("x"), "do")) is errors.DatabaseError

    async def test_closed_pool_says_so(self, tmp_path: Path) -> None:
        """Acquiring from a closed PostgreSQL pool raises ConnectionLostError saying the pool is closed."""
        url = await url_for("postgresql", tmp_path)
        pool = await aiouow.create_pool(url)
        await pool.close()
        with pytest.raises(aiouow.ConnectionLostError, match="the pool is closed"):
            async with AsyncSession(pool) as s:
                await s.all(User)


class TestServerDetail:
    async def test_a_unique_violation_says_which_key_collided(self, pgpool: aiouow.Pool) -> None:
        """The server's DETAIL (the colliding key) is kept in the message."""
        async with AsyncSession(pgpool) as s:
            s.add(User(name="a", email="dup@x"))
            await s.commit()
            s.add(User(name="b", email="dup@x"))
            with pytest.raises(errors.UniqueViolationError) as info:
                await s.commit()
            assert "DETAIL: Key (email)=(dup@x) already exists." in str(info.value)
            assert info.value.constraint == "uq_users_email"

    async def test_a_failed_drop_says_what_depends_on_the_table_and_hints(self, pgpool: aiouow.Pool) -> None:
        """DETAIL names the dependent constraint and HINT the way out."""
        async with AsyncSession(pgpool) as s:
            with pytest.raises(errors.DatabaseError) as info:
                await s.execute("DROP TABLE users")
            message = str(info.value)
            assert "DETAIL: constraint fk_orders_user_id on table orders depends on table users" in message
            assert "HINT: Use DROP ... CASCADE" in message
