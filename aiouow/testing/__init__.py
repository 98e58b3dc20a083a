"""Helpers for testing code that uses aiouow: everything a test writes is rolled back.

- `rollback(pool)`: ``async with aiouow.testing.rollback(pool):`` every session transaction on
  ``pool`` inside the block runs inside one database transaction, rolled back when the block ends.
- `rollback_new_pools()`: ``with aiouow.testing.rollback_new_pools():`` the same for every pool
  opened inside the block, in any thread or event loop (an application's lifespan under
  Starlette's ``TestClient``, which runs the application in an event loop of its own); each is
  rolled back when it is closed.
- ``pytest_plugins = ["aiouow.testing.plugin"]`` adds fixtures built on them (`aiouow.testing.plugin`).

Inside, sessions commit, roll back and use savepoints as usual (a session transaction is a
savepoint of the outer transaction), and each sees what the ones before it committed; nothing
reaches the database for other connections. See the "Testing" page of the docs.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from .._pool import Pool, driver_wrappers
from ..dialects._base import DriverPool
from ..errors import SessionError
from ._rollback import RollbackDriver

__all__ = ["rollback", "rollback_new_pools"]


@asynccontextmanager
async def rollback(pool: Pool) -> AsyncIterator[Pool]:
    """Run every session transaction on ``pool`` made inside the block in one database transaction,
    rolled back when the block ends; yields ``pool``.

    Sessions take turns on one connection (a session transaction waits for the one before to
    end); a second open transaction in the same task raises `aiouow.SessionError` at once, since
    it would wait for itself. Enter it in the event loop that uses the pool.
    """
    real = pool._driver
    if isinstance(real, RollbackDriver):
        raise SessionError("this pool is already inside aiouow.testing.rollback(): nesting it would change nothing")
    wrapped = RollbackDriver(real, owns_real=False)
    routing, pool._routing = pool._routing, None  # (read replicas would not see the test's transaction)
    pool._driver = wrapped
    try:
        yield pool
    finally:
        pool._driver = real
        pool._routing = routing
        await _close(wrapped)


async def _close(wrapped: RollbackDriver) -> None:
    still_open = wrapped.in_turn
    await wrapped.close()
    if still_open:
        raise SessionError(
            "a session still had an open transaction when the test's rolled-back pool ended: it was rolled "
            "back with the rest (close sessions before the block ends)"
        )


@contextmanager
def rollback_new_pools() -> Iterator[None]:
    """Roll back the work of every pool opened inside the block, in any thread or event loop.

    Each such pool's session transactions run in one database transaction that is rolled back
    when the pool is closed (at the end of the application's lifespan). On leaving the block, a
    pool opened inside that was never closed raises `aiouow.SessionError`: its transaction is
    still open, holding its locks.
    """
    made: list[RollbackDriver] = []
    lock = threading.Lock()

    def wrap(driver: DriverPool) -> DriverPool:
        wrapped = RollbackDriver(driver, owns_real=True)
        with lock:
            made.append(wrapped)
        return wrapped

    driver_wrappers.append(wrap)
    try:
        yield
    finally:
        driver_wrappers.remove(wrap)
    left_open = [w for w in made if not w.closed]
    if left_open:
        raise SessionError(
            f"{len(left_open)} pool(s) opened during the test were never closed, so their transactions were "
            "not rolled back (did the application's lifespan run to its end? use TestClient as a context "
            "manager: `with TestClient(app) as client:`)"
        )
