"""One parametrized ``pool`` fixture runs every behaviour test on every dialect.

SQLite uses a fresh database file per test. PostgreSQL uses ``AIOUOW_PG_URL`` (default: the
``aiouow_test`` database of the local server, which the suite creates when it is missing and
drops at the end if it created it: the suite never touches the server's other databases, where a
user may keep real tables); where no server answers, its tests skip with the reason, except
under CI (``CI=true``), where a missing server fails the run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

import aiouow

from .models import ALL

pytest_plugins = ["pytester", "aiouow.testing.plugin"]

PG_URL = os.environ.get("AIOUOW_PG_URL", "postgresql://postgres@127.0.0.1:5432/aiouow_test")
DIALECTS = ["sqlite", "postgresql"]
_pg_checked: str | None = None  # "" when reachable, else the reason
_pg_created: str | None = None  # the database this run created (and drops at its end)


def _database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _maintenance_url(url: str) -> str:
    """The same server's ``postgres`` database, from which the test database is created."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres"))


async def _prepare_pg() -> str:
    """Connect to the test database, creating it first when it is missing; "" or the reason."""
    global _pg_created
    import asyncpg

    try:
        conn = await asyncio.wait_for(asyncpg.connect(PG_URL), 5)
    except asyncpg.InvalidCatalogNameError:
        name = _database_of(PG_URL)
        try:
            admin = await asyncio.wait_for(asyncpg.connect(_maintenance_url(PG_URL)), 5)
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()
            _pg_created = name
            conn = await asyncio.wait_for(asyncpg.connect(PG_URL), 5)
        except Exception as exc:
            return f"cannot create the test database {name!r} at {PG_URL} ({type(exc).__name__}: {exc})"
    except Exception as exc:  # any other failure to connect means: no server here
        return f"no PostgreSQL at {PG_URL} ({type(exc).__name__}: {exc})"
    await conn.close()
    return ""


async def _drop_created() -> None:
    import asyncpg

    assert _pg_created is not None
    admin = await asyncio.wait_for(asyncpg.connect(_maintenance_url(PG_URL)), 5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{_pg_created}" WITH (FORCE)')
    finally:
        await admin.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Drop the test database if this run created it (a run that found it leaves it)."""
    if _pg_created is not None:
        asyncio.run(_drop_created())


async def _pg_unreachable() -> str:
    global _pg_checked
    if _pg_checked is None:
        _pg_checked = await _prepare_pg()
    return _pg_checked


async def url_for(dialect: str, tmp_path: Path) -> str:
    """The database URL of a test on ``dialect`` (skips or fails when PostgreSQL is missing)."""
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path}/test.db"
    reason = await _pg_unreachable()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return PG_URL


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def url(dialect: str, tmp_path: Path) -> str:
    return await url_for(dialect, tmp_path)


@pytest.fixture
async def pool(url: str) -> AsyncIterator[aiouow.Pool]:
    """A pool on a database holding empty tables for every test entity; checks no connection leaked."""
    # AIOUOW_STATEMENT_CACHE_SIZE=0 runs the suite as PgBouncer in transaction mode needs it.
    cache = int(os.environ.get("AIOUOW_STATEMENT_CACHE_SIZE", "100"))
    async with aiouow.create_pool(url, max_size=5, statement_cache_size=cache) as p:
        await p.drop_all(*ALL)
        await p.create_all(*ALL)
        yield p
        stats = p.stats()
        assert stats.in_use == 0, f"a test leaked a connection: {stats}"
        await p.drop_all(*ALL)


@pytest.fixture
async def session(pool: aiouow.Pool) -> AsyncIterator[aiouow.AsyncSession]:
    async with aiouow.AsyncSession(pool) as s:
        yield s
