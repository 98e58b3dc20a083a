"""The notes workload of the web load test: the Starlette notes service (``examples/starlette_app.py``)
and its SQLAlchemy twin (``benchmarks/web_sqlalchemy_app.py``).

Each worker creates notes, reads them back and updates them: 2 creates, 5 gets and 3 updates in
every 10 requests. At the end, ``GET /notes`` must list exactly every worker's notes, with their
last values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .web_client import Client, LoadError, expect

#: Per 10 requests of a worker: 2 creates, 5 gets, 3 updates (a worker starts with a create).
PATTERN = ("create", "get", "update", "get", "get", "create", "update", "get", "update", "get")
TABLES = ("notes",)
SERVICES = (
    ("aiouow", "aiouow (Starlette, SessionMiddleware)", ("examples/starlette_app.py", "--no-access-log")),
    ("sqlalchemy", "SQLAlchemy AsyncSession (Starlette)", ("-m", "benchmarks.web_sqlalchemy_app", "--no-access-log")),
)


@dataclass(slots=True)
class Worker:
    """One of the concurrent clients: its notes, as it expects the service to hold them."""

    name: str
    notes: dict[int, dict[str, Any]] = field(default_factory=dict)
    created: int = 0
    step: int = 0


async def one_request(client: Client, worker: Worker, round_no: int) -> None:
    op = PATTERN[worker.step % len(PATTERN)]
    worker.step += 1
    ids = sorted(worker.notes)
    if op == "create":
        title = f"r{round_no}-{worker.name}-{worker.created}"
        worker.created += 1
        payload = {"title": title, "body": "new"}
        response = await client.post("/notes", json=payload)
        note = expect(response, 201, {**payload, "done": False}, f"POST /notes {title}")
        if not isinstance(note.get("id"), int) or note["id"] in worker.notes:
            raise LoadError(f"POST /notes {title}: bad id {note.get('id')!r}")
        worker.notes[note["id"]] = {"id": note["id"], "title": title, "body": "new", "done": False}
    elif op == "get":
        note_id = ids[worker.step % len(ids)]
        response = await client.get(f"/notes/{note_id}")
        expect(response, 200, worker.notes[note_id], f"GET /notes/{note_id}")
    else:
        note_id = ids[(worker.step * 7) % len(ids)]
        change = {"body": f"v{worker.step}", "done": worker.step % 2 == 0}
        response = await client.patch(f"/notes/{note_id}", json=change)
        worker.notes[note_id] = {**worker.notes[note_id], **change}
        expect(response, 200, worker.notes[note_id], f"PATCH /notes/{note_id}")


async def check_state(client: Client, workers_by_round: list[list[Worker]]) -> str:
    """Every note every worker made, with its last values, and no other note."""
    expected = {n["id"]: n for ws in workers_by_round for w in ws for n in w.notes.values()}
    response = await client.get("/notes")
    if response.status_code != 200:
        raise LoadError(f"GET /notes: expected 200, got {response.status_code}")
    actual = {n["id"]: {k: n[k] for k in ("id", "title", "body", "done")} for n in response.json()}
    if actual != expected:
        missing = sorted(expected.keys() - actual.keys())[:5]
        extra = sorted(actual.keys() - expected.keys())[:5]
        wrong = [i for i in expected.keys() & actual.keys() if expected[i] != actual[i]][:5]
        raise LoadError(f"final state differs: missing {missing}, unexpected {extra}, wrong values {wrong}")
    return f"{len(actual)} notes as expected"
