"""aiouow.integrations.aiohttp, through aiohttp's own test server and client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import aiouow
from aiouow import AsyncSession, SessionState
from aiouow.integrations import RequestInfo
from aiouow.integrations.aiohttp import get_session, session_middleware, setup

from .models import Order, Tag, User
from .web import emails, seed, wait_released

pytestmark = pytest.mark.timeout(60)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(pool: aiouow.Pool, handler: Handler, **options: Any) -> web.Application:
    """An application with the integration installed and ``handler`` at ``/`` for every method."""
    app = web.Application()
    app.router.add_route("*", "/", handler)
    setup(app, pool, **options)
    return app


@asynccontextmanager
async def client_for(app: web.Application) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(app)) as client:
        yield client


def add_user(request: web.Request, email: str = "bob@example.org") -> AsyncSession:
    s = get_session(request)
    s.add(User(name="bob", email=email))
    return s


class TestCommitBeforeResponse:
    async def test_row_is_committed_before_the_headers(self, pool: aiouow.Pool) -> None:
        """When a returned response is prepared, another session already sees the row."""
        seen_at_prepare: list[list[str]] = []

        async def handler(request: web.Request) -> web.StreamResponse:
            add_user(request)
            return web.json_response({"ok": True}, status=201)

        async def spy(request: web.Request, response: web.StreamResponse) -> None:
            seen_at_prepare.append(await emails(pool))

        app = make_app(pool, handler)
        app.on_response_prepare.append(spy)  # runs after the integration's handler
        async with client_for(app) as client:
            response = await client.post("/")
            assert response.status == 201
        assert seen_at_prepare == [["bob@example.org"]]

    async def test_handler_prepared_stream_is_committed_before_its_headers(self, pool: aiouow.Pool) -> None:
        """A StreamResponse the handler prepares itself is committed before its headers reach the client."""
        release = asyncio.Event()

        async def handler(request: web.Request) -> web.StreamResponse:
            add_user(request)
            response = web.StreamResponse()
            await response.prepare(request)
            await response.write(b"first\n")
            await release.wait()
            await response.write(b"last\n")
            return response

        async with client_for(make_app(pool, handler)) as client:
            response = await client.post("/")
            assert response.status == 200
            assert await emails(pool) == ["bob@example.org"]  # headers arrived, handler still running
            release.set()
            assert await response.text() == "first\nlast\n"


class TestRollback:
    async def test_handler_prepared_error_rolls_back(self, pool: aiouow.Pool) -> None:
        """A StreamResponse the handler prepares with a 4xx status is preceded by a rollback."""
        in_use_after_prepare: list[int] = []

        async def handler(request: web.Request) -> web.StreamResponse:
            await add_user(request).flush()
            response = web.StreamResponse(status=409)
            await response.prepare(request)
            in_use_after_prepare.append(pool.stats().in_use)
            await response.write_eof(b"no")
            return response

        async with client_for(make_app(pool, handler)) as client:
            response = await client.post("/")
            assert response.status == 409
        assert in_use_after_prepare == [0]
        assert await emails(pool) == []


class TestCommitFailure:
    @pytest.mark.parametrize("compressed", [False, True], ids=["plain", "compressed"])
    async def test_handler_prepared_stream_gets_the_error_instead(self, pool: aiouow.Pool, compressed: bool) -> None:
        """When the commit before a handler-prepared stream fails, prepare() raises and the client gets the 409."""
        await seed(pool)
        raised: list[BaseException] = []

        async def handler(request: web.Request) -> web.StreamResponse:
            add_user(request)
            response = web.StreamResponse()
            if compressed:
                response.enable_compression()
            try:
                await response.prepare(request)
            except aiouow.UniqueViolationError as exc:
                raised.append(exc)
                raise
            await response.write(b"not this")
            return response

        async with client_for(make_app(pool, handler)) as client:
            response = await client.post("/", headers={"Accept-Encoding": "gzip"})
            assert response.status == 409
            assert (await response.json())["error"] == "conflict"
            assert (await client.get("/nowhere")).status == 404  # the connection still reads cleanly
        assert [type(e) for e in raised] == [aiouow.UniqueViolationError]


class TestStreaming:
    async def test_session_closed_after_the_stream(self, pool: aiouow.Pool) -> None:
        """A handler streaming its own response can use the session; it is closed after the handler."""
        await seed(pool, "alice@example.org")
        sessions: list[AsyncSession] = []

        async def handler(request: web.Request) -> web.StreamResponse:
            s = get_session(request)
            sessions.append(s)
            response = web.StreamResponse()
            await response.prepare(request)
            for user in await s.all(User):
                await response.write(f"{user.email}\n".encode())
            return response

        async with client_for(make_app(pool, handler)) as client:
            response = await client.get("/")
            assert await response.text() == "alice@example.org\n"
        assert sessions[0].session_state is SessionState.CLOSED
        assert pool.stats().in_use == 0

    async def test_work_after_the_headers_needs_its_own_commit(self, pool: aiouow.Pool) -> None:
        """Changes made after the headers went out are rolled back at the end unless committed."""

        async def handler(request: web.Request) -> web.StreamResponse:
            s = get_session(request)
            response = web.StreamResponse()
            await response.prepare(request)
            s.add(User(name="kept", email="kept@example.org"))
            await s.commit()
            s.add(User(name="lost", email="lost@example.org"))
            await s.flush()
            await response.write(b"ok")
            return response

        async with client_for(make_app(pool, handler)) as client:
            await (await client.get("/")).read()
        assert await emails(pool) == ["kept@example.org"]


class TestWebSocket:
    async def test_handshake_commits_and_later_work_needs_its_own_commit(self, pool: aiouow.Pool) -> None:
        """A WebSocket handshake (101) is a response: work before it is committed, work after it is not."""

        async def handler(request: web.Request) -> web.StreamResponse:
            s = get_session(request)
            s.add(User(name="kept", email="kept@example.org"))
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            s.add(User(name="lost", email="lost@example.org"))
            await s.flush()
            await ws.send_str("done")
            await ws.close()
            return ws

        async with client_for(make_app(pool, handler)) as client, client.ws_connect("/") as ws:
            assert await ws.receive_str() == "done"
        await wait_released(pool)
        assert await emails(pool) == ["kept@example.org"]


def streaming_handler(pool: aiouow.Pool, ended: asyncio.Event) -> Handler:
    """A handler that streams forever, holding a connection in the body's transaction."""

    async def handler(request: web.Request) -> web.StreamResponse:
        s = get_session(request)
        response = web.StreamResponse()
        await response.prepare(request)
        try:
            while True:
                s.add(User(name="x", email=f"{len(s)}@example.org"))
                await s.flush()
                await response.write(b"chunk\n")
                await asyncio.sleep(0.02)
        finally:
            ended.set()

    return handler


