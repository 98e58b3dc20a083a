"""The pool: where sessions get their connections, and where tables are created."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator, Sequence
from types import TracebackType
from typing import Any

from ._dispatch import Listeners
from ._mapping import mapper_of
from ._replicas import Replica, Routing
from ._unitofwork import table_order
from ._url import DatabaseURL, PoolOptions, redact
from .dialects import open_pool
from .dialects._base import Connection, DriverPool, PoolStats
from .errors import ConfigurationError

#: Set by `aiouow.testing.rollback_new_pools`: each wraps the driver of every pool made while it is
#: listed (pools opened in an application's lifespan, in whichever thread and event loop).
driver_wrappers: list[Callable[[DriverPool], DriverPool]] = []


class Pool:
    """A pool of database connections for sessions.

    Make one with `create_pool`; close it with ``await pool.close()`` or ``async with``.
    """

    def __init__(self, driver: DriverPool, routing: Routing | None = None) -> None:
        wrapped = bool(driver_wrappers)
        for wrap in driver_wrappers:
            driver = wrap(driver)
        self._driver = driver
        #: The primary and its read replicas, for a pool made with ``replicas=`` (`aiouow._replicas`);
        #: its replicas are closed with the pool.
        self._replica_set = routing
        #: Where sessions route their transactions: None sends everything to ``driver``, as for a pool
        #: without replicas, and for one whose work a test rolls back (`aiouow.testing`: the test's
        #: transaction is on the primary, and a replica would not see it).
        self._routing = None if wrapped else routing
        #: Event listeners for every session on the pool (`aiouow.event`).
        self._listeners: Listeners = {}

    @classmethod
    def from_asyncpg(
        cls, pool: Any, *, echo: bool = False, acquire_timeout: float = 30.0, cleanup_timeout: float = 5.0
    ) -> Pool:
        """Wrap an existing ``asyncpg.Pool``. Closing the aiouow pool leaves it open: its maker closes it.

        Set ``statement_cache_size=0`` on it yourself when it goes through PgBouncer in
        transaction mode.
        """
        from .dialects.postgresql import wrap_pool

        return cls(wrap_pool(pool, echo=echo, acquire_timeout=acquire_timeout, cleanup_timeout=cleanup_timeout))

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._driver.dialect.name

    @property
    def driver(self) -> DriverPool:
        """The dialect's driver pool (for integrations; sessions acquire through it)."""
        return self._driver

    def stats(self) -> PoolStats:
        """Connections open (``size``), ``idle``, ``in_use``, and tasks ``waiting`` for one (of the
        primary, on a pool with replicas: `node_stats` has every server's)."""
        return self._driver.stats()

    def node_stats(self) -> dict[str, PoolStats]:
        """Each server's statistics: ``"primary"``, then each replica by its URL (without password)."""
        if self._replica_set is None:
            return {"primary": self._driver.stats()}
        return self._replica_set.stats()

    @property
    def replicas(self) -> tuple[str, ...]:
        """The read replicas' URLs (without passwords); empty for a pool without."""
        return () if self._replica_set is None else tuple(r.name for r in self._replica_set.replicas)

    async def create_all(self, *entities: type) -> None:
        """CREATE TABLE IF NOT EXISTS for each entity (and its indexes), parents before children."""
        mappers = table_order(mapper_of(e) for e in entities)
        statements = [sql for m in mappers for sql in self._driver.dialect.create_table_sql(m)]
        await self._script(statements)

    async def drop_all(self, *entities: type) -> None:
        """DROP TABLE IF EXISTS for each entity, children before parents."""
        mappers = table_order(mapper_of(e) for e in entities)
        statements = [sql for m in reversed(mappers) for sql in self._driver.dialect.drop_table_sql(m)]
        await self._script(statements)

    async def check_schema(self, *entities: type) -> None:
        """Compare the entities with the live tables (missing tables, missing or extra columns, types,
        nullability, primary keys) and raise `aiouow.SchemaError` listing every difference."""
        from ._schema import check_schema

        await check_schema(self._driver, entities)

    async def _script(self, statements: list[str]) -> None:
        conn: Connection = await self._driver.acquire()
        try:
            await conn.execute_script(statements)
        finally:
            await self._driver.release(conn)

    async def close(self) -> None:
        """Close the pool's connections (the replicas' too)."""
        try:
            await self._driver.close()
        finally:
            if self._replica_set is not None:
                await self._replica_set.close()

    async def __aenter__(self) -> Pool:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        s = self.stats()
        return f"<aiouow.Pool {self.dialect} size={s.size} idle={s.idle} in_use={s.in_use}>"


