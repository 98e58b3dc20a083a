"""A small notes service on Starlette and aiouow: list, create, get, update, delete.

Run it with ``python examples/starlette_app.py`` (needs ``pip install aiouow[starlette] uvicorn``)
and try it:

```
curl -X POST localhost:8000/notes -d '{"title": "milk", "body": "2 litres"}'
curl localhost:8000/notes
curl -X PATCH localhost:8000/notes/1 -d '{"done": true}'
curl -X DELETE localhost:8000/notes/1
```

The database is ``sqlite:///notes.db`` in the current directory unless ``AIOUOW_URL`` says
otherwise (``AIOUOW_URL=postgresql://user@host/db``). Each request gets one session from
`SessionMiddleware`, committed before the response starts: no handler calls ``commit()``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import aiouow
from aiouow import Entity, field, select
from aiouow.integrations.starlette import SessionMiddleware, get_session

URL = os.environ.get("AIOUOW_URL", "sqlite:///notes.db")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Note(Entity, table="notes"):
    id: int = field(primary_key=True)
    title: str = field(unique=True)
    body: str = ""
    done: bool = False
    created: dt.datetime = field(default_factory=utcnow)


def as_json(note: Note) -> dict[str, Any]:
    return {"id": note.id, "title": note.title, "body": note.body, "done": note.done, "created": str(note.created)}


async def fields_of(request: Request, *, required: bool) -> dict[str, Any]:
    """The note fields of a JSON body, checked; 422 when something is wrong."""
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


async def note_or_404(request: Request) -> Note:
    note = await get_session(request).get(Note, request.path_params["note_id"])
    if note is None:
        raise HTTPException(404, "no such note")
    return note


async def list_notes(request: Request) -> Response:
    stmt = select(Note).order_by(Note.id)
    if "done" in request.query_params:
        stmt = stmt.where(Note.done == (request.query_params["done"] == "true"))
    notes = await get_session(request).scalars(stmt)
    return JSONResponse([as_json(n) for n in notes])


async def create_note(request: Request) -> Response:
    s = get_session(request)
    note = Note(**await fields_of(request, required=True))
    s.add(note)
    try:
        await s.flush()  # to learn the new id; a duplicate title shows up here
    except aiouow.UniqueViolationError:
        return JSONResponse({"error": f"a note titled {note.title!r} exists"}, status_code=409)
    return JSONResponse(as_json(note), status_code=201, headers={"location": f"/notes/{note.id}"})


async def show_note(request: Request) -> Response:
    return JSONResponse(as_json(await note_or_404(request)))


async def update_note(request: Request) -> Response:
    note = await note_or_404(request)
    for name, value in (await fields_of(request, required=False)).items():
        setattr(note, name, value)
    # Not flushed here: the middleware's commit writes the change before this response starts,
    # and answers 409 instead if the new title is taken.
    return JSONResponse(as_json(note))


async def delete_note(request: Request) -> Response:
    get_session(request).delete(await note_or_404(request))
    return Response(status_code=204)


async def health(request: Request) -> Response:
    """The pool's connections; this request never takes one (it does not ask for a session)."""
    stats = current_pool().stats()
    return JSONResponse({"pool": {"size": stats.size, "idle": stats.idle, "in_use": stats.in_use}})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with aiouow.create_pool(URL) as pool:
        await pool.create_all(Note)
        app.state.pool = pool
        yield


def current_pool() -> aiouow.Pool:
    """The pool the lifespan opened (the middleware is made before it runs, so it asks for it here)."""
    pool: aiouow.Pool = app.state.pool
    return pool


app = Starlette(
    routes=[
        Route("/notes", list_notes, methods=["GET"]),
        Route("/notes", create_note, methods=["POST"]),
        Route("/notes/{note_id:int}", show_note, methods=["GET"]),
        Route("/notes/{note_id:int}", update_note, methods=["PATCH"]),
        Route("/notes/{note_id:int}", delete_note, methods=["DELETE"]),
        Route("/health", health),
    ],
    middleware=[Middleware(SessionMiddleware, pool=current_pool)],
    lifespan=lifespan,
)


def main() -> None:
    parser = argparse.ArgumentParser(description="A notes service on Starlette and aiouow.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-access-log", action="store_true", help="do not log each request")
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, access_log=not args.no_access_log)


if __name__ == "__main__":
    main()