@asynccontextmanager
async def serve(app: web.Application, *, handler_cancellation: bool) -> AsyncIterator[str]:
    """Run ``app`` on a loopback port, with or without aiohttp's handler cancellation; yields its base URL."""
    runner = web.AppRunner(app, handler_cancellation=handler_cancellation)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


class TestDisconnect:
    @pytest.mark.parametrize("handler_cancellation", [True, False], ids=["cancelled", "write-fails"])
    async def test_disconnect_mid_stream_releases(self, pool: aiouow.Pool, handler_cancellation: bool) -> None:
        """A client leaving mid-stream frees the connection: the handler is cancelled, or its next write fails."""
        ended = asyncio.Event()
        app = make_app(pool, streaming_handler(pool, ended))
        async with serve(app, handler_cancellation=handler_cancellation) as url, aiohttp.ClientSession() as http:
            response = await http.get(url)
            await response.content.readline()
            assert pool.stats().in_use == 1
            response.close()
            async with asyncio.timeout(10):
                await ended.wait()
            await wait_released(pool)
        assert await emails(pool) == []


class TestCancellation:
    async def test_cancelled_handler_releases_the_connection(self, pool: aiouow.Pool) -> None:
        """A handler task cancelled mid-transaction (the client gave up) rolls back and frees the connection."""
        flushed = asyncio.Event()
        cancelled = asyncio.Event()

        async def handler(request: web.Request) -> web.StreamResponse:
            await add_user(request).flush()
            flushed.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            raise AssertionError("not reached")

        app = make_app(pool, handler)
        async with serve(app, handler_cancellation=True) as url, aiohttp.ClientSession() as http:
            request = asyncio.create_task(http.post(url))
            async with asyncio.timeout(10):
                await flushed.wait()
            assert pool.stats().in_use == 1
            request.cancel()  # the client gives up: the connection closes, aiohttp cancels the handler
            with pytest.raises(asyncio.CancelledError):
                await request
            async with asyncio.timeout(10):
                await cancelled.wait()
            await wait_released(pool)
        assert await emails(pool) == []


