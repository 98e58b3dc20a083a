"""One aiouow session per request for aiohttp: ``setup(app, pool)`` and ``get_session(request)``.

```python
from aiohttp import web
from aiouow.integrations.aiohttp import get_session, setup

async def create_user(request: web.Request) -> web.Response:
    s = get_session(request)
    s.add(User(name="bob", email="bob@example.org"))
    return web.json_response({"ok": True}, status=201)   # committed before this response starts

app = web.Application()
app.router.add_post("/users", create_user)
setup(app, pool)
```

Why ``setup`` and not only a middleware: a handler may prepare a `aiohttp.web.StreamResponse`
itself, and then its headers leave while the handler still runs, long before a middleware sees
the response. The one hook that runs before every response's headers is the application's
``on_response_prepare`` signal, and a middleware cannot add a signal to the application it is in.
So the integration is two parts installed together: a middleware that gives each request its
session and closes it at the end, and an ``on_response_prepare`` handler that commits it before
the headers go out. ``setup(app, pool)`` installs both. To place the middleware yourself:

```python
mw = session_middleware(pool)
app = web.Application(middlewares=[mw])
app.on_response_prepare.append(mw.on_response_prepare)
```

``web.Application(middlewares=[session_middleware(pool)])`` alone works for every handler that
returns its response (the middleware commits before aiohttp prepares it). Without the signal
handler, a handler that prepares its own response gets its work rolled back and the request fails
with `aiouow.ConfigurationError`, rather than commit after the response's headers were sent.

The rules:

- ``get_session(request)`` makes the request's session on its first call and returns the same
  one afterwards. A request that never calls it takes no connection.
- Just before the response's headers go out with a status below 400, the session is committed.
  If the commit raises, the client gets a JSON error instead: 409 for an
  `aiouow.IntegrityError` or `aiouow.StaleDataError`, 422 for an `aiouow.DataError`, 500 for
  anything else (a handler preparing its own response sees the commit's exception raised by
  ``prepare()``). The same errors raised by the handler itself, and `aiouow.NotFoundError` (404),
  get the same answers (``map_errors=False`` lets them through).
- A response of 400 or more is preceded by a rollback. A handler that raises gets a rollback,
  except that a raised `aiohttp.web.HTTPException` *is* a response: ``raise web.HTTPFound(...)``
  after a change commits it (or becomes the 409/500 if the commit fails), ``raise
  web.HTTPNotFound()`` rolls back.
- The session is closed, and its connection released, when the middleware returns, raises or is
  cancelled (aiohttp cancels the handler when the client disconnects, if ``handler_cancellation``
  is on), shielded from cancellation. Work done after the headers went out (while streaming) runs
  in a new transaction: commit it yourself, or it is rolled back at the end. A body produced after
  the handler returns (an async-iterator payload) cannot use the session: it is closed by then.
- A WebSocket handshake is a response (status 101): what the handler did before
  ``await ws.prepare(request)`` is committed then; what it does afterwards it commits itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from aiohttp import hdrs, web

from .._session import AsyncSession
from .._tasklocal import bind, unbind
from ..errors import ConfigurationError, SessionError
from ._common import (
    AFTER_COOKIE,
    AFTER_HEADER,
    PoolSource,
    RequestInfo,
    RequestSession,
    StatsCallback,
    check_pool,
    client_token,
    commit_error_status,
    error_body,
    error_payload,
    error_status,
    log_mapped,
    report,
    token_cookie,
)

__all__ = ["SessionMiddleware", "get_session", "session_middleware", "setup"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_KEY: Any
try:
    from aiohttp.web import RequestKey
except ImportError:  # aiohttp < 3.14 has no RequestKey, and does not warn about str keys
    _KEY = "aiouow.session"
else:
    _KEY = RequestKey("aiouow.session", RequestSession)


class SessionMiddleware:
    """The aiohttp middleware of the integration; make it with `session_middleware` or `setup`.

    It must be installed together with its `on_response_prepare` handler (see the module).
    """

    __middleware_version__ = 1  # a new-style middleware: called as middleware(request, handler=...)

    def __init__(self, pool: PoolSource, *, on_stats: StatsCallback | None = None, map_errors: bool = True) -> None:
        self.pool = check_pool(pool, "session_middleware")
        self.on_stats = on_stats
        self.map_errors = map_errors

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        installed = self._installed(request)
        holder = _AiohttpRequestSession(
            self.pool, client_token(request.headers.get(AFTER_HEADER), request.cookies.get(AFTER_COOKIE))
        )
        request[_KEY] = holder
        token = bind(holder.get)  # current_session() in the request's task: this session
        status: int | None = None
        try:
            response: web.StreamResponse | None
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = exc  # raised or returned, an HTTPException is the response
            except Exception as exc:
                if holder.commit_error is None:
                    mapped = error_status(exc) if self.map_errors else None
                    if mapped is None:
                        raise
                    log_mapped(exc, mapped)  # an aiouow error the request caused: 404, 409 or 422
                    response = web.json_response(error_payload(exc, mapped), status=mapped)
                else:
                    response = None  # the handler gave up when prepare() raised the commit's error
            if response is not None and response.prepared and not installed and not holder.responded:
                # Without the signal handler a response the handler prepared itself left before
                # any commit: never report success for uncommitted work. Roll back and fail.
                await holder.respond(500)
                raise ConfigurationError(
                    "cannot commit the request's session: the handler prepared its own response, whose "
                    "headers left before the commit; the work was rolled back (use "
                    "aiouow.integrations.aiohttp.setup(app, pool), or append mw.on_response_prepare to "
                    "app.on_response_prepare)"
                )
            if response is not None and holder.commit_error is None:
                await holder.respond(response.status)  # does nothing if the signal already committed
                if not response.prepared:
                    _carry_token(holder, response)
            if response is None or holder.commit_error is not None:
                response = _error_response(holder)
            status = response.status
            if isinstance(response, web.HTTPException):
                raise response
            return response
        finally:
            unbind(token)
            stats = await holder.finish()
            report(stats, RequestInfo(request.method, request.path, status), self.on_stats)

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """The ``on_response_prepare`` signal handler: commit (or roll back) before the headers go out."""
        holder = request.get(_KEY)
        if not isinstance(holder, _AiohttpRequestSession) or holder.responded:
            return
        error = await holder.respond(response.status)
        if error is not None:
            # prepare() raises, the headers are not sent, and the middleware answers with the error.
            holder.abandoned = response
            raise error
        _carry_token(holder, response)

    def _installed(self, request: web.Request) -> bool:
        hook = self.on_response_prepare
        return any(hook in app.on_response_prepare for app in request.match_info.apps)


def _carry_token(holder: RequestSession, response: web.StreamResponse) -> None:
    """Read-your-writes on the client's next requests: the commit's token, as cookie and header."""
    token = holder.commit_token
    if token is not None and AFTER_HEADER not in response.headers:
        response.headers.add(hdrs.SET_COOKIE, token_cookie(token))
        response.headers[AFTER_HEADER] = token


class _AiohttpRequestSession(RequestSession):
    __slots__ = ("abandoned",)

    def __init__(self, pool: PoolSource, after: str | None) -> None:
        super().__init__(pool, after)
        # The response whose prepare() a failed commit interrupted (see _error_response).
        self.abandoned: web.StreamResponse | None = None


def _error_response(holder: _AiohttpRequestSession) -> web.Response:
    assert holder.commit_error is not None
    status = commit_error_status(holder.commit_error)
    body = error_body(status, holder.commit_error)
    response = web.Response(body=body, status=status, content_type="application/json")
    abandoned = holder.abandoned
    if abandoned is not None:
        # aiohttp's prepare() sets up the connection's writer (chunked framing, compression) before
        # the signal runs and does not undo it when the signal raises: frame the error the same way,
        # or the client reads a body that does not match the headers.
        if abandoned.headers.get(hdrs.TRANSFER_ENCODING, "").lower() == "chunked":
            response.enable_chunked_encoding()
        coding = abandoned.headers.get(hdrs.CONTENT_ENCODING)
        if coding:
            with suppress(ValueError):  # a coding aiohttp does not know, set by hand: nothing to mirror
                response.enable_compression(web.ContentCoding(coding))
    return response


def session_middleware(
    pool: PoolSource, *, on_stats: StatsCallback | None = None, map_errors: bool = True
) -> SessionMiddleware:
    """The middleware that gives each request a session; install its ``on_response_prepare`` too.

    ```python
    mw = session_middleware(pool, on_stats=lambda stats, info: print(info.path, stats.total_statements))
    app = web.Application(middlewares=[mw])
    app.on_response_prepare.append(mw.on_response_prepare)
    ```

    ``pool`` is the `aiouow.Pool` sessions take their connections from, or a function returning
    it, called when a request first asks for its session: for a pool opened in an ``on_startup``
    handler, ``pool=lambda: app[POOL]``. ``on_stats(stats, info)`` receives each request's
    `aiouow.SessionStats` and an `aiouow.integrations.RequestInfo` after its session is closed;
    without it, a DEBUG line per request goes to the ``aiouow.integrations`` logger. Requests that
    never asked for a session report nothing.

    ``map_errors`` (default True): an aiouow error a handler raises (its own ``flush()``,
    ``get_one()``) is answered as the same error at the commit is: `aiouow.NotFoundError` 404,
    `aiouow.IntegrityError` and `aiouow.StaleDataError` 409, `aiouow.DataError` 422, with a JSON body
    naming the entity, field or constraint (never the SQL or a row's values).
    """
    return SessionMiddleware(pool, on_stats=on_stats, map_errors=map_errors)


def setup(
    app: web.Application, pool: PoolSource, *, on_stats: StatsCallback | None = None, map_errors: bool = True
) -> SessionMiddleware:
    """Install the session middleware (innermost of those so far) and its ``on_response_prepare`` handler.

    ```python
    app = web.Application()
    setup(app, pool)
    ```

    Returns the middleware. Call it before the application starts (aiohttp freezes both lists then).
    ``map_errors``: see `session_middleware`.
    """
    mw = session_middleware(pool, on_stats=on_stats, map_errors=map_errors)
    app.middlewares.append(mw)
    app.on_response_prepare.append(mw.on_response_prepare)
    return mw


def get_session(request: web.Request) -> AsyncSession:
    """The request's session, made on the first call.

    ```python
    async def show_user(request: web.Request) -> web.Response:
        user = await get_session(request).get_one(User, int(request.match_info["id"]))
        return web.json_response({"name": user.name})
    ```

    Raises `aiouow.SessionError` when the session middleware is not installed, and when the
    request has already finished.
    """
    holder = request.get(_KEY)
    if not isinstance(holder, RequestSession):
        raise SessionError(
            "cannot get a session: aiouow's session middleware is not installed on this application "
            "(call aiouow.integrations.aiohttp.setup(app, pool))"
        )
    return holder.get()
