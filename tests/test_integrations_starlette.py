"""aiouow.integrations.starlette, through httpx's ASGITransport (and uvicorn where a real socket matters)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any

import httpx
import pytest
import uvicorn
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

import aiouow
from aiouow import AsyncSession, SessionState, select
from aiouow.integrations.starlette import SessionMiddleware, get_session

from .models import Tag, User
from .web import emails, wait_released

pytestmark = pytest.mark.timeout(60)

Endpoint = Callable[[Request], Awaitable[Response]]
SessionDep = Annotated[AsyncSession, Depends(get_session)]


def make_app(
    pool: aiouow.Pool, endpoint: Endpoint, *, pool_function: Callable[[], Any] | None = None, **options: Any
) -> Starlette:
    """A Starlette app with the session middleware and ``endpoint`` at ``/`` (GET and POST)."""
    return Starlette(
        routes=[Route("/", endpoint, methods=["GET", "POST"])],
        middleware=[Middleware(SessionMiddleware, pool=pool_function or pool, **options)],
    )


@asynccontextmanager
async def client_for(app: ASGIApp, *, raise_app_exceptions: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def add_user(request: Request, email: str = "bob@example.org") -> AsyncSession:
    s = get_session(request)
    s.add(User(name="bob", email=email))
    return s


class TestCommitBeforeResponse:
    async def test_row_is_committed_when_the_response_starts(self, pool: aiouow.Pool) -> None:
        """When the response start reaches the server, another session already sees the row."""
        seen_at_start: list[list[str]] = []

        async def endpoint(request: Request) -> Response:
            add_user(request)
            return JSONResponse({"ok": True}, status_code=201)

        inner = make_app(pool, endpoint)

        async def server_side(scope: Scope, receive: Receive, send: Send) -> None:
            async def spy(message: Message) -> None:
                if message["type"] == "http.response.start":
                    seen_at_start.append(await emails(pool))
                await send(message)

            await inner(scope, receive, spy)

        async with client_for(server_side) as client:
            response = await client.post("/")
        assert response.status_code == 201
        assert seen_at_start == [["bob@example.org"]]

    async def test_streamed_response_commits_before_its_start(self, pool: aiouow.Pool) -> None:
        """A streamed response is committed before its start too, not after its body."""
        seen_in_body: list[list[str]] = []

        async def endpoint(request: Request) -> Response:
            add_user(request)

            async def body() -> AsyncIterator[bytes]:
                seen_in_body.append(await emails(pool))
                yield b"done"

            return StreamingResponse(body())

        async with client_for(make_app(pool, endpoint)) as client:
            response = await client.post("/")
        assert (response.status_code, response.text) == (200, "done")
        assert seen_in_body == [["bob@example.org"]]


class TestRollback:
    async def test_rollback_happens_before_the_error_response(self, pool: aiouow.Pool) -> None:
        """The connection is back in the pool when the 4xx starts."""
        in_use_at_start: list[int] = []

        async def endpoint(request: Request) -> Response:
            await add_user(request).flush()
            return JSONResponse({}, status_code=409)

        inner = make_app(pool, endpoint)

        async def server_side(scope: Scope, receive: Receive, send: Send) -> None:
            async def spy(message: Message) -> None:
                if message["type"] == "http.response.start":
                    in_use_at_start.append(pool.stats().in_use)
                await send(message)

            await inner(scope, receive, spy)

        async with client_for(server_side) as client:
            await client.post("/")
        assert in_use_at_start == [0]


class TestCommitFailure:
    async def test_swallowed_database_error_is_500(self, pool: aiouow.Pool) -> None:
        """A handler that catches a database error and answers 200 gets a 500: its work was rolled back."""
        async with AsyncSession(pool) as s:
            s.add(User(name="first", email="bob@example.org"))
            await s.commit()

        async def endpoint(request: Request) -> Response:
            s = add_user(request)
            with suppress(aiouow.UniqueViolationError):
                await s.flush()
            return JSONResponse({"ok": True})

        async with client_for(make_app(pool, endpoint)) as client:
            response = await client.post("/")
        assert response.status_code == 500

    async def test_streamed_body_is_replaced(self, pool: aiouow.Pool) -> None:
        """When the commit fails, none of the application's streamed body reaches the client."""
        async with AsyncSession(pool) as s:
            s.add(User(name="first", email="bob@example.org"))
            await s.commit()

        async def endpoint(request: Request) -> Response:
            add_user(request)

            async def body() -> AsyncIterator[bytes]:
                yield b"not "
                yield b"this"

            return StreamingResponse(body(), media_type="text/plain")

        async with client_for(make_app(pool, endpoint)) as client:
            response = await client.post("/")
        assert response.status_code == 409
        assert json.loads(response.content)["error"] == "conflict"
        assert int(response.headers["content-length"]) == len(response.content)


