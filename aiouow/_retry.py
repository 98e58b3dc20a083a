"""``run_transaction``: a unit of work run again, whole, when it conflicted with another one."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import anyio

from ._savepoint import Savepoint, SavepointState
from ._session import AsyncSession
from ._txoptions import Isolation
from .errors import CommitOutcomeUnknownError, ConfigurationError, ConnectionLostError, SerializationError

if TYPE_CHECKING:
    from ._pool import Pool

T = TypeVar("T")


async def run_transaction(
    pool: Pool,
    fn: Callable[[AsyncSession], Awaitable[T]],
    *,
    retries: int = 5,
    isolation: Isolation | str | None = None,
    backoff: float = 0.02,
    max_backoff: float = 1.0,
    on_retry: Callable[[int, SerializationError | ConnectionLostError], None] | None = None,
    restart_savepoint: str | None = None,
) -> T:
    """Run ``await fn(session)`` in a fresh session and commit it; when the database says the
    transaction conflicted with another (`SerializationError`: PostgreSQL's 40001 serialization
    failure or 40P01 deadlock, SQLite's stale snapshot under ``isolation="serializable"``), roll
    back, wait, and run ``fn`` again in a new session (a fresh identity map: nothing of the failed
    attempt is kept), at most ``retries`` times more. Returns what the last ``fn`` returned.
    A connection lost before the COMMIT was sent (`ConnectionLostError`: a server restarted, a
    failover, a demoted primary) is retried the same way: nothing of that attempt was committed.

    - The wait before attempt *n + 1* is drawn uniformly between 0 and ``min(max_backoff, backoff *
      2 ** (n - 1))`` seconds (exponential backoff with full jitter, so that conflicting workers
      spread out). A cancellation during the wait propagates at once.
    - A commit whose outcome is unknown (the connection was lost while COMMIT was in flight) is
      never retried: `CommitOutcomeUnknownError` propagates, since running the work again could
      apply it twice. Any other exception propagates at once, after the session rolled back.
    - When the retries run out, the last error propagates, with a note saying how
      many attempts were made. ``on_retry(attempt, error)`` is called before each wait (to count
      or log retries).

    - ``restart_savepoint="cockroach_restart"``: CockroachDB's client-side retry protocol. Every
      attempt runs in one transaction: ``BEGIN; SAVEPOINT cockroach_restart``, the work, ``RELEASE
      SAVEPOINT cockroach_restart; COMMIT``; a serialization failure (at a statement or at the
      RELEASE) sends ``ROLLBACK TO SAVEPOINT cockroach_restart``, puts the session's objects back as
      they were at the savepoint, and runs ``fn`` again in the same session and transaction (which
      keeps its priority among conflicting ones). A failure that ends the transaction anyway (at the
      COMMIT, or a lost connection) runs the whole of it again in a fresh session, as without it.

    ``fn`` must be safe to run several times: it should read what it needs inside the session
    it is given, and keep side effects outside the database (sending mail, say) for after this
    returns.
    """
    if not isinstance(retries, int) or retries < 0:
        raise ConfigurationError(f"retries must be a whole number of 0 or more, got {retries!r}")
    if backoff < 0 or max_backoff < 0:
        raise ConfigurationError("backoff and max_backoff must not be negative")
    if restart_savepoint is not None and pool.dialect != "postgresql":
        raise ConfigurationError(
            "restart_savepoint= is CockroachDB's retry protocol: it needs a PostgreSQL-wire server"
        )
    attempt = 0

    async def wait_or_give_up(exc: SerializationError | ConnectionLostError) -> None:
        if attempt > retries:
            exc.add_note(f"run_transaction: gave up after {attempt} attempts (retries={retries})")
            raise exc
        if on_retry is not None:
            on_retry(attempt, exc)
        await anyio.sleep(random.uniform(0, min(max_backoff, backoff * 2 ** (attempt - 1))))  # noqa: S311

    while True:
        session = AsyncSession(pool, isolation=isolation)
        try:
            async with session:
                restart = None
                if restart_savepoint is not None:  # BEGIN; SAVEPOINT cockroach_restart (its first statement)
                    restart = await Savepoint(session, restart_name=restart_savepoint).__aenter__()
                while True:
                    attempt += 1
                    try:
                        result = await fn(session)
                        if restart is not None:
                            await restart._release()  # flush; RELEASE SAVEPOINT: where CockroachDB commits
                        await session.commit()
                        return result
                    except SerializationError as exc:
                        if restart is None or restart.state is not SavepointState.OPEN:
                            raise  # (the transaction ended: run the whole of it again, below)
                        await wait_or_give_up(exc)
                        await restart.restart_work()  # ROLLBACK TO SAVEPOINT; the same transaction goes on
        except (SerializationError, ConnectionLostError) as exc:
            if session.commit_outcome_unknown:  # (defensive: the outcome of a COMMIT is never guessed)
                raise CommitOutcomeUnknownError(
                    "the commit's outcome is unknown after a conflict: the transaction was not run again"
                ) from exc
            await wait_or_give_up(exc)
