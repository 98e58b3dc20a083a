"""A small notes service on aiohttp and aiouow: list, create, get, update, delete.

Run it with ``python examples/aiohttp_app.py`` (needs ``pip install aiouow[aiohttp]``) and try it:

```
curl -X POST localhost:8080/notes -d '{"title": "milk", "body": "2 litres"}'
curl localhost:8080/notes
curl -X PATCH localhost:8080/notes/1 -d '{"done": true}'
curl -X DELETE localhost:8080/notes/1
```

The database is ``sqlite:///notes.db`` in the current directory unless ``AIOUOW_URL`` says
otherwise (``AIOUOW_URL=postgresql://user@host/db``). Each request gets one session from
the integration, committed before the response starts: no handler calls ``commit()``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from typing import Any

from aiohttp import web

import aiouow
from aiouow import Entity, field, select
from aiouow.integrations.aiohttp import get_session, setup

URL = os.environ.get("AIOUOW_URL", "sqlite:///notes.db")
POOL = web.AppKey("pool", aiouow.Pool)


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


async def fields_of(request: web.Request, *, required: bool) -> dict[str, Any]:
    """The note fields of a JSON body, checked; 422 when something is wrong."""
    try:
        data = await request.json()
    except ValueError:
        raise web.HTTPUnprocessableEntity(text="the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise web.HTTPUnprocessableEntity(text="the body must be a JSON object")
    types: dict[str, type] = {"title": str, "body": str, "done": bool}
    out: dict[str, Any] = {}
    for name, value in data.items():
        if name not in types or not isinstance(value, types[name]):
            raise web.HTTPUnprocessableEntity(text=f"unexpected field or type: {name}")
        out[name] = value
    if required and not out.get("title"):
        raise web.HTTPUnprocessableEntity(text="a note needs a title")
    return out


async def note_or_404(request: web.Request) -> Note:
    try:
        note_id = int(request.match_info["note_id"])
    except ValueError:
        raise web.HTTPNotFound(text="no such note") from None
    note = await get_session(request).get(Note, note_id)
    if note is None:
        raise web.HTTPNotFound(text="no such note")
    return note


async def list_notes(request: web.Request) -> web.StreamResponse:
    stmt = select(Note).order_by(Note.id)
    if "done" in request.query:
        stmt = stmt.where(Note.done == (request.query["done"] == "true"))
    notes = await get_session(request).scalars(stmt)
    return web.json_response([as_json(n) for n in notes])


async def create_note(request: web.Request) -> web.StreamResponse:
    s = get_session(request)
    note = Note(**await fields_of(request, required=True))
    s.add(note)
    try:
        await s.flush()  # to learn the new id; a duplicate title shows up here
    except aiouow.UniqueViolationError:
        return web.json_response({"error": f"a note titled {note.title!r} exists"}, status=409)
    return web.json_response(as_json(note), status=201, headers={"Location": f"/notes/{note.id}"})


async def show_note(request: web.Request) -> web.StreamResponse:
    return web.json_response(as_json(await note_or_404(request)))


async def update_note(request: web.Request) -> web.StreamResponse:
    note = await note_or_404(request)
    for name, value in (await fields_of(request, required=False)).items():
        setattr(note, name, value)
    # Not flushed here: the integration's commit writes the change before this response starts,
    # and answers 409 instead if the new title is taken.
    return web.json_response(as_json(note))


async def delete_note(request: web.Request) -> web.StreamResponse:
    get_session(request).delete(await note_or_404(request))
    return web.Response(status=204)


async def health(request: web.Request) -> web.StreamResponse:
    """The pool's connections; this request never takes one (it does not ask for a session)."""
    stats = request.app[POOL].stats()
    return web.json_response({"pool": {"size": stats.size, "idle": stats.idle, "in_use": stats.in_use}})


async def open_pool(app: web.Application) -> None:
    pool = app[POOL] = await aiouow.create_pool(URL)
    await pool.create_all(Note)


async def close_pool(app: web.Application) -> None:
    await app[POOL].close()


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/notes", list_notes)
    app.router.add_post("/notes", create_note)
    app.router.add_get("/notes/{note_id}", show_note)
    app.router.add_patch("/notes/{note_id}", update_note)
    app.router.add_delete("/notes/{note_id}", delete_note)
    app.router.add_get("/health", health)
    app.on_startup.append(open_pool)
    app.on_cleanup.append(close_pool)
    # The pool is opened at startup, after setup() runs: hand it a function.
    setup(app, lambda: app[POOL])
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="A notes service on aiohttp and aiouow.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    web.run_app(make_app(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
