"""The notes service of ``examples/starlette_app.py``, written with SQLAlchemy's AsyncSession instead.

Same routes, same JSON, same statuses, same table; the idiomatic SQLAlchemy way: a session per
handler (``async with maker() as s``), ``expire_on_commit=False``, an explicit ``commit()``
before the response is built. ``benchmarks/web_load.py`` runs it next to the aiouow example:

    AIOUOW_URL=sqlite:///notes.db python -m benchmarks.web_sqlalchemy_app --port 8001

The engine is configured as aiouow's pool is: at most 10 connections, and on SQLite the same
pragmas (WAL, ``synchronous=NORMAL``, ``busy_timeout=5000``, foreign keys on).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from sqlalchemy import Boolean, DateTime, Integer, Text, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

URL = os.environ.get("AIOUOW_URL", "sqlite:///notes.db")
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA busy_timeout = 5000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
)


def sqlalchemy_url(url: str) -> str:
    """An aiouow URL as SQLAlchemy's async drivers name it."""
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url.removeprefix("sqlite:")
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    raise SystemExit(f"cannot run on {url!r}: expected sqlite:///... or postgresql://...")


def make_engine(url: str) -> AsyncEngine:
    """An engine configured as aiouow's pool is: at most 10 connections, and on SQLite its pragmas."""
    engine = create_async_engine(sqlalchemy_url(url), pool_size=10, max_overflow=0)
    if url.startswith("sqlite"):

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, record: Any) -> None:
            cursor = dbapi_connection.cursor()
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
            cursor.close()

    return engine


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(Text, unique=True)
    body: Mapped[str] = mapped_column(Text, default="")
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def as_json(note: Note) -> dict[str, Any]:
    return {"id": note.id, "title": note.title, "body": note.body, "done": note.done, "created": str(note.created)}


async def fields_of(request: Request, *, required: bool) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise HTTPException(422, "the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise HTTPException(422, "the body must be a JSON object")
    types: dict[str, type] = {"title": str, "body": str, "done": bool}
    out: dict[str, Any] = {}
    for name, value in data.items():
        if name not in types or not isinstance(value, types[name]):
            raise HTTPException(422, f"unexpected field or type: {name}")
        out[name] = value
    if required and not out.get("title"):
        raise HTTPException(422, "a note needs a title")
    return out


class Service:
    def __init__(self) -> None:
        self.engine: AsyncEngine | None = None
        self.maker: async_sessionmaker[AsyncSession] | None = None

    def session(self) -> AsyncSession:
        assert self.maker is not None
        return self.maker()

    async def note_or_404(self, s: AsyncSession, request: Request) -> Note:
        note = await s.get(Note, request.path_params["note_id"])
        if note is None:
            raise HTTPException(404, "no such note")
        return note

    async def list_notes(self, request: Request) -> Response:
        stmt = select(Note).order_by(Note.id)
        if "done" in request.query_params:
            stmt = stmt.where(Note.done == (request.query_params["done"] == "true"))
        async with self.session() as s:
            notes = (await s.scalars(stmt)).all()
            return JSONResponse([as_json(n) for n in notes])

    async def create_note(self, request: Request) -> Response:
        fields = await fields_of(request, required=True)
        async with self.session() as s:
            note = Note(**{"body": "", "done": False, **fields})
            s.add(note)
            try:
                await s.flush()
            except IntegrityError:
                return JSONResponse({"error": f"a note titled {note.title!r} exists"}, status_code=409)
            await s.commit()
            return JSONResponse(as_json(note), status_code=201, headers={"location": f"/notes/{note.id}"})

    async def show_note(self, request: Request) -> Response:
        async with self.session() as s:
            return JSONResponse(as_json(await self.note_or_404(s, request)))

    async def update_note(self, request: Request) -> Response:
        async with self.session() as s:
            note = await self.note_or_404(s, request)
            for name, value in (await fields_of(request, required=False)).items():
                setattr(note, name, value)
            try:
                await s.commit()
            except IntegrityError:
                return JSONResponse({"error": "conflict"}, status_code=409)
            return JSONResponse(as_json(note))

    async def delete_note(self, request: Request) -> Response:
        async with self.session() as s:
            await s.delete(await self.note_or_404(s, request))
            await s.commit()
            return Response(status_code=204)

    async def health(self, request: Request) -> Response:
        assert self.engine is not None
        pool: Any = self.engine.pool
        return JSONResponse({"pool": {"size": pool.size(), "idle": pool.checkedin(), "in_use": pool.checkedout()}})

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        engine = make_engine(URL)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        self.engine = engine
        self.maker = async_sessionmaker(engine, expire_on_commit=False)
        try:
            yield
        finally:
            await engine.dispose()


service = Service()
app = Starlette(
    routes=[
        Route("/notes", service.list_notes, methods=["GET"]),
        Route("/notes", service.create_note, methods=["POST"]),
        Route("/notes/{note_id:int}", service.show_note, methods=["GET"]),
        Route("/notes/{note_id:int}", service.update_note, methods=["PATCH"]),
        Route("/notes/{note_id:int}", service.delete_note, methods=["DELETE"]),
        Route("/health", service.health),
    ],
    lifespan=service.lifespan,
)


def main() -> None:
    parser = argparse.ArgumentParser(description="The notes service with SQLAlchemy's AsyncSession.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--no-access-log", action="store_true", help="do not log each request")
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, access_log=not args.no_access_log)


if __name__ == "__main__":
    main()
