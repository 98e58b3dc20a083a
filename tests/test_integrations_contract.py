"""The contract every web integration keeps, run on each framework (Starlette and aiohttp) and each dialect.

One session per request, made lazily; committed before the response starts when the response is a
success or a redirect, rolled back on an error response or an exception; a commit failure turns the
response into 409 (integrity) or 500; the request's statistics reported. Each test describes what the
request does once (`Work`); a `Framework` adapter turns it into that framework's handler and drives it
through that framework's test client. What only one framework has (streaming, websockets, FastAPI,
lifespans, sub-applications, disconnects) is tested in its own module.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Protocol

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

import aiouow
from aiouow import AsyncSession, SessionState, SessionStats
from aiouow.integrations import RequestInfo
from aiouow.integrations import aiohttp as aiohttp_integration
from aiouow.integrations import starlette as starlette_integration

from .models import Order, User
from .web import emails, seed

pytestmark = pytest.mark.timeout(60)


@dataclass
class Reply:
    """How the handler answers once its work is done."""

    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    raise_error: bool = False  # raise RuntimeError instead of answering
    http_error: int | None = None  # raise the framework's HTTP exception of this status
    redirect: str | None = None  # answer 303 to this location


#: What a request does with its session (``session()`` gets it, as ``get_session(request)`` does).
Work = Callable[[Callable[[], AsyncSession]], Awaitable[Reply]]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Framework(Protocol):
    name: str

    def app(self, pool: aiouow.Pool, work: Work, **options: Any) -> Any: ...

    def client(self, app: Any) -> Any:  # an async context manager of a `Client`
        ...

    def app_without_the_integration(self, work: Work) -> Any: ...


class Client(Protocol):
    async def request(self, method: str) -> Answer: ...


class StarletteFramework:
    name = "starlette"

    def app(self, pool: aiouow.Pool, work: Work, **options: Any) -> Any:
        map_errors = options.pop("map_errors", True)
        app = Starlette(
            routes=[Route("/", self._endpoint(work), methods=["GET", "POST"])],
            middleware=[Middleware(starlette_integration.SessionMiddleware, pool=pool, **options)],
        )
        if map_errors:
            starlette_integration.install_error_handlers(app)
        return app

    def app_without_the_integration(self, work: Work) -> Any:
        return Starlette(routes=[Route("/", self._endpoint(work), methods=["GET", "POST"])])

    @staticmethod
    def _endpoint(work: Work) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            reply = await work(lambda: starlette_integration.get_session(request))
            if reply.raise_error:
                raise RuntimeError("boom")
            if reply.http_error is not None:
                raise HTTPException(reply.http_error)
            if reply.redirect is not None:
                return RedirectResponse(reply.redirect, status_code=303)
            return JSONResponse(reply.body, status_code=reply.status)

        return endpoint

    @asynccontextmanager
    async def client(self, app: Any) -> AsyncIterator[Client]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:

            class _Client:
                async def request(self, method: str) -> Answer:
                    response = await http.request(method, "/")
                    return Answer(response.status_code, dict(response.headers), response.content)

            yield _Client()


class AiohttpFramework:
    name = "aiohttp"
    _errors: ClassVar[dict[int, type[web.HTTPException]]] = {404: web.HTTPNotFound, 409: web.HTTPConflict}

    def app(self, pool: aiouow.Pool, work: Work, **options: Any) -> Any:
        app = self.app_without_the_integration(work)
        aiohttp_integration.setup(app, pool, **options)
        return app

    def app_without_the_integration(self, work: Work) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            reply = await work(lambda: aiohttp_integration.get_session(request))
            if reply.raise_error:
                raise RuntimeError("boom")
            if reply.http_error is not None:
                raise self._errors[reply.http_error]()
            if reply.redirect is not None:
                raise web.HTTPSeeOther(reply.redirect)
            return web.json_response(reply.body, status=reply.status)

        app = web.Application()
        app.router.add_route("*", "/", handler)
        return app

    @asynccontextmanager
    async def client(self, app: Any) -> AsyncIterator[Client]:
        async with TestClient(TestServer(app)) as test_client:

            class _Client:
                async def request(self, method: str) -> Answer:
                    async with test_client.request(method, "/", allow_redirects=False) as response:
                        headers = {k.lower(): v for k, v in response.headers.items()}
                        return Answer(response.status, headers, await response.read())

            yield _Client()


@pytest.fixture(params=[StarletteFramework(), AiohttpFramework()], ids=lambda f: f.name)
def framework(request: pytest.FixtureRequest) -> Framework:
    chosen: Framework = request.param
    return chosen


def adding(reply: Reply, *, flush: bool = False, email: str = "bob@example.org") -> Work:
    """Work that adds a user (flushed, with ``flush``), then answers ``reply``."""

    async def work(session: Callable[[], AsyncSession]) -> Reply:
        s = session()
        s.add(User(name="bob", email=email))
        if flush:
            await s.flush()
        return reply

    return work


async def request(framework: Framework, app: Any, method: str = "POST") -> Answer:
    async with framework.client(app) as client:
        answer: Answer = await client.request(method)
        return answer


class TestCommit:
    async def test_a_success_commits_and_releases_the_connection(self, framework: Framework, pool: aiouow.Pool) -> None:
        answer = await request(framework, framework.app(pool, adding(Reply(201, {"ok": True}))))
        assert answer.status == 201
        assert await emails(pool) == ["bob@example.org"]
        assert pool.stats().in_use == 0

    async def test_a_redirect_commits(self, framework: Framework, pool: aiouow.Pool) -> None:
        answer = await request(framework, framework.app(pool, adding(Reply(redirect="/done"))))
        assert answer.status == 303 and answer.headers["location"] == "/done"
        assert await emails(pool) == ["bob@example.org"]


class TestLazySession:
    async def test_a_request_that_never_asks_takes_no_connection(
        self, framework: Framework, pool: aiouow.Pool, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No connection acquired, no statistics reported."""
        acquired: list[None] = []
        acquire = type(pool.driver).acquire

        async def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
            acquired.append(None)
            return await acquire(self, *args, **kwargs)

        monkeypatch.setattr(type(pool.driver), "acquire", counting)
        reports: list[RequestInfo] = []

        async def work(session: Callable[[], AsyncSession]) -> Reply:
            return Reply(body={"hello": "world"})

        app = framework.app(pool, work, on_stats=lambda stats, info: reports.append(info))
        assert (await request(framework, app, "GET")).status == 200
        assert acquired == [] and reports == []

    async def test_a_session_asked_for_and_unused_runs_no_statement(
        self, framework: Framework, pool: aiouow.Pool
    ) -> None:
        stats: list[SessionStats] = []

        async def work(session: Callable[[], AsyncSession]) -> Reply:
            session()
            return Reply()

        await request(framework, framework.app(pool, work, on_stats=lambda s, info: stats.append(s)), "GET")
        assert [s.total_statements for s in stats] == [0]

    async def test_one_session_per_request(self, framework: Framework, pool: aiouow.Pool) -> None:
        """Every call in one request returns the same session; another request gets another, closed after."""
        sessions: list[AsyncSession] = []

        async def work(session: Callable[[], AsyncSession]) -> Reply:
            assert session() is session()
            sessions.append(session())
            return Reply()

        app = framework.app(pool, work)
        async with framework.client(app) as client:
            await client.request("GET")
            await client.request("GET")
        assert len(sessions) == 2 and sessions[0] is not sessions[1]
        assert all(s.session_state is SessionState.CLOSED for s in sessions)


