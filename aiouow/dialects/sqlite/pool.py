"""A pool of aiosqlite connections to one database file, with one writer at a time."""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from collections.abc import Callable

import aiosqlite
import anyio

from ..._url import DatabaseURL, PoolOptions
from ...errors import (
    ConnectionLostError,
    PoolTimeoutError,
)
from .._base import (
    UNOBSERVED,
    Connection,
    DriverPool,
    PoolStats,
)
from .connection import SQLiteConnection
from .dialect import SQLiteDialect
from .errors import DRIVER_ERRORS, translate


def connect_daemon(path: str) -> aiosqlite.Connection:
    """``aiosqlite.connect()``, its worker thread made a daemon before it starts.

    aiosqlite's threads are not daemons (since 0.22): a program that ends without closing its
    pool (an exception escaping ``asyncio.run``, a forgotten ``close()``) would hang at exit,
    waiting for them. SQLite needs no goodbye: an unfinished transaction is rolled back from the
    WAL when the file is next opened, as after a crash, and committed ones are on disk.
    """
    db = aiosqlite.connect(path, isolation_level=None)
    thread = getattr(db, "_thread", db)  # aiosqlite >= 0.22 owns a thread; older versions are one
    if isinstance(thread, threading.Thread):
        thread.daemon = True
    return db


class SQLitePool(DriverPool):
    """A pool of aiosqlite connections to one database file, with one writer at a time."""

    dialect: SQLiteDialect

    def __init__(self, path: str, options: PoolOptions, cleanup: Callable[[], None] | None = None) -> None:
        self.dialect = SQLiteDialect()
        self.path = path
        self.echo = options.echo
        self.min_size = options.min_size
        self.max_size = options.max_size
        self.acquire_timeout = options.acquire_timeout
        self.busy_timeout = options.busy_timeout
        self.cleanup_timeout = options.cleanup_timeout
        # A semaphore of one rather than a Lock: its locked() also counts queued waiters, so an
        # acquire that finds it unlocked never waits (and needs no timeout).
        self.write_lock = asyncio.BoundedSemaphore(1)
        self._idle: list[SQLiteConnection] = []
        self._lent: set[SQLiteConnection] = set()
        self._drained: asyncio.Event | None = None  # set when close() waits for lent connections
        self._in_use = 0
        self._waiting = 0
        self._slots = asyncio.Semaphore(options.max_size)
        self._closed = False
        self._cleanup = cleanup

    async def open(self) -> None:
        first = await self._connect()
        try:
            await first.db.execute_fetchall("PRAGMA journal_mode=WAL")  # fetched: a statement left open blocks COMMIT
        except DRIVER_ERRORS as exc:
            await first.close()
            raise translate(exc, f"open SQLite database {self.path!r}") from exc
        self._idle.append(first)
        while len(self._idle) < self.min_size:
            self._idle.append(await self._connect())

    async def _connect(self) -> SQLiteConnection:
        try:
            db = await connect_daemon(self.path)
        except DRIVER_ERRORS as exc:
            raise translate(exc, f"open SQLite database {self.path!r}") from exc
        try:
            await db.execute_fetchall(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            await db.execute_fetchall("PRAGMA foreign_keys = ON")
            await db.execute_fetchall("PRAGMA synchronous = NORMAL")
        except DRIVER_ERRORS as exc:
            await db.close()
            raise translate(exc, f"configure SQLite database {self.path!r}") from exc
        return SQLiteConnection(self, db)

    async def acquire(self) -> SQLiteConnection:
        if self._closed:
            raise ConnectionLostError("cannot acquire a connection: the pool is closed")
        if self._slots.locked():  # every connection is lent: wait, up to acquire_timeout
            self._waiting += 1
            try:
                async with asyncio.timeout(self.acquire_timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise PoolTimeoutError(
                    f"cannot acquire a connection: all {self.max_size} connections of the pool stayed in use "
                    f"for {self.acquire_timeout} s (raise max_size or acquire_timeout, or close sessions sooner)"
                ) from None
            finally:
                self._waiting -= 1
        else:
            await self._slots.acquire()  # free: returns without suspending
        try:
            if self._idle:
                conn = self._idle.pop()
            else:
                # Opening runs in aiosqlite's thread and cannot be stopped half-way: shield it, and
                # if we are cancelled meanwhile, keep what it opens as an idle connection.
                opening = asyncio.ensure_future(self._connect())
                try:
                    conn = await asyncio.shield(opening)
                except asyncio.CancelledError:
                    opening.add_done_callback(self._adopt)
                    raise
        except BaseException:
            self._slots.release()
            raise
        self._in_use += 1
        self._lent.add(conn)
        conn.observer = UNOBSERVED
        conn.returned = False
        conn.forget_calls()
        return conn

    def _adopt(self, opening: asyncio.Future[SQLiteConnection]) -> None:
        if opening.cancelled() or opening.exception() is not None:
            return
        conn = opening.result()
        if self._closed:
            conn.close_now()
        else:
            self._idle.append(conn)

    def _count_back(self, conn: Connection) -> SQLiteConnection | None:
        """Stop counting a lent connection; None when it was counted back already."""
        assert isinstance(conn, SQLiteConnection)
        if conn.returned:
            return None
        conn.returned = True
        self._in_use -= 1
        self._lent.discard(conn)
        if not self._lent and self._drained is not None:
            self._drained.set()
        return conn

    async def release(self, conn: Connection) -> None:
        lent = self._count_back(conn)
        if lent is None:
            return
        try:
            if lent.broken or self._closed:
                await lent.close()
            else:
                lent.observer = UNOBSERVED
                self._idle.append(lent)
        except BaseException:
            lent.close_now()
            raise
        finally:
            self._slots.release()

    def discard(self, conn: Connection) -> None:
        lent = self._count_back(conn)
        if lent is not None:
            lent.close_now()
            self._slots.release()

    async def close(self) -> None:
        """Close the idle connections; wait up to ``cleanup_timeout`` for lent ones, then close them too.

        A connection left lent (a session never closed) must not keep aiosqlite's thread, and so
        the process, alive.
        """
        if self._closed:
            return
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()
        if self._lent:
            self._drained = asyncio.Event()
            with anyio.move_on_after(self.cleanup_timeout):
                await self._drained.wait()
        for conn in list(self._lent):
            conn.close_now()
        if self._cleanup is not None:
            self._cleanup()

    def stats(self) -> PoolStats:
        idle = len(self._idle)
        return PoolStats(size=idle + self._in_use, idle=idle, in_use=self._in_use, waiting=self._waiting)


def _memory_dir() -> str | None:
    """Where ``:memory:`` databases live: pooled connections must share one database with WAL
    semantics, so it is a private file (in RAM under /dev/shm where there is one) that lives
    exactly as long as its pool. TemporaryDirectory makes it with mkdtemp (mode 0700)."""
    shm = "/dev/shm"  # noqa: S108
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


async def open_pool(url: DatabaseURL, options: PoolOptions) -> SQLitePool:
    """Open a pool on the database the URL names (``:memory:``: a private database for this pool)."""
    cleanup: Callable[[], None] | None = None
    if url.path == ":memory:":
        tmp = tempfile.TemporaryDirectory(prefix="aiouow-", dir=_memory_dir())
        path = os.path.join(tmp.name, "memory.db")
        cleanup = tmp.cleanup
    else:
        path = url.path
    pool = SQLitePool(path, options, cleanup)
    try:
        await pool.open()
    except BaseException:
        await pool.close()
        raise
    return pool
