"""One parametrized ``pool`` fixture runs every behaviour test on every dialect.

SQLite uses a fresh database file per test. PostgreSQL uses ``AIOUOW_PG_URL`` (default: the
local server); where no server answers, its tests skip with the reason, except under CI
(``CI=true``), where a missing server fails the run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import aiouow

from .models import ALL

PG_URL = os.environ.get("AIOUOW_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
DIALECTS = ["sqlite", "postgresql"]
_pg_checked: str | None = None  # "" when reachable, else the reason


async def _pg_unreachable() -> str:
    global _pg_checked
    if _pg_checked is None:
        try:
            import asyncpg

            conn = await asyncio.wait_for(asyncpg.connect(PG_URL), 5)
            await conn.close()
            _pg_checked = ""
        except Exception as exc:  # any failure to connect means: no server here
            _pg_checked = f"no PostgreSQL at {PG_URL} ({type(exc).__name__}: {exc})"
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
