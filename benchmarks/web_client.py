"""The load test's HTTP client, and what its workloads share (the error a wrong response raises, the check).

The client is aiohttp's: httpx, measured here against the FastAPI example's ``GET /health`` with 50
requests in flight, managed about 300 requests per second where aiohttp's managed about 4,900, so
with httpx the load test measured its own client, not the services. `Client` gives the workloads
the few calls they make, answering with a `Reply` read in full.
"""

from __future__ import annotations

import json as jsonlib
from dataclasses import dataclass
from typing import Any

import aiohttp


class LoadError(Exception):
    """A response, the final state or the pool was not what it must be."""


@dataclass(frozen=True, slots=True)
class Reply:
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode()

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class Client:
    """An aiohttp session on one service, at most ``concurrency`` connections (kept alive 2 s: uvicorn
    closes a connection idle for 5 s, and reusing one idle nearly that long races with the close)."""

    def __init__(self, base_url: str, concurrency: int) -> None:
        connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=2.0)
        self._session = aiohttp.ClientSession(base_url, connector=connector, timeout=aiohttp.ClientTimeout(total=30))

    async def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Reply:
        async with self._session.request(method, path, json=json, params=params) as response:
            return Reply(response.status, await response.read())

    async def get(self, path: str, *, params: dict[str, Any] | None = None) -> Reply:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, *, json: Any = None) -> Reply:
        return await self.request("POST", path, json=json)

    async def patch(self, path: str, *, json: Any = None) -> Reply:
        return await self.request("PATCH", path, json=json)

    async def put(self, path: str, *, json: Any = None) -> Reply:
        return await self.request("PUT", path, json=json)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()


#: What a failed request raises (a refused or reset connection, a timeout).
TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)


def expect(response: Reply, status: int, body: dict[str, Any] | None, what: str) -> Any:
    """The response's JSON, after checking its status and (when given) the values of ``body``'s keys."""
    if response.status_code != status:
        raise LoadError(f"{what}: expected {status}, got {response.status_code}: {response.text[:200]}")
    if body is None:
        return response.json() if response.content else None
    data: dict[str, Any] = response.json()
    got = {k: data.get(k) for k in body}
    if got != body:
        raise LoadError(f"{what}: expected {body}, got {got}")
    return data