class TestInstallation:
    async def test_middleware_alone_commits_returned_responses(self, pool: aiouow.Pool) -> None:
        """``web.Application(middlewares=[session_middleware(pool)])`` commits before a returned response."""

        async def handler(request: web.Request) -> web.StreamResponse:
            get_session(request).add(Tag(code="alone", label="x"))
            return web.json_response({}, status=201)

        app = web.Application(middlewares=[session_middleware(pool)])
        app.router.add_post("/", handler)
        async with client_for(app) as client:
            response = await client.post("/")
            assert response.status == 201
        async with aiouow.AsyncSession(pool) as s:
            assert await s.get(Tag, "alone") is not None
        assert pool.stats().in_use == 0

    async def test_middleware_alone_refuses_to_commit_after_a_prepared_stream(
        self, pool: aiouow.Pool, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Without its signal handler, a handler-prepared stream's work is rolled back with a clear error."""

        async def handler(request: web.Request) -> web.StreamResponse:
            get_session(request).add(Tag(code="streamed", label="x"))
            response = web.StreamResponse()
            await response.prepare(request)
            await response.write(b"data")
            return response

        app = web.Application(middlewares=[session_middleware(pool)])
        app.router.add_get("/", handler)
        async with client_for(app) as client:
            with contextlib.suppress(aiohttp.ClientError):
                await (await client.get("/")).read()
        assert "on_response_prepare" in caplog.text
        async with aiouow.AsyncSession(pool) as s:
            assert await s.get(Tag, "streamed") is None
        assert pool.stats().in_use == 0

    async def test_middleware_list_with_signal(self, pool: aiouow.Pool) -> None:
        """session_middleware in ``middlewares=[...]`` works once its signal handler is appended."""

        async def handler(request: web.Request) -> web.StreamResponse:
            get_session(request).add(Tag(code="red", label="Red"))
            return web.json_response({}, status=201)

        mw = session_middleware(pool)
        app = web.Application(middlewares=[mw])
        app.on_response_prepare.append(mw.on_response_prepare)
        app.router.add_put("/", handler)
        async with client_for(app) as client:
            assert (await client.put("/")).status == 201
            assert (await client.put("/")).status == 409

    async def test_sub_application(self, pool: aiouow.Pool) -> None:
        """Set up on the main application, the integration serves a sub-application's routes."""

        async def handler(request: web.Request) -> web.StreamResponse:
            add_user(request)
            return web.json_response({}, status=201)

        sub = web.Application()
        sub.router.add_post("/users", handler)
        app = web.Application()
        app.add_subapp("/api", sub)
        setup(app, pool)
        async with client_for(app) as client:
            assert (await client.post("/api/users")).status == 201
        assert await emails(pool) == ["bob@example.org"]

    async def test_pool_opened_at_startup(self, pool: aiouow.Pool) -> None:
        """``setup(app, lambda: app[POOL])`` takes the pool an on_startup handler opened."""
        key = web.AppKey("pool", aiouow.Pool)

        async def open_pool(app: web.Application) -> None:
            app[key] = pool

        async def handler(request: web.Request) -> web.StreamResponse:
            add_user(request)
            return web.json_response({}, status=201)

        app = web.Application()
        app.router.add_post("/", handler)
        app.on_startup.append(open_pool)
        setup(app, lambda: app[key])
        async with client_for(app) as client:
            assert (await client.post("/")).status == 201
        assert await emails(pool) == ["bob@example.org"]

    def test_setup_needs_a_pool(self) -> None:
        """setup refuses anything but an aiouow Pool."""
        with pytest.raises(aiouow.ConfigurationError, match="cannot set up session_middleware"):
            setup(web.Application(), "sqlite://")  # type: ignore[arg-type]


class TestStats:
    async def test_status_of_a_failed_commit_and_of_an_exception(self, pool: aiouow.Pool) -> None:
        """The status reported is the one the client got; None when the handler raised."""
        received: list[RequestInfo] = []

        async def handler(request: web.Request) -> web.StreamResponse:
            s = get_session(request)
            if request.method == "POST":
                s.add(Order(user_id=999_999, total=Decimal("1.00")))
                return web.json_response({})
            await s.all(User)
            raise RuntimeError("boom")

        app = make_app(pool, handler, on_stats=lambda stats, info: received.append(info))
        async with client_for(app) as client:
            await client.post("/")
            await client.get("/")
        assert [info.status for info in received] == [409, None]