class TestRollback:
    async def test_an_exception_rolls_back(self, framework: Framework, pool: aiouow.Pool) -> None:
        answer = await request(framework, framework.app(pool, adding(Reply(raise_error=True), flush=True)))
        assert answer.status == 500
        assert await emails(pool) == [] and pool.stats().in_use == 0

    async def test_a_client_error_response_rolls_back(self, framework: Framework, pool: aiouow.Pool) -> None:
        answer = await request(framework, framework.app(pool, adding(Reply(422, {"error": "invalid"}), flush=True)))
        assert answer.status == 422
        assert await emails(pool) == []

    async def test_a_raised_http_error_rolls_back(self, framework: Framework, pool: aiouow.Pool) -> None:
        answer = await request(framework, framework.app(pool, adding(Reply(http_error=404))))
        assert answer.status == 404
        assert await emails(pool) == []


class TestCommitFailure:
    async def test_a_unique_violation_is_409_and_nothing_is_written(
        self, framework: Framework, pool: aiouow.Pool
    ) -> None:
        await seed(pool)

        async def work(session: Callable[[], AsyncSession]) -> Reply:
            session().add(User(name="second", email="carol@example.org"), User(name="dup", email="bob@example.org"))
            return Reply(201, {"ok": True})

        answer = await request(framework, framework.app(pool, work))
        assert answer.status == 409
        assert answer.headers["content-type"].startswith("application/json")
        assert b'"conflict"' in answer.body
        assert await emails(pool) == ["bob@example.org"]

    async def test_a_foreign_key_violation_is_409(self, framework: Framework, pool: aiouow.Pool) -> None:
        async def work(session: Callable[[], AsyncSession]) -> Reply:
            session().add(Order(user_id=999_999, total=Decimal("1.00")))
            return Reply(body={"ok": True})

        assert (await request(framework, framework.app(pool, work))).status == 409

    async def test_a_redirect_whose_commit_fails_is_409(self, framework: Framework, pool: aiouow.Pool) -> None:
        await seed(pool)
        answer = await request(framework, framework.app(pool, adding(Reply(redirect="/done"))))
        assert answer.status == 409 and "location" not in answer.headers

    async def test_a_bad_value_found_at_the_commit_is_422_naming_the_field(
        self, framework: Framework, pool: aiouow.Pool
    ) -> None:
        """A DataError at the commit's flush: 422, in FastAPI's validation shape, naming entity and field."""

        async def work(session: Callable[[], AsyncSession]) -> Reply:
            user = User(name="bob", email="bob@example.org")
            user.name = 123  # type: ignore[assignment]  # found by the flush inside commit()
            session().add(user)
            return Reply(body={"ok": True})

        answer = await request(framework, framework.app(pool, work))
        assert answer.status == 422
        (item,) = json.loads(answer.body)["detail"]
        assert item["loc"] == ["body", "name"] and item["entity"] == "User" and "expects str" in item["msg"]
        assert await emails(pool) == []

    async def test_another_commit_failure_is_500(self, framework: Framework, pool: aiouow.Pool) -> None:
        """A commit failing for a reason that is not the request's (here a before_commit listener) is a 500."""

        def boom(session: AsyncSession) -> None:
            raise RuntimeError("the audit log is down")

        async def work(session: Callable[[], AsyncSession]) -> Reply:
            session().add(User(name="bob", email="bob@example.org"))
            return Reply(body={"ok": True})

        aiouow.event.listen(pool, "before_commit", boom)
        try:
            answer = await request(framework, framework.app(pool, work))
        finally:
            aiouow.event.remove(pool, "before_commit", boom)
        assert answer.status == 500 and b'"internal server error"' in answer.body
        assert b"audit" not in answer.body
        assert await emails(pool) == []


