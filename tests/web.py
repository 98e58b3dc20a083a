"""Helpers shared by the web integration tests: what the database holds, seen from another session."""

from __future__ import annotations

import asyncio

import aiouow
from aiouow import AsyncSession

from .models import User


async def emails(pool: aiouow.Pool) -> list[str]:
    """The users' emails as another session sees them (only what is committed)."""
    async with AsyncSession(pool) as s:
        return sorted(u.email for u in await s.all(User))


async def seed(pool: aiouow.Pool, email: str = "bob@example.org") -> None:
    """A committed user with ``email`` (for the unique-violation tests)."""
    async with AsyncSession(pool) as s:
        s.add(User(name="first", email=email))
        await s.commit()


async def wait_released(pool: aiouow.Pool) -> None:
    """Wait (a bounded time) until no connection is lent out."""
    async with asyncio.timeout(10):
        while pool.stats().in_use:  # noqa: ASYNC110  (the pool has no event to wait on)
            await asyncio.sleep(0.01)