class _PoolOpener:
    """What `create_pool` returns: awaitable, and an async context manager."""

    def __init__(
        self, url: DatabaseURL, options: PoolOptions, replicas: tuple[DatabaseURL, ...], read_your_writes_timeout: float
    ) -> None:
        self._url = url
        self._options = options
        self._replicas = replicas
        self._read_your_writes_timeout = read_your_writes_timeout
        self._pool: Pool | None = None

    async def _open(self) -> Pool:
        primary = await open_pool(self._url, self._options)
        routing = None
        if self._replicas:
            # A replica that is down when the pool opens is skipped until it answers: its pool
            # connects on demand (min_size=0).
            lazy = dataclasses.replace(self._options, min_size=0)
            opened = []
            try:
                for url in self._replicas:
                    driver = await open_pool(url, lazy)
                    driver.standby = True
                    opened.append(Replica(redact(url.raw), driver))
            except BaseException:
                for replica in opened:
                    await replica.driver.close()
                await primary.close()
                raise
            routing = Routing(primary, opened, self._read_your_writes_timeout)
        self._pool = Pool(primary, routing)
        return self._pool

    def __await__(self) -> Generator[Any, None, Pool]:
        return self._open().__await__()

    async def __aenter__(self) -> Pool:
        return await self._open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._pool is not None:
            await self._pool.close()


def create_pool(
    url: str | None = None,
    *,
    min_size: int = 1,
    max_size: int = 10,
    acquire_timeout: float = 30.0,
    statement_cache_size: int = 100,
    echo: bool = False,
    busy_timeout: float = 5.0,
    cleanup_timeout: float = 5.0,
    replicas: Sequence[str] = (),
    read_your_writes_timeout: float = 1.0,
) -> _PoolOpener:
    """Open a pool: ``async with create_pool(url) as pool`` or ``pool = await create_pool(url)``.

    URLs: ``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``sqlite://:memory:`` (the
    default), ``postgresql://user:password@host:port/db`` (or ``postgres://``).

    - ``min_size`` / ``max_size``: connections kept open / opened at most.
    - ``acquire_timeout``: seconds a session waits for a free connection before
      `aiouow.errors.PoolTimeoutError`.
    - ``statement_cache_size``: PostgreSQL prepared-statement cache per connection (0 for
      PgBouncer in transaction mode).
    - ``echo``: log every statement at DEBUG on the ``aiouow.sql`` logger.
    - ``busy_timeout``: SQLite: seconds a writer waits for the write lock.
    - ``cleanup_timeout``: seconds a rollback or a release after a failure or a cancellation may
      take; past it the connection is closed instead of going back to the pool.
    - ``replicas``: PostgreSQL read replicas (streaming standbys): read-only sessions, and the
      reads of a transaction that has not written, go to one of them (see "Scale-out" in the
      docs). ``read_your_writes_timeout``: seconds a session that must see a commit
      (``after=``, or its own) waits for a replica that has it, before reading from the primary.
    """
    options = PoolOptions(
        min_size=min_size,
        max_size=max_size,
        acquire_timeout=acquire_timeout,
        statement_cache_size=statement_cache_size,
        echo=echo,
        busy_timeout=busy_timeout,
        cleanup_timeout=cleanup_timeout,
    )
    primary = DatabaseURL.parse(url)
    if isinstance(replicas, str):
        raise ConfigurationError("replicas= takes a list of URLs, not one str: replicas=[url]")
    parsed = tuple(DatabaseURL.parse(r) for r in replicas)
    if parsed and (primary.dialect != "postgresql" or any(r.dialect != "postgresql" for r in parsed)):
        raise ConfigurationError("cannot open a pool with replicas: read replicas are for PostgreSQL only")
    if read_your_writes_timeout < 0:
        raise ConfigurationError(f"read_your_writes_timeout must not be negative, got {read_your_writes_timeout!r}")
    return _PoolOpener(primary, options, parsed, read_your_writes_timeout)