class TestErrorsRaisedInHandlers:
    """What the handler's own flush() or get_one() raises is answered as at the commit: 404, 409, 422."""

    async def test_not_found_is_404(self, framework: Framework, pool: aiouow.Pool) -> None:
        async def work(session: Callable[[], AsyncSession]) -> Reply:
            await session().get_one(User, 12345)
            return Reply()

        answer = await request(framework, framework.app(pool, work))
        assert answer.status == 404 and json.loads(answer.body) == {"error": "not found", "detail": "no such User"}

    async def test_a_unique_violation_at_the_handlers_flush_is_409_naming_the_constraint(
        self, framework: Framework, pool: aiouow.Pool
    ) -> None:
        async with AsyncSession(pool) as s:
            s.add(User(name="ann", email="secret-ann@example.org"))
            await s.commit()

        async def work(session: Callable[[], AsyncSession]) -> Reply:
            s = session()
            s.add(User(name="bob", email="bob@example.org"))
            await s.flush()
            s.add(User(name="eve", email="secret-ann@example.org"))
            await s.flush()
            return Reply()

        answer = await request(framework, framework.app(pool, work))
        body = json.loads(answer.body)
        assert answer.status == 409 and body["error"] == "conflict" and "unique" in body["detail"]
        assert body["constraint"] in ("uq_users_email", "users.email")
        assert b"secret-ann" not in answer.body and b"INSERT" not in answer.body  # no row data, no SQL
        assert await emails(pool) == ["secret-ann@example.org"]  # bob was rolled back with the rest

    async def test_a_bad_value_at_the_handlers_flush_is_422(self, framework: Framework, pool: aiouow.Pool) -> None:
        async def work(session: Callable[[], AsyncSession]) -> Reply:
            s = session()
            s.add(User(name="bob\x00", email="bob@example.org"))
            await s.flush()
            return Reply()

        answer = await request(framework, framework.app(pool, work))
        (item,) = json.loads(answer.body)["detail"]
        assert answer.status == 422 and item["loc"] == ["body", "name"] and item["type"] == "aiouow.data_error"

    async def test_without_the_mapping_the_error_is_a_500(self, framework: Framework, pool: aiouow.Pool) -> None:
        async def work(session: Callable[[], AsyncSession]) -> Reply:
            await session().get_one(User, 12345)
            return Reply()

        answer = await request(framework, framework.app(pool, work, map_errors=False))
        assert answer.status == 500


