"""Task-local sessions: current_session(), task_session(pool), s.fork(), child tasks, and the web
integrations binding the request's session to the request's task."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import aiouow
from aiouow import AsyncSession, SessionError, SessionState
from aiouow.integrations import aiohttp as aiohttp_integration
from aiouow.integrations import starlette as starlette_integration

from .models import Tag


async def add_tag(code: str) -> None:
    """A service function several calls deep: it reaches the session without a parameter."""
    aiouow.current_session().add(Tag(code=code, label="from a service"))


class TestTaskSession:
    async def test_bound_for_the_block_and_reached_from_below(self, pool: aiouow.Pool) -> None:
        async with aiouow.task_session(pool) as s:
            assert aiouow.current_session() is s
            await add_tag("a")
            await s.commit()
        assert s.session_state is SessionState.CLOSED  # closed on the way out
        with pytest.raises(SessionError, match="no aiouow session is bound"):
            aiouow.current_session()
        async with AsyncSession(pool) as check:
            assert [t.code for t in await check.all(Tag)] == ["a"]

    async def test_nesting_restores_the_outer_one(self, pool: aiouow.Pool) -> None:
        async with aiouow.task_session(pool) as outer:
            async with aiouow.task_session(pool, autoflush=False) as inner:
                assert aiouow.current_session() is inner and not inner.autoflush
            assert aiouow.current_session() is outer

    async def test_a_child_task_does_not_share_it_silently(self, pool: aiouow.Pool) -> None:
        async with aiouow.task_session(pool):

            async def child() -> None:
                aiouow.current_session()

            task = asyncio.create_task(child(), name="worker-1")
            with pytest.raises(SessionError, match=r"belongs to task 'Task-\d+', not to this one \('worker-1'\)"):
                await task
            with pytest.raises(SessionError, match="fork"):
                await asyncio.gather(child())

    async def test_fork_gives_a_child_task_its_own_session(self, pool: aiouow.Pool) -> None:
        async with aiouow.task_session(pool, n_plus_one="ignore") as s:

            async def child(code: str) -> AsyncSession:
                async with s.fork() as mine:
                    assert aiouow.current_session() is mine and mine is not s
                    await add_tag(code)
                    await mine.commit()
                    return mine

            forks = await asyncio.gather(child("x"), child("y"))
            assert forks[0] is not forks[1] and all(f.session_state is SessionState.CLOSED for f in forks)
            assert sorted(t.code for t in await s.all(Tag)) == ["x", "y"]  # committed by the forks


class TestWebIntegrations:
    async def test_starlette_binds_the_requests_session(self, pool: aiouow.Pool) -> None:
        seen: list[bool] = []

        async def endpoint(request: Request) -> JSONResponse:
            await add_tag("web")
            seen.append(aiouow.current_session() is starlette_integration.get_session(request))
            return JSONResponse({"ok": True}, status_code=201)

        app = Starlette(
            routes=[Route("/", endpoint, methods=["POST"])],
            middleware=[Middleware(starlette_integration.SessionMiddleware, pool=pool)],
        )
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            assert (await client.post("/")).status_code == 201
        assert seen == [True]
        async with AsyncSession(pool) as check:
            assert [t.code for t in await check.all(Tag)] == ["web"]  # committed by the middleware
        with pytest.raises(SessionError, match="no aiouow session is bound"):
            aiouow.current_session()

    async def test_aiohttp_binds_the_requests_session(self, pool: aiouow.Pool) -> None:
        seen: list[bool] = []

        async def handler(request: web.Request) -> web.Response:
            await add_tag("aio")
            seen.append(aiouow.current_session() is aiohttp_integration.get_session(request))
            return web.json_response({"ok": True}, status=201)

        app = web.Application()
        app.router.add_post("/", handler)
        aiohttp_integration.setup(app, pool)
        async with TestClient(TestServer(app)) as client:
            assert (await client.post("/")).status == 201
        assert seen == [True]
        async with AsyncSession(pool) as check:
            assert [t.code for t in await check.all(Tag)] == ["aio"]
