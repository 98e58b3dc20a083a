"""Setting up the integrations: a pool opened in the lifespan, and the errors that say what to do
when it is not."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import aiouow
from aiouow import ConfigurationError
from aiouow.integrations import aiohttp as aiohttp_integration
from aiouow.integrations import starlette as starlette_integration

from .models import Tag


async def count_tags(request: Request) -> JSONResponse:
    s = starlette_integration.get_session(request)
    return JSONResponse({"tags": await s.count(aiouow.select(Tag))})


def lifespan_app(url: str) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with aiouow.create_pool(url) as pool:
            await pool.create_all(Tag)
            app.state.pool = pool
            yield
            await pool.drop_all(Tag)

    app = Starlette(
        routes=[Route("/", count_tags)],
        middleware=[Middleware(starlette_integration.SessionMiddleware, pool=lambda: app.state.pool)],
        lifespan=lifespan,
    )
    return app


class TestLifespanPool:
    async def test_a_pool_opened_in_the_lifespan(self, tmp_path: Path) -> None:
        app = lifespan_app(f"sqlite:///{tmp_path}/app.db")
        async with app.router.lifespan_context(app):  # (what a server, or `with TestClient(app)`, runs)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                assert (await client.get("/")).json() == {"tags": 0}

    async def test_without_the_lifespan_the_error_says_what_to_do(self, tmp_path: Path) -> None:
        app = lifespan_app(f"sqlite:///{tmp_path}/app.db")
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            with pytest.raises(ConfigurationError, match=r"was the pool opened at startup\?.*TestClient\(app\)"):
                await client.get("/")


class TestMisconfiguredPool:
    def test_create_pool_not_awaited_is_named(self, tmp_path: Path) -> None:
        opener = aiouow.create_pool(f"sqlite:///{tmp_path}/x.db")
        with pytest.raises(ConfigurationError, match=r"create_pool\(\) was given without being awaited.*lifespan"):
            starlette_integration.SessionMiddleware(Starlette(), pool=opener)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="without being awaited"):
            aiohttp_integration.session_middleware(opener)  # type: ignore[arg-type]

    def test_something_else_is_named_with_the_fix(self) -> None:
        with pytest.raises(ConfigurationError, match="got str; open the pool when the application starts"):
            starlette_integration.SessionMiddleware(Starlette(), pool="sqlite:///x.db")  # type: ignore[arg-type]
