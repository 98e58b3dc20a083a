"""asyncpg's pool, wrapped; the connections of pools aiouow opens skip a reset they do not need."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

import asyncpg
import asyncpg.exceptions as pgerr

from ..._url import DatabaseURL, PoolOptions, redact
from ...errors import (
    ConfigurationError,
    ConnectionLostError,
    PoolTimeoutError,
)
from .._base import (
    UNOBSERVED,
    Connection,
    DriverPool,
    PoolStats,
)
from .connection import PostgresConnection
from .dialect import PostgresDialect
from .errors import DRIVER_ERRORS, translate

if TYPE_CHECKING:
    _AsyncpgConnection = asyncpg.Connection[Any]
else:
    _AsyncpgConnection = asyncpg.Connection


class PooledConnection(_AsyncpgConnection):
    """The connections of a pool aiouow opens itself: asyncpg's, with a mark that lets their
    release skip asyncpg's reset query (a round trip) when a session left nothing to reset."""

    _aiouow_clean = False

    def aiouow_mark_clean(self) -> None:
        """Called (through the pool's proxy) just before the release of a connection on which only
        aiouow's own statements ran, in transactions that ended."""
        self._aiouow_clean = True

    async def aiouow_reset(self) -> None:
        """The pool's reset: asyncpg's reset query, unless the connection was marked clean."""
        if self._aiouow_clean:
            self._aiouow_clean = False
            return
        query = self.get_reset_query()
        if query:
            await self.execute(query)


async def reset_pooled(con: _AsyncpgConnection) -> None:
    """asyncpg's ``reset`` hook of the pools aiouow opens. asyncpg has already ended any open
    transaction and dropped the connection's listeners before it calls this."""
    assert isinstance(con, PooledConnection)
    await con.aiouow_reset()


