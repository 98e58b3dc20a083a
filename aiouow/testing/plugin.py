"""pytest fixtures for code that uses aiouow; load them with ``pytest_plugins = ["aiouow.testing.plugin"]``
in a ``conftest.py`` (needs pytest-asyncio).

- ``aiouow_url``: the database URL of the test: ``$AIOUOW_TEST_URL``, else ``sqlite://:memory:``.
  Override the fixture to choose another way.
- ``aiouow_entities``: the entity classes whose tables ``aiouow_pool`` creates; ``()`` unless
  overridden.
- ``aiouow_pool``: a pool on ``aiouow_url`` inside `aiouow.testing.rollback`: the tables of
  ``aiouow_entities`` are created and everything the test writes is rolled back at its end.
- ``aiouow_session``: an `aiouow.AsyncSession` on ``aiouow_pool``, closed at the end.
- ``aiouow_rollback``: `aiouow.testing.rollback_new_pools` for the test: the work of every pool the
  test opens (an application's lifespan under Starlette's ``TestClient``) is rolled back when
  that pool closes.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest
import pytest_asyncio

from .._pool import Pool, create_pool
from .._session import AsyncSession
from . import rollback, rollback_new_pools

__all__ = ["aiouow_entities", "aiouow_pool", "aiouow_rollback", "aiouow_session", "aiouow_url"]


@pytest.fixture
def aiouow_url() -> str:
    """The test's database URL: ``$AIOUOW_TEST_URL``, else a private in-memory SQLite database."""
    return os.environ.get("AIOUOW_TEST_URL", "sqlite://:memory:")


@pytest.fixture
def aiouow_entities() -> Sequence[type]:
    """The entity classes whose tables ``aiouow_pool`` creates (override it; none by default)."""
    return ()


@pytest_asyncio.fixture
async def aiouow_pool(aiouow_url: str, aiouow_entities: Sequence[type]) -> AsyncIterator[Pool]:
    """A pool whose every session transaction is rolled back at the end of the test (the tables too)."""
    async with create_pool(aiouow_url) as pool, rollback(pool):
        await pool.create_all(*aiouow_entities)
        yield pool


@pytest_asyncio.fixture
async def aiouow_session(aiouow_pool: Pool) -> AsyncIterator[AsyncSession]:
    """A session on ``aiouow_pool``: its commits are seen by the test's later sessions, and rolled back."""
    async with AsyncSession(aiouow_pool) as session:
        yield session


@pytest.fixture
def aiouow_rollback() -> Iterator[None]:
    """Roll back the work of every pool opened during the test (fails the test if one is left open)."""
    with rollback_new_pools():
        yield
