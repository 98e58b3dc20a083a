"""What every framework integration shares: the lazy per-request session and its end-of-request rules."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import anyio

from .._pool import Pool
from .._replicas import checked_token, later
from .._session import AsyncSession
from .._state import SessionState
from .._stats import SessionStats
from ..errors import (
    AiouowError,
    ConfigurationError,
    DataError,
    IntegrityError,
    NotFoundError,
    SessionError,
    StaleDataError,
)

log = logging.getLogger("aiouow.integrations")


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """The request a session served, as an ``on_stats`` callback receives it."""

    method: str
    path: str
    status: int | None
    """The status sent to the client (the error status when the commit failed); ``None`` when the
    application raised or was cancelled before it started a response."""


StatsCallback = Callable[[SessionStats, RequestInfo], None]
"""``on_stats(stats, info)``: called once per request that used its session, after the session is closed."""

PoolSource = Pool | Callable[[], Pool]
"""A pool, or a function returning it, for a pool the application opens at startup (after the middleware is made)."""


_OPEN_IN_LIFESPAN = (
    "open the pool when the application starts and give the middleware a function that returns it: "
    "`pool = await aiouow.create_pool(url)` in the lifespan (Starlette/FastAPI: `app.state.pool = ...`, "
    "then `pool=lambda: app.state.pool`; aiohttp: an on_startup handler, then `pool=lambda: app[POOL]`); "
    'see "A pool opened in the lifespan" in the web frameworks guide'
)


def check_pool(pool: object, what: str) -> PoolSource:
    if isinstance(pool, Pool) or (callable(pool) and not _is_opener(pool)):
        return pool
    if _is_opener(pool):
        raise ConfigurationError(
            f"cannot set up {what}: aiouow.create_pool() was given without being awaited (it opens connections, "
            f"which needs the running event loop); {_OPEN_IN_LIFESPAN}"
        )
    raise ConfigurationError(
        f"cannot set up {what}: pool must be an aiouow Pool or a function returning one, got "
        f"{type(pool).__name__}; {_OPEN_IN_LIFESPAN}"
    )


def resolve_pool(source: PoolSource) -> Pool:
    if isinstance(source, Pool):
        return source
    try:
        pool = source()
    except (AttributeError, KeyError, LookupError) as exc:
        raise ConfigurationError(
            f"cannot open the request's session: the pool function raised {type(exc).__name__} ({exc}); was the "
            "pool opened at startup? (in tests, run the application's lifespan: `with TestClient(app)` or "
            "`async with LifespanManager(app)`)"
        ) from exc
    if not isinstance(pool, Pool):
        hint = " (an aiouow.create_pool() that was not awaited)" if _is_opener(pool) else ""
        raise ConfigurationError(
            f"cannot open the request's session: the pool function returned {type(pool).__name__}{hint}, not an "
            f"aiouow Pool; {_OPEN_IN_LIFESPAN}"
        )
    return pool


def _is_opener(obj: object) -> bool:
    from .._pool import _PoolOpener

    return isinstance(obj, _PoolOpener)


def error_status(exc: BaseException) -> int | None:
    """The HTTP status of an aiouow error that a client's request caused, or None (a 500).

    `NotFoundError` 404; `IntegrityError` (unique, foreign-key, not-null, check) and `StaleDataError`
    409; `DataError` 422 for a value being written (a value the database holds that cannot be read
    is the server's problem: None).
    """
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, IntegrityError | StaleDataError):
        return 409
    if isinstance(exc, DataError) and not exc.stored:
        return 422
    return None


def commit_error_status(exc: BaseException) -> int:
    """The status of the response that replaces one whose commit failed (as `error_status`, else 500)."""
    return error_status(exc) or 500


def error_payload(exc: BaseException | None, status: int) -> dict[str, Any]:
    """The JSON body of an error response: what kind of failure, and which entity, field or
    constraint, from the error's structured details; never its message (which may quote SQL or a
    row's values: that goes to the log).

    422 has FastAPI's shape (``{"detail": [{"type", "loc", "msg"}]}``), so that clients read one
    kind of validation error whether pydantic or the database refused the value.
    """
    entity = getattr(exc, "entity", None)
    if status == 404:
        return {"error": "not found", "detail": f"no such {entity}" if entity else "no such row"}
    if status == 409:
        if isinstance(exc, StaleDataError):
            detail = "the row was changed or deleted by another request; read it again and retry"
            return {"error": "conflict", "detail": detail, "entity": entity}
        constraint = getattr(exc, "constraint", None)
        kind = {
            "UniqueViolationError": "a unique value is taken",
            "ForeignKeyViolationError": "a referenced row does not exist, or rows still refer to this one",
            "NotNullViolationError": "a required value is missing",
            "CheckViolationError": "a value breaks a check constraint",
        }.get(type(exc).__name__, "the changes conflict with data in the database")
        return {"error": "conflict", "detail": kind, "constraint": constraint}
    if status == 422:
        assert isinstance(exc, DataError)
        loc = ["body", exc.field] if exc.field else ["body"]
        msg = exc.reason or "the value does not fit the field"
        return {"detail": [{"type": "aiouow.data_error", "loc": loc, "msg": msg, "entity": exc.entity}]}
    return {"error": "internal server error", "detail": "the changes could not be committed"}


def log_mapped(exc: BaseException, status: int) -> None:
    """A handler's aiouow error answered with ``status``: logged with its message, which the client does not get."""
    log.info("answered %d for %s: %s", status, type(exc).__name__, exc)


def error_body(status: int, exc: BaseException | None = None) -> bytes:
    """`error_payload` as JSON bytes."""
    return json.dumps(error_payload(exc, status)).encode()


class RequestSession:
    """One request's session: made on first use, resolved when the response starts, closed at the end.

    The framework modules drive it: `get` from ``get_session``, `respond` when the response is
    about to start, `finish` when the request is over whatever happened.
    """

    __slots__ = ("_after", "_finished", "_pool", "_session", "commit_error", "commit_token", "responded")

    def __init__(self, pool: PoolSource, after: str | None = None) -> None:
        self._pool = pool
        self._session: AsyncSession | None = None
        self._finished = False
        self.responded = False
        self.commit_error: Exception | None = None
        #: The commit token the client brought (its last write, for read-your-writes on replicas).
        self._after = after
        #: The token of this request's commit, for the response to carry to the client's next requests.
        self.commit_token: str | None = None

    @property
    def session(self) -> AsyncSession | None:
        """The session, if the request has asked for it."""
        return self._session

    def get(self) -> AsyncSession:
        session = self._session
        if session is None:
            if self._finished:
                raise SessionError("cannot get a session: the request it belonged to has finished")
            session = self._session = AsyncSession(resolve_pool(self._pool), after=self._after)
        return session

    async def respond(self, status: int) -> Exception | None:
        """The response is about to start with ``status``: commit below 400, roll back from 400 up.

        Returns the commit's exception (the response must then become an error response), else None.
        Only the first call does anything.
        """
        if self.responded:
            return None
        self.responded = True
        session = self._session
        # A session the handler closed itself has nothing left to commit.
        if session is None or session.session_state is SessionState.CLOSED:
            return None
        if status < 400:
            try:
                await session.commit()
            except Exception as exc:
                self.commit_error = exc
                _log_commit_error(exc)
                return exc
            self.commit_token = session.commit_token
        else:
            try:
                await session.rollback()
            except Exception:
                # The error response still goes out; close() tries again and releases the connection.
                log.warning("cannot roll back the session of a %d response", status, exc_info=True)
        return None

    async def finish(self) -> SessionStats | None:
        """Close the session (rolling back what was not committed), shielded from cancellation.

        Returns its statistics, or None when the request never asked for a session.
        """
        self._finished = True
        session = self._session
        if session is None:
            return None
        await run_shielded(session.close())
        return session.stats()


#: Read-your-writes across a client's requests (pools with replicas): the commit token of a
#: request that wrote goes back in this cookie and this header; a request bringing either reads
#: only from replicas that have that commit (``AsyncSession(pool, after=token)``).
AFTER_COOKIE = "aiouow_after"
AFTER_HEADER = "X-Aiouow-After"
#: Seconds the cookie lasts: longer than any replica should lag.
AFTER_MAX_AGE = 300


def client_token(header: str | None, cookie: str | None) -> str | None:
    """The commit token a request brought (the later of header and cookie); None when it brought
    none, or something that is not one (a client's value is never trusted to be well formed)."""
    found: str | None = None
    for value in (header, cookie):
        if value:
            try:
                found = later(found, checked_token(value.strip()))
            except AiouowError:
                continue
    return found


def token_cookie(token: str) -> str:
    """The ``Set-Cookie`` value that carries a commit token to the client's next requests."""
    return f"{AFTER_COOKIE}={token}; Max-Age={AFTER_MAX_AGE}; Path=/; HttpOnly; SameSite=Lax"


def _log_commit_error(exc: Exception) -> None:
    if error_status(exc) is not None:
        log.warning("cannot commit the request's session: %s: %s", type(exc).__name__, exc)
    else:
        log.error("cannot commit the request's session", exc_info=exc)


async def run_shielded(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` to the end even when the calling task is cancelled meanwhile, then re-raise that cancellation.

    An anyio shield alone does not hold off ``task.cancel()`` (aiohttp cancels handler tasks that
    way, and anyio re-delivers its own cancellations the same way), so the work runs in a task of
    its own that the caller waits for through `asyncio.shield`.
    """
    task = asyncio.ensure_future(coro)
    cancelled: asyncio.CancelledError | None = None
    with anyio.CancelScope(shield=True):
        while True:
            try:
                await asyncio.shield(task)
                break
            except asyncio.CancelledError as exc:
                if task.done():  # the work itself was cancelled (the loop is closing): nothing to wait for
                    raise
                cancelled = exc
    if cancelled is not None:
        raise cancelled


def report(stats: SessionStats | None, info: RequestInfo, on_stats: StatsCallback | None) -> None:
    """Hand a request's statistics to the callback, or log them at DEBUG."""
    if stats is None:
        return
    if on_stats is not None:
        try:
            on_stats(stats, info)
        except Exception:
            # The response is already sent: a failing callback must not turn into a request error.
            log.exception("the on_stats callback raised for %s %s", info.method, info.path)
        return
    if log.isEnabledFor(logging.DEBUG):
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(stats.statements.items()))
        log.debug(
            "%s %s -> %s: %d statements (%s), %d rows read, %d rows written, %.2f ms in the database",
            info.method,
            info.path,
            info.status,
            stats.total_statements,
            kinds or "none",
            stats.rows_read,
            stats.rows_written,
            stats.db_time * 1000,
        )
