"""aiouow.testing: everything a test writes is rolled back (both dialects, real databases)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

import aiouow
from aiouow import AsyncSession, SessionError, UniqueViolationError, select
from aiouow.integrations.starlette import SessionMiddleware, get_session, install_error_handlers
from aiouow.testing import rollback, rollback_new_pools

from .conftest import url_for
from .faults import LONG_SQL
from .models import Tag, User


async def count_users(pool: aiouow.Pool) -> int:
    async with AsyncSession(pool) as s:
        return await s.count(select(User))


async def commit_user(pool: aiouow.Pool, name: str) -> None:
    async with AsyncSession(pool) as s:
        s.add(User(name=name, email=f"{name}@example.org"))
        await s.commit()


class TestRollback:
    async def test_commits_are_seen_inside_and_gone_after(self, pool: aiouow.Pool) -> None:
        async with rollback(pool):
            await commit_user(pool, "ann")
            async with AsyncSession(pool) as s:
                ann = await s.one(select(User).where(User.email == "ann@example.org"))
                ann.name = "anne"
                await s.commit()
            async with AsyncSession(pool) as s:
                assert (await s.one(select(User).where(User.email == "ann@example.org"))).name == "anne"
        assert await count_users(pool) == 0

    async def test_a_session_rollback_undoes_only_its_own_work(self, pool: aiouow.Pool) -> None:
        async with rollback(pool):
            await commit_user(pool, "ann")
            async with AsyncSession(pool) as s:
                s.add(User(name="bob", email="bob@example.org"))
                await s.flush()
                await s.rollback()
            assert await count_users(pool) == 1
        assert await count_users(pool) == 0

    async def test_a_failed_statement_fails_its_session_only(self, pool: aiouow.Pool) -> None:
        async with rollback(pool):
            await commit_user(pool, "ann")
            async with AsyncSession(pool) as s:
                s.add(User(name="dup", email="ann@example.org"))
                with pytest.raises(UniqueViolationError):
                    await s.commit()
            async with AsyncSession(pool) as s:  # the test's transaction goes on (PostgreSQL too)
                s.add(User(name="bob", email="bob@example.org"))
                await s.commit()
            assert await count_users(pool) == 2
        assert await count_users(pool) == 0

    async def test_savepoints_inside(self, pool: aiouow.Pool) -> None:
        async with rollback(pool):
            async with AsyncSession(pool) as s:
                s.add(User(name="ann", email="ann@example.org"))
                with contextlib.suppress(RuntimeError):
                    async with s.begin_nested():
                        s.add(User(name="bob", email="bob@example.org"))
                        await s.flush()
                        raise RuntimeError("undo bob")
                await s.commit()
            assert await count_users(pool) == 1
        assert await count_users(pool) == 0

    async def test_tables_created_inside_are_rolled_back(self, pool: aiouow.Pool) -> None:
        await pool.drop_all(Tag)
        async with rollback(pool):
            await pool.create_all(Tag)
            async with AsyncSession(pool) as s:
                s.add(Tag(code="t", label="a tag"))
                await s.commit()
        with pytest.raises(aiouow.SchemaError, match="tags"):
            await pool.check_schema(Tag)
        await pool.create_all(Tag)  # (what the fixture's teardown expects)

    async def test_sessions_of_concurrent_tasks_take_turns(self, pool: aiouow.Pool) -> None:
        async def add(n: int) -> None:
            async with AsyncSession(pool) as s:
                s.add(User(name=f"u{n}", email=f"u{n}@example.org"))
                await s.flush()
                await asyncio.sleep(0)  # another task asks for the connection meanwhile
                await s.commit()

        async with rollback(pool):
            await asyncio.gather(*(add(n) for n in range(5)))
            assert await count_users(pool) == 5
            assert pool.stats().in_use == 0
        assert await count_users(pool) == 0

    async def test_a_second_open_transaction_in_one_task_is_refused_at_once(self, pool: aiouow.Pool) -> None:
        async with rollback(pool):
            async with AsyncSession(pool) as first, AsyncSession(pool) as second:
                await first.count(select(User))  # holds the connection until it ends
                with pytest.raises(SessionError, match="another session of this task has an open transaction"):
                    await second.count(select(User))
                await first.rollback()
                assert await second.count(select(User)) == 0

    async def test_a_session_left_open_is_an_error(self, pool: aiouow.Pool) -> None:
        with pytest.raises(SessionError, match="still had an open transaction"):
            async with rollback(pool):
                s = AsyncSession(pool)
                s.add(User(name="ann", email="ann@example.org"))
                await s.flush()
        with contextlib.suppress(aiouow.AiouowError):
            await s.close()
        assert await count_users(pool) == 0

    async def test_a_cancelled_statement_fails_its_session_only(self, pool: aiouow.Pool, dialect: str) -> None:
        async with rollback(pool):
            await commit_user(pool, "ann")
            async with AsyncSession(pool) as s:
                s.add(User(name="bob", email="bob@example.org"))
                await s.flush()
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.3):
                        await s.execute(LONG_SQL[dialect])
                await s.rollback()
            assert await count_users(pool) == 1  # bob's work is undone, ann's kept: the test goes on
        assert await count_users(pool) == 0

    async def test_nesting_is_refused(self, pool: aiouow.Pool) -> None:
        async with rollback(pool):
            with pytest.raises(SessionError, match="already inside"):
                async with rollback(pool):
                    pass


Session = Annotated[AsyncSession, Depends(get_session)]


def lifespan_app(url: str) -> FastAPI:
    """A FastAPI application that opens its pool in its lifespan, as the docs show."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with aiouow.create_pool(url) as pool:
            await pool.create_all(User)
            app.state.pool = pool
            yield

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(SessionMiddleware, pool=lambda: app.state.pool)
    install_error_handlers(app)

    @app.post("/users", status_code=201)
    async def create(user: User, s: Session) -> User:
        s.add(user)
        await s.flush()
        return user

    @app.get("/users/count")
    async def count(s: Session) -> int:
        return await s.count(select(User))

    return app


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_testclient_with_a_pool_opened_in_the_lifespan(dialect: str, tmp_path: Path) -> None:
    url = asyncio.run(url_for(dialect, tmp_path))
    app = lifespan_app(url)
    with rollback_new_pools():
        with TestClient(app) as client:
            created = client.post("/users", json={"name": "ann", "email": "ann@example.org"})
            assert created.status_code == 201, created.text
            assert client.get("/users/count").json() == 1
            assert client.post("/users", json={"name": "a2", "email": "ann@example.org"}).status_code == 409
            assert client.get("/users/count").json() == 1
        with TestClient(app) as client:  # the next test's client starts from nothing
            assert client.get("/users/count").json() == 0

    async def leftover() -> int:
        async with aiouow.create_pool(url) as pool:
            await pool.create_all(User)
            return await count_users(pool)

    assert asyncio.run(leftover()) == 0