class PostgresPool(DriverPool):
    """An asyncpg pool, wrapped: aiouow never keeps a pool of its own making for PostgreSQL."""

    dialect: PostgresDialect

    def __init__(self, raw: asyncpg.Pool[Any], options: PoolOptions, *, owned: bool) -> None:
        self.dialect = PostgresDialect()
        self.raw = raw
        #: A pool aiouow opened (`open_pool`) lends `PooledConnection`s: a connection that ran
        #: only aiouow's statements goes back without asyncpg's reset query.
        self.skips_clean_reset = owned
        self.echo = options.echo
        self.acquire_timeout = options.acquire_timeout
        self.cleanup_timeout = options.cleanup_timeout
        self.max_size = raw.get_max_size()
        self._owned = owned
        #: asyncpg's queue of free slots (private to asyncpg: without it, every acquire sets a timer).
        self._free: asyncio.Queue[Any] | None = getattr(raw, "_queue", None)
        self._in_use = 0
        self._waiting = 0
        #: Set when a connection found its server gone or demoted: the pool's other connections
        #: are expired (replaced at their next acquire) before the next one is lent.
        self._expire = False

    def server_gone(self) -> None:
        """A connection's server went away, is shutting down, or is no longer the primary."""
        self._expire = True

    async def acquire(self) -> PostgresConnection:
        if self._expire:
            self._expire = False
            await self.raw.expire_connections()
        self._waiting += 1
        try:
            if self._free is not None and not self._free.empty():
                # A free slot: asyncpg hands it over without waiting for another session (opening
                # its connection, if it has none, is bounded by asyncpg's connect timeout), so
                # there is nothing for acquire_timeout to bound, and no timer to set.
                raw = await self.raw.acquire()
            else:
                # asyncio.timeout rather than acquire(timeout=): asyncpg implements that with
                # wait_for, which costs a task (and loop iterations) per acquire.
                async with asyncio.timeout(self.acquire_timeout):
                    raw = await self.raw.acquire()
        except TimeoutError:
            raise PoolTimeoutError(
                f"cannot acquire a connection: all {self.max_size} connections of the pool stayed in use "
                f"for {self.acquire_timeout} s (raise max_size or acquire_timeout, or close sessions sooner)"
            ) from None
        except DRIVER_ERRORS as exc:
            if isinstance(exc, pgerr.InterfaceError) and ("closing" in str(exc) or "closed" in str(exc)):
                raise ConnectionLostError("cannot acquire a connection: the pool is closed") from exc
            if isinstance(exc, pgerr.TargetServerAttributeNotMatched):
                # A multi-host URL with target_session_attrs=read-write, and no host is a primary
                # now: a failover in progress (a standby not yet promoted).
                raise ConnectionLostError(
                    f"cannot acquire a connection: no server of the URL's hosts is a primary now ({exc}); "
                    "a failover may be in progress"
                ) from exc
            raise translate(exc, "acquire a connection") from exc
        finally:
            self._waiting -= 1
        self._in_use += 1
        return PostgresConnection(self, raw)

    async def release(self, conn: Connection) -> None:
        assert isinstance(conn, PostgresConnection)
        if conn.returned:
            return
        conn.returned = True
        self._in_use -= 1
        conn.observer = UNOBSERVED
        if conn.broken:
            conn.close_now()
        elif self.skips_clean_reset and not conn._tx and not conn.ran_sql:
            # Only aiouow's statements ran (queries and flushes, in transactions that ended):
            # they leave no settings, LISTENs, advisory locks or cursors for asyncpg's reset query
            # (SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL) to undo, so the
            # connection goes back without that round trip.
            # (The proxy passes the call on to the connection it lends: a PooledConnection.)
            cast(PooledConnection, conn.raw).aiouow_mark_clean()
        # asyncpg shields the release, resets the connection (terminating it when the reset
        # exceeds the timeout), and replaces a closed one; a connection lost while lent was
        # already taken back, and releasing it again does nothing.
        try:
            await self.raw.release(conn.raw, timeout=self.cleanup_timeout)
        except DRIVER_ERRORS as exc:
            # Its reset query failed (the server went away): asyncpg has terminated it already.
            raise ConnectionLostError(f"cannot release the connection: its reset failed ({exc})") from exc

    def discard(self, conn: Connection) -> None:
        assert isinstance(conn, PostgresConnection)
        if conn.returned:
            return
        conn.returned = True
        self._in_use -= 1
        conn.close_now()

    async def close(self) -> None:
        if self._owned:
            await self.raw.close()

    def stats(self) -> PoolStats:
        size = self.raw.get_size()
        in_use = min(self._in_use, size)
        return PoolStats(size=size, idle=size - in_use, in_use=in_use, waiting=self._waiting)


async def open_pool(url: DatabaseURL, options: PoolOptions) -> PostgresPool:
    """Open an asyncpg pool on the URL's database."""
    try:
        raw = await asyncpg.create_pool(
            url.raw,
            min_size=options.min_size,
            max_size=options.max_size,
            statement_cache_size=options.statement_cache_size,
            connection_class=PooledConnection,
            reset=reset_pooled,
        )
    except (ValueError, OverflowError) as exc:  # asyncpg's parse of the URL (ClientConfigurationError too)
        raise ConfigurationError(f"cannot open a PostgreSQL pool on {redact(url.raw)}: {exc}") from exc
    except DRIVER_ERRORS as exc:
        raise translate(exc, f"open a PostgreSQL pool on {redact(url.raw)}") from exc
    return PostgresPool(raw, options, owned=True)


def wrap_pool(raw: asyncpg.Pool[Any], *, echo: bool, acquire_timeout: float, cleanup_timeout: float) -> PostgresPool:
    """Wrap a pool the caller made (and will close)."""
    if not isinstance(raw, asyncpg.Pool):
        raise ConfigurationError(f"cannot wrap {type(raw).__name__}: expected an asyncpg.Pool")
    options = PoolOptions(
        max_size=raw.get_max_size(), echo=echo, acquire_timeout=acquire_timeout, cleanup_timeout=cleanup_timeout
    )
    return PostgresPool(raw, options, owned=False)