class TestStats:
    async def test_the_callback_receives_the_request_statistics(self, framework: Framework, pool: aiouow.Pool) -> None:
        received: list[tuple[SessionStats, RequestInfo]] = []

        async def work(session: Callable[[], AsyncSession]) -> Reply:
            s = session()
            s.add(User(name="bob", email="bob@example.org"))
            await s.all(User)
            return Reply(201)

        app = framework.app(pool, work, on_stats=lambda stats, info: received.append((stats, info)))
        await request(framework, app)
        [(stats, info)] = received
        assert info == RequestInfo("POST", "/", 201)
        assert stats.statements["insert"] == 1 and stats.statements["select"] == 1
        assert stats.rows_written == 1 and stats.db_time > 0

    async def test_the_status_reported_is_the_one_the_client_got(self, framework: Framework, pool: aiouow.Pool) -> None:
        received: list[RequestInfo] = []

        async def work(session: Callable[[], AsyncSession]) -> Reply:
            session().add(Order(user_id=999_999, total=Decimal("1.00")))
            return Reply()

        await request(framework, framework.app(pool, work, on_stats=lambda stats, info: received.append(info)))
        assert [info.status for info in received] == [409]

    async def test_a_debug_line_without_a_callback(
        self, framework: Framework, pool: aiouow.Pool, caplog: pytest.LogCaptureFixture
    ) -> None:
        async def work(session: Callable[[], AsyncSession]) -> Reply:
            await session().all(User)
            return Reply()

        caplog.set_level(logging.DEBUG, logger="aiouow.integrations")
        await request(framework, framework.app(pool, work), "GET")
        [record] = [r for r in caplog.records if r.name == "aiouow.integrations"]
        assert record.levelno == logging.DEBUG
        assert "GET / -> 200" in record.getMessage() and "select 1" in record.getMessage()

    async def test_a_failing_callback_does_not_fail_the_request(
        self, framework: Framework, pool: aiouow.Pool, caplog: pytest.LogCaptureFixture
    ) -> None:
        def on_stats(stats: SessionStats, info: RequestInfo) -> None:
            raise ValueError("bad callback")

        async def work(session: Callable[[], AsyncSession]) -> Reply:
            await session().all(User)
            return Reply()

        assert (await request(framework, framework.app(pool, work, on_stats=on_stats), "GET")).status == 200
        assert "on_stats callback raised" in caplog.text


class TestWithoutTheIntegration:
    async def test_get_session_says_the_middleware_is_missing(self, framework: Framework) -> None:
        errors: list[Exception] = []

        async def work(session: Callable[[], AsyncSession]) -> Reply:
            try:
                session()
            except aiouow.SessionError as exc:
                errors.append(exc)
            return Reply()

        await request(framework, framework.app_without_the_integration(work), "GET")
        assert len(errors) == 1 and "is not installed" in str(errors[0])