def test_a_pool_never_closed_is_an_error(tmp_path: Path) -> None:
    async def open_and_forget() -> aiouow.Pool:
        pool = await aiouow.create_pool(f"sqlite:///{tmp_path}/t.db")
        await pool.create_all(User)
        return pool

    async def close(pool: aiouow.Pool) -> None:
        await pool.close()

    with pytest.raises(SessionError, match=r"never closed.*TestClient\(app\) as client"), rollback_new_pools():
        pool = asyncio.run(open_and_forget())
    asyncio.run(close(pool))


PLUGIN_TESTS = """
import pytest
import aiouow
from aiouow import AsyncSession, Entity, field, select

pytest_plugins = ["aiouow.testing.plugin"]


class Note(Entity):
    id: int = field(primary_key=True)
    text: str


@pytest.fixture
def aiouow_entities():
    return [Note]


@pytest.mark.asyncio
@pytest.mark.parametrize("n", [1, 2])
async def test_each_test_starts_empty(aiouow_session: AsyncSession, aiouow_pool: aiouow.Pool, n: int) -> None:
    assert await aiouow_session.count(select(Note)) == 0
    aiouow_session.add(Note(text="kept until the test ends"))
    await aiouow_session.commit()
    async with AsyncSession(aiouow_pool) as other:
        assert await other.count(select(Note)) == 1
"""


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_pytest_plugin(
    dialect: str, tmp_path: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIOUOW_TEST_URL", asyncio.run(url_for(dialect, tmp_path)))
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_notes=PLUGIN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error", "-q")
    assert result.ret == 0, str(result.stdout)
    result.assert_outcomes(passed=2)
