"""Fault-injection tools for the cancellation tests: interrupters, invariants, a fault injector, a proxy."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import asyncpg

import aiouow
from aiouow.dialects._base import Connection

from .conftest import PG_URL

HOW = ["task", "anyio"]

#: A statement that runs for many seconds unless it is stopped.
LONG_SQL = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500000000) "
    "SELECT count(*) AS n FROM c",
    "postgresql": "SELECT pg_sleep(30)",
}


async def interrupt(how: str, make: Callable[[], Awaitable[Any]], delay: float) -> bool:
    """Run ``make()`` and interrupt it after ``delay`` seconds; True when it was interrupted.

    ``task``: ``Task.cancel()`` from outside; ``anyio``: an anyio cancel scope (``move_on_after``).
    """
    if how == "task":
        task = asyncio.ensure_future(make())
        await asyncio.sleep(delay)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False
    with anyio.move_on_after(delay) as scope:
        await make()
    return scope.cancelled_caught


async def assert_clean(pool: aiouow.Pool) -> None:
    """Every connection is back, none of ours is left in a transaction, and no lock is held."""
    stats = pool.stats()
    assert stats.in_use == 0, stats
    assert stats.idle + stats.in_use == stats.size, stats
    assert stats.waiting == 0, stats
    if pool.dialect == "postgresql":
        conn = await asyncpg.connect(PG_URL)
        try:
            # Backends terminated by aiouow may take a moment to go away.
            for _ in range(50):
                stuck = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND application_name = 'aiouow-faults' "
                    "AND (state LIKE 'idle in transaction%' OR state = 'active')"
                )
                if stuck == 0:
                    break
                await asyncio.sleep(0.1)
            assert stuck == 0, "a backend of ours is still in a transaction or running a statement"
        finally:
            await conn.close()
    else:
        driver: Any = pool.driver
        assert not driver.write_lock.locked(), "the pool's SQLite write lock is still held"
        # A connection closed as a last resort closes in aiosqlite's thread: allow it a moment.
        raw = sqlite3.connect(driver.path, timeout=2)
        try:
            raw.execute("BEGIN IMMEDIATE")  # fails with "database is locked" if a write lock stays held
            raw.execute("ROLLBACK")
        finally:
            raw.close()


def fault_url(url: str) -> str:
    """The test URL, tagged so that invariants find our PostgreSQL backends."""
    if url.startswith("postgresql"):
        return url + ("&" if "?" in url else "?") + "application_name=aiouow-faults"
    return url


class Injector:
    """Wraps the connections a pool lends so that a hook runs before and after each driver call.

    ``points`` numbers every (before/after, call) pair in the order they happen; ``cancel_at``
    cancels the current task at that point, the way a real ``Task.cancel()`` would land there.
    """

    CALLS = ("begin", "prepare_write", "fetch", "run_steps", "commit_steps", "commit", "execute_raw")

    def __init__(self, pool: aiouow.Pool) -> None:
        self.pool = pool
        self.points: list[str] = []
        self.cancel_at: int | None = None
        self.delays: dict[str, float] = {}
        self._acquire = pool.driver.acquire

    async def _point(self, name: str) -> None:
        index = len(self.points)
        self.points.append(name)
        delay = self.delays.get(name)
        if delay:
            await asyncio.sleep(delay)
        if index == self.cancel_at:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
            await asyncio.sleep(0)  # the cancellation lands here

    def _wrap(self, conn: Connection) -> Connection:
        for name in self.CALLS:
            real = getattr(conn, name, None)
            if real is None:  # (a call this dialect does not have)
                continue

            def make(name: str, real: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
                async def wrapped(*args: Any, **kwargs: Any) -> Any:
                    await self._point(f"before {name}")
                    result = await real(*args, **kwargs)
                    await self._point(f"after {name}")
                    return result

                return wrapped

            setattr(conn, name, make(name, real))
        return conn

    async def acquire(self) -> Connection:
        conn = await self._acquire()
        for name in self.CALLS:  # a pooled connection may come back already wrapped
            conn.__dict__.pop(name, None)
        return self._wrap(conn)

    def install(self) -> None:
        self.pool.driver.acquire = self.acquire  # type: ignore[method-assign]

    def uninstall(self) -> None:
        self.pool.driver.acquire = self._acquire  # type: ignore[method-assign]


class BlackHoleProxy:
    """A loopback TCP proxy to PostgreSQL that can stop forwarding (a network black hole)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.blackhole = False
        self.server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if self.blackhole:
                    continue  # swallowed: neither side hears anything again
                writer.write(data)
                await writer.drain()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self.target)
        self._writers += [client_w, server_w]
        await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[BlackHoleProxy]:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        try:
            yield self
        finally:
            self.server.close()
            for w in self._writers:
                w.close()
            await self.server.wait_closed()