class TestStreaming:
    async def test_session_closed_after_the_stream(self, pool: aiouow.Pool) -> None:
        """A streamed body can use the session; it is closed once the body is done."""
        async with AsyncSession(pool) as s:
            s.add(User(name="alice", email="alice@example.org"), User(name="bob", email="bob@example.org"))
            await s.commit()
        sessions: list[AsyncSession] = []

        async def endpoint(request: Request) -> Response:
            s = get_session(request)
            sessions.append(s)

            async def body() -> AsyncIterator[bytes]:
                for user in await s.scalars(select(User).order_by(User.name)):
                    assert s.session_state is SessionState.ACTIVE
                    yield f"{user.name}\n".encode()

            return StreamingResponse(body())

        async with client_for(make_app(pool, endpoint)) as client:
            response = await client.get("/")
        assert response.text == "alice\nbob\n"
        assert sessions[0].session_state is SessionState.CLOSED
        assert pool.stats().in_use == 0

    async def test_work_after_the_response_started_needs_its_own_commit(self, pool: aiouow.Pool) -> None:
        """Changes made while streaming are rolled back at the end unless the body commits them."""

        async def endpoint(request: Request) -> Response:
            s = get_session(request)

            async def body() -> AsyncIterator[bytes]:
                s.add(User(name="kept", email="kept@example.org"))
                await s.commit()
                s.add(User(name="lost", email="lost@example.org"))
                await s.flush()
                yield b"ok"

            return StreamingResponse(body())

        async with client_for(make_app(pool, endpoint)) as client:
            await client.get("/")
        assert await emails(pool) == ["kept@example.org"]


@asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn on a loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", http="h11", ws="none")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110  (uvicorn has no event to wait on)
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


class TestDisconnect:
    async def test_client_disconnect_mid_stream_releases_the_connection(self, pool: aiouow.Pool) -> None:
        """A client that goes away while the body streams (and the session holds a connection) frees it."""
        ended = asyncio.Event()

        async def endpoint(request: Request) -> Response:
            s = get_session(request)

            async def body() -> AsyncIterator[bytes]:
                try:
                    while True:
                        s.add(User(name="x", email=f"{len(s)}@example.org"))
                        await s.flush()  # the body's transaction holds a connection
                        yield b"chunk\n"
                        await asyncio.sleep(0.02)
                finally:
                    ended.set()

            return StreamingResponse(body())

        async with serve(make_app(pool, endpoint)) as url, httpx.AsyncClient() as client:
            async with client.stream("GET", url) as response:
                async for _ in response.aiter_lines():
                    assert pool.stats().in_use == 1
                    break
            async with asyncio.timeout(10):
                await ended.wait()
            await wait_released(pool)
        assert await emails(pool) == []


class TestCancellation:
    async def test_cancelled_request_releases_the_connection(self, pool: aiouow.Pool) -> None:
        """Cancelling the request's task mid-handler rolls back and releases the connection."""
        flushed = asyncio.Event()

        async def endpoint(request: Request) -> Response:
            await add_user(request).flush()
            flushed.set()
            await asyncio.sleep(3600)
            raise AssertionError("not reached")

        async with client_for(make_app(pool, endpoint)) as client:
            task = asyncio.create_task(client.post("/"))
            async with asyncio.timeout(10):
                await flushed.wait()
            assert pool.stats().in_use == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert pool.stats().in_use == 0
        assert await emails(pool) == []

    async def test_repeated_cancellation_still_releases_the_connection(self, pool: aiouow.Pool) -> None:
        """Cancelling again and again while the session closes does not interrupt the close."""
        flushed = asyncio.Event()

        async def endpoint(request: Request) -> Response:
            await add_user(request).flush()
            flushed.set()
            await asyncio.sleep(3600)
            raise AssertionError("not reached")

        async with client_for(make_app(pool, endpoint)) as client:
            task = asyncio.create_task(client.post("/"))
            async with asyncio.timeout(10):
                await flushed.wait()
                while not task.done():
                    task.cancel()
                    await asyncio.sleep(0)
            with pytest.raises(asyncio.CancelledError):
                await task
        assert pool.stats().in_use == 0
        assert await emails(pool) == []


class TestFastAPI:
    def make_app(self, pool: aiouow.Pool) -> FastAPI:
        app = FastAPI()
        app.add_middleware(SessionMiddleware, pool=pool)

        @app.post("/users", status_code=201)
        async def create_user(request: Request, s: SessionDep) -> dict[str, Any]:
            body = await request.json()
            user = User(name=body["name"], email=body["email"])
            s.add(user)
            await s.flush()
            return {"id": user.id, "same_session": s is get_session(request)}

        @app.put("/tags/{code}", status_code=201)
        async def create_tag(code: str, s: SessionDep) -> dict[str, str]:
            s.add(Tag(code=code, label=code.upper()))  # inserted by the commit, after this returns
            return {"code": code}

        @app.get("/users/{user_id}")
        async def show_user(user_id: int, s: SessionDep) -> dict[str, Any]:
            user = await s.get(User, user_id)
            if user is None:
                raise HTTPException(404)
            return {"name": user.name}

        return app

    async def test_depends_get_session(self, pool: aiouow.Pool) -> None:
        """``Depends(get_session)`` gives the request's session, committed before the response."""
        async with client_for(self.make_app(pool)) as client:
            created = await client.post("/users", json={"name": "bob", "email": "bob@example.org"})
            assert created.status_code == 201
            assert created.json()["same_session"] is True
            shown = await client.get(f"/users/{created.json()['id']}")
            missing = await client.get("/users/999999")
        assert shown.json() == {"name": "bob"}
        assert missing.status_code == 404
        assert await emails(pool) == ["bob@example.org"]

    async def test_commit_failure_is_409(self, pool: aiouow.Pool) -> None:
        """A FastAPI route whose commit hits a unique violation answers 409 instead of its 201."""
        async with client_for(self.make_app(pool)) as client:
            first = await client.put("/tags/red")
            second = await client.put("/tags/red")
        assert (first.status_code, second.status_code) == (201, 409)
        assert second.json()["error"] == "conflict"


