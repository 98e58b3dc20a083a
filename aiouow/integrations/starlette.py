"""One aiouow session per request for Starlette and FastAPI: a pure-ASGI middleware and ``get_session``.

```python
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from aiouow.integrations.starlette import SessionMiddleware, get_session

async def create_user(request):
    s = get_session(request)
    s.add(User(name="bob", email="bob@example.org"))
    return JSONResponse({"ok": True}, status_code=201)   # committed before this response starts

app = Starlette(routes=[...], middleware=[Middleware(SessionMiddleware, pool=pool)])
```

With FastAPI, ``get_session`` is a dependency:

```python
app = FastAPI()
app.add_middleware(SessionMiddleware, pool=pool)

@app.post("/users", status_code=201)
async def create_user(body: NewUser, s: AsyncSession = Depends(get_session)) -> dict[str, int]:
    user = User(name=body.name, email=body.email)
    s.add(user)
    await s.flush()
    return {"id": user.id}
```

The rules, for HTTP requests:

- ``get_session(request)`` makes the request's session on its first call and returns the same
  one afterwards. A request that never calls it takes no connection.
- When the application starts its response (``http.response.start``) with a status below 400,
  the middleware commits the session *before* passing the start on: the client never sees a
  success for changes that are not committed. If the commit raises, the application's response
  is dropped and the client gets a JSON error instead: 409 for an `aiouow.IntegrityError` or
  `aiouow.StaleDataError`, 422 for an `aiouow.DataError`, 500 for anything else.
- `install_error_handlers(app)` answers the same errors raised by the handler itself (and a
  `aiouow.NotFoundError` with 404) the same way.
- A response of 400 or more is preceded by a rollback; an exception from the application rolls
  back and propagates (Starlette's error middleware then answers 500).
- The session is closed, and its connection released, when the application returns, raises or
  is cancelled (a client disconnect during a streamed body, a timeout), shielded from
  cancellation. Work done after the response started (in a streamed body, in a background task)
  runs in a new transaction: commit it yourself, or it is rolled back at the end.

Read replicas (a pool made with ``replicas=``): a request whose commit wrote answers with its
commit token, in a cookie (``aiouow_after``, 5 minutes, HttpOnly) and a header
(``X-Aiouow-After``); a request that brings either (the cookie comes back by itself from a
browser; an API client may send the header) gets a session that reads only from replicas that
have that commit, so a client always reads its own writes.

WebSocket connections get a session too (same ``get_session``), which is never committed for
you: commit it yourself; it is closed when the connection's handler returns. Other scopes
(``lifespan``) pass through untouched.
"""

from __future__ import annotations

import contextlib
from http.cookies import CookieError, SimpleCookie

from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._session import AsyncSession
from .._tasklocal import bind, unbind
from ..errors import DataError, IntegrityError, NotFoundError, SessionError, StaleDataError
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

__all__ = ["SessionMiddleware", "get_session", "install_error_handlers"]

#: Where the request's lazy session lives in the ASGI scope (the scope is the request's own dict).
_SCOPE_KEY = "aiouow.session"


