"""Read replicas (PostgreSQL): which server a session's transaction runs on.

A pool made with ``replicas=[...]`` holds a `Routing`: the primary's driver pool and a `Replica`
per standby. A session's transaction begins where its first statement needs it to:

- a read (a query, a load, a count) of a session that has not written in this transaction goes
  to a replica, taken in turn, skipping one that is down (it is tried again `RETRY_DOWN_AFTER`
  seconds later); with no replica up, to the primary;
- a write (a flush with changes, a locking read, raw SQL, a savepoint) goes to the primary. A
  transaction that began on a replica moves there first: its replica transaction (which wrote
  nothing) ends, and every later statement of the transaction runs on the primary;
- read-your-writes: a session given ``after=token`` (a commit's WAL position, `commit_token`),
  and every session after its own commit, reads from a replica only once that replica has
  replayed the position (``pg_last_wal_replay_lsn()``), waiting up to the pool's
  ``read_your_writes_timeout`` for one; else from the primary.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._transaction import Transaction
from .dialects._base import DriverPool, PoolStats, Row
from .errors import ConfigurationError, ConnectionLostError, OperationalError, PoolTimeoutError

if TYPE_CHECKING:
    from ._session import AsyncSession

#: Seconds a replica that failed is skipped before it is tried again.
RETRY_DOWN_AFTER = 5.0
#: Seconds between two looks at the replicas' replay position while a session waits for one.
POLL_INTERVAL = 0.005


def lsn_value(token: str) -> int:
    """A WAL position (``"16/B374D848"``) as a number, to compare two of them."""
    high, sep, low = token.partition("/")
    try:
        if not sep:
            raise ValueError(token)
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        raise ConfigurationError(
            f"cannot read {token!r} as a commit token: expected a WAL position such as '0/16B3748' "
            "(what AsyncSession.commit_token gives)"
        ) from None


def checked_token(token: object) -> str:
    """A commit token given by a caller (``after=``), checked to be one."""
    if not isinstance(token, str):
        raise ConfigurationError(f"after= takes a commit token (a str such as '0/16B3748'), got {token!r}")
    lsn_value(token)
    return token


def later(a: str | None, b: str | None) -> str | None:
    """The later of two commit tokens (either may be None)."""
    if a is None or b is None:
        return a or b
    return a if lsn_value(a) >= lsn_value(b) else b


class Replica:
    """One standby server: its driver pool, and until when it is skipped after a failure."""

    __slots__ = ("down_until", "driver", "name")

    def __init__(self, name: str, driver: DriverPool) -> None:
        self.name = name
        self.driver = driver
        self.down_until = 0.0

    @property
    def up(self) -> bool:
        return self.down_until <= time.monotonic()

    def failed(self) -> None:
        self.down_until = time.monotonic() + RETRY_DOWN_AFTER


class Routing:
    """The primary and its replicas: where each session transaction begins."""

    def __init__(self, primary: DriverPool, replicas: Sequence[Replica], read_your_writes_timeout: float) -> None:
        if read_your_writes_timeout < 0:
            raise ConfigurationError(f"read_your_writes_timeout must not be negative, got {read_your_writes_timeout}")
        self.primary = primary
        self.replicas = tuple(replicas)
        self.read_your_writes_timeout = read_your_writes_timeout
        self._turns = itertools.cycle(range(len(self.replicas)))

    def in_turn(self) -> list[Replica]:
        """The replicas that are up, starting with the next one's turn."""
        start = next(self._turns)
        ordered = self.replicas[start:] + self.replicas[:start]
        return [r for r in ordered if r.up]

    async def begin(self, s: AsyncSession, *, writing: bool) -> Transaction:
        """A transaction for the session: on the primary when ``writing``, else on a replica if one
        is up (and has replayed the session's ``after`` position)."""
        if not writing:
            tx = await self._on_a_replica(s)
            if tx is not None:
                return tx
        return await self._on_the_primary(s)

    async def _on_the_primary(self, s: AsyncSession) -> Transaction:
        tx = s._tx = await Transaction.lease(self.primary, s._stats)
        tx.wants_token = True
        await s._guarded(tx.begin(s._options))
        return tx

    async def _on_a_replica(self, s: AsyncSession) -> Transaction | None:
        after = s._after
        deadline = time.monotonic() + self.read_your_writes_timeout
        while True:
            for replica in self.in_turn():
                tx = await self._try(s, replica, after)
                if tx is not None:
                    return tx
            if after is None or time.monotonic() + POLL_INTERVAL > deadline or not self.in_turn():
                return None  # none up, or none caught up in time: the primary
            await asyncio.sleep(POLL_INTERVAL)

    async def _try(self, s: AsyncSession, replica: Replica, after: str | None) -> Transaction | None:
        """A transaction on ``replica``, or None if it is down or has not replayed ``after`` yet.
        A replica that cannot be reached is marked down; nothing of the session fails."""
        try:
            tx = await Transaction.lease(replica.driver, s._stats)
        except PoolTimeoutError:
            raise  # busy, not down: as the primary's pool would, after its acquire_timeout
        except OperationalError:  # (ConnectionLostError too: refused, reset, shutting down)
            replica.failed()
            return None
        tx.replica = replica
        try:
            await tx.begin(s._options)
            if after is not None:
                rows = await tx.fetch("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", [after], write=False)
                if rows[0][0] is not True:  # behind (False), or not a standby at all (NULL)
                    await tx.rollback()
                    return None
        except OperationalError:
            replica.failed()
            await tx.fail_quietly()
            return None
        except BaseException as exc:
            await tx.fail(exc)
            raise
        s._tx = tx
        return tx

    async def first_read(self, s: AsyncSession, tx: Transaction, sql: str, params: Sequence[Any]) -> list[Row]:
        """The first read of a transaction just begun on a replica. If the replica's connection is
        lost right there (the replica went down since the transaction began), nothing of the
        transaction was used yet: the replica is marked down and the read runs on the next node."""
        while True:
            try:
                return await tx.fetch(sql, params, write=False)
            except ConnectionLostError as exc:
                s._tx = None
                await tx.fail(exc)  # (marks the replica down)
                tx = await self.begin(s, writing=False)
                if tx.replica is None:  # the primary: its failures fail the session as usual
                    return await s._guarded(tx.fetch(sql, params, write=False))
            except BaseException as exc:
                await s._fail(exc)
                raise

    async def to_the_primary(self, s: AsyncSession, tx: Transaction) -> Transaction:
        """The session's transaction began on a replica and now writes: end it there (it wrote
        nothing) and go on on the primary."""
        s._tx = None
        await tx.rollback()
        return await self._on_the_primary(s)

    def stats(self) -> dict[str, PoolStats]:
        """Each node's statistics: the primary's, then every replica's, by name."""
        out = {"primary": self.primary.stats()}
        for replica in self.replicas:
            out[replica.name] = replica.driver.stats()
        return out

    async def close(self) -> None:
        for replica in self.replicas:
            await replica.driver.close()