class TestWithoutMiddleware:
    def test_get_session_without_middleware_raises(self) -> None:
        """get_session on a request the middleware never saw says the middleware is missing."""
        request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
        with pytest.raises(aiouow.SessionError, match="SessionMiddleware is not installed"):
            get_session(request)

    async def test_get_session_after_the_request_raises(self, pool: aiouow.Pool) -> None:
        """A request kept beyond its end cannot make a session any more."""
        kept: list[Request] = []

        async def endpoint(request: Request) -> Response:
            kept.append(request)
            return JSONResponse({})

        async with client_for(make_app(pool, endpoint)) as client:
            await client.get("/")
        with pytest.raises(aiouow.SessionError, match="has finished"):
            get_session(kept[0])

    def test_middleware_needs_a_pool(self) -> None:
        """SessionMiddleware refuses anything but an aiouow Pool."""
        with pytest.raises(aiouow.ConfigurationError, match="cannot set up SessionMiddleware"):
            SessionMiddleware(make_app, pool="sqlite://")  # type: ignore[arg-type]


class TestPoolFunction:
    async def test_pool_opened_in_the_lifespan(self, pool: aiouow.Pool) -> None:
        """``pool=`` may be a function, called when a request first asks for its session."""
        calls: list[str] = []

        def current_pool() -> aiouow.Pool:
            calls.append("called")
            return pool

        async def endpoint(request: Request) -> Response:
            if request.method == "POST":
                add_user(request)
            return JSONResponse({})

        async with client_for(make_app(pool, endpoint, pool_function=current_pool)) as client:
            await client.get("/")
            await client.post("/")
        assert calls == ["called"]
        assert await emails(pool) == ["bob@example.org"]

    async def test_function_returning_something_else(self, pool: aiouow.Pool) -> None:
        """A pool function that returns something else fails the request with ConfigurationError."""

        async def endpoint(request: Request) -> Response:
            get_session(request)
            return JSONResponse({})

        app = make_app(pool, endpoint, pool_function=lambda: "sqlite://")
        async with client_for(app) as client:
            with pytest.raises(aiouow.ConfigurationError, match="the pool function returned str"):
                await client.get("/")


async def run_asgi(app: ASGIApp, scope: Scope, incoming: list[Message]) -> list[Message]:
    """Drive an ASGI app with scripted messages; returns what it sent."""
    queue: asyncio.Queue[Message] = asyncio.Queue()
    for message in incoming:
        queue.put_nowait(message)
    sent: list[Message] = []

    async def receive() -> Message:
        return await queue.get()

    async def send(message: Message) -> None:
        sent.append(message)

    async with asyncio.timeout(10):
        await app(scope, receive, send)
    return sent


class TestOtherScopes:
    async def test_websocket_session_is_closed_and_not_committed_for_you(self, pool: aiouow.Pool) -> None:
        """A WebSocket gets a session that it commits itself; the rest is rolled back when it ends."""
        sessions: list[AsyncSession] = []

        async def endpoint(websocket: WebSocket) -> None:
            s = get_session(websocket)
            sessions.append(s)
            await websocket.accept()
            s.add(User(name="kept", email="kept@example.org"))
            await s.commit()
            s.add(User(name="lost", email="lost@example.org"))
            await s.flush()
            await websocket.send_text("done")
            await websocket.close()

        app = Starlette(routes=[WebSocketRoute("/ws", endpoint)], middleware=[Middleware(SessionMiddleware, pool=pool)])
        scope = {"type": "websocket", "path": "/ws", "headers": [], "query_string": b"", "subprotocols": []}
        sent = await run_asgi(app, scope, [{"type": "websocket.connect"}])
        assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
        assert sessions[0].session_state is SessionState.CLOSED
        assert await emails(pool) == ["kept@example.org"]

    async def test_lifespan_passes_through(self, pool: aiouow.Pool) -> None:
        """Lifespan events reach the application untouched."""
        started: list[bool] = []

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            started.append(True)
            yield

        app = Starlette(lifespan=lifespan, middleware=[Middleware(SessionMiddleware, pool=pool)])
        sent = await run_asgi(
            app, {"type": "lifespan", "state": {}}, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        )
        assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        assert started == [True]

    def test_get_session_accepts_any_http_connection(self) -> None:
        """get_session is typed for HTTPConnection, so FastAPI injects it for requests and WebSockets."""
        assert get_session.__annotations__["request"] in ("HTTPConnection", HTTPConnection)