class SessionMiddleware:
    """Gives each HTTP request (and WebSocket) one lazily created `aiouow.AsyncSession`.

    ``pool`` is the `aiouow.Pool` sessions take their connections from, or a function returning
    it, called when a request first asks for its session: for a pool opened in the application's
    lifespan, ``pool=lambda: app.state.pool``.

    ``on_stats(stats, info)`` receives each request's `aiouow.SessionStats` and an
    `aiouow.integrations.RequestInfo` after its session is closed; without it, a DEBUG line per
    request goes to the ``aiouow.integrations`` logger. Requests that never asked for a session
    report nothing.
    """

    def __init__(self, app: ASGIApp, pool: PoolSource, *, on_stats: StatsCallback | None = None) -> None:
        self.app = app
        self.pool = check_pool(pool, "SessionMiddleware")
        self.on_stats = on_stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        holder = RequestSession(self.pool, after=_request_token(scope))
        scope[_SCOPE_KEY] = holder
        token = bind(holder.get)  # current_session() in the request's task: this session
        status: int | None = None
        replaced = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, replaced
            if replaced:
                # The commit failed and the client already has the error response: drop the rest.
                return
            if message["type"] == "http.response.start" and status is None:
                error = await holder.respond(message["status"])
                if error is not None:
                    replaced = True
                    status = commit_error_status(error)
                    await _send_error(send, status, error)
                    return
                status = message["status"]
                if holder.commit_token is not None:  # read-your-writes on the client's next requests
                    message = {
                        **message,
                        "headers": [*message.get("headers", ()), *_token_headers(holder.commit_token)],
                    }
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper if kind == "http" else send)
        finally:
            unbind(token)
            stats = await holder.finish()
            report(stats, RequestInfo(scope.get("method", "WEBSOCKET"), scope["path"], status), self.on_stats)


def _request_token(scope: Scope) -> str | None:
    """The commit token the request brought, in the header or the cookie (see `client_token`)."""
    header = cookie = None
    wanted = AFTER_HEADER.lower().encode("latin-1")
    for name, value in scope.get("headers", ()):
        if name == wanted:
            header = value.decode("latin-1")
        elif name == b"cookie" and AFTER_COOKIE.encode() in value:
            jar: SimpleCookie = SimpleCookie()
            with contextlib.suppress(CookieError):
                jar.load(value.decode("latin-1"))
            if AFTER_COOKIE in jar:
                cookie = jar[AFTER_COOKIE].value
    return client_token(header, cookie) if header or cookie else None


def _token_headers(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"set-cookie", token_cookie(token).encode("latin-1")), (AFTER_HEADER.lower().encode(), token.encode())]


async def _send_error(send: Send, status: int, error: BaseException) -> None:
    body = error_body(status, error)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode("latin-1"))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def get_session(request: HTTPConnection) -> AsyncSession:
    """The request's session, made on the first call; also a FastAPI dependency: ``Depends(get_session)``.

    ```python
    async def show_user(request: Request) -> JSONResponse:
        user = await get_session(request).get_one(User, int(request.path_params["id"]))
        return JSONResponse({"name": user.name})
    ```

    Raises `aiouow.SessionError` when `SessionMiddleware` is not installed, and when the request
    has already finished.
    """
    holder = request.scope.get(_SCOPE_KEY)
    if not isinstance(holder, RequestSession):
        raise SessionError(
            "cannot get a session: aiouow's SessionMiddleware is not installed on this application "
            "(add Middleware(SessionMiddleware, pool=pool) to its middleware)"
        )
    return holder.get()


def install_error_handlers(app: Starlette) -> None:
    """Answer the aiouow errors a handler raises (its own ``flush()``, ``get_one()``) as the
    middleware answers the same errors at its commit: `aiouow.NotFoundError` 404,
    `aiouow.IntegrityError` and `aiouow.StaleDataError` 409, `aiouow.DataError` 422 (FastAPI's
    validation-error shape), each with a JSON body naming the entity, field or constraint, never the
    SQL or a row's values (the message goes to the ``aiouow.integrations`` log at INFO).

    ```python
    app = FastAPI()
    app.add_middleware(SessionMiddleware, pool=lambda: app.state.pool)
    install_error_handlers(app)
    ```

    The response's status is 400 or more, so the middleware rolls the session back. Works for
    FastAPI, which is a Starlette application.
    """
    for error in (NotFoundError, IntegrityError, StaleDataError, DataError):
        app.add_exception_handler(error, _answer_error)


async def _answer_error(request: Request, exc: Exception) -> Response:
    status = error_status(exc)
    if status is None:  # (a value the database holds that cannot be read: the server's error)
        raise exc
    log_mapped(exc, status)
    return JSONResponse(error_payload(exc, status), status_code=status)
