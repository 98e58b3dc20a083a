"""The heroes workload of the web load test: the FastAPI heroes API (``examples/fastapi_app.py``) and
its SQLAlchemy twin (``benchmarks/web_sqlalchemy_heroes.py``).

Each worker first creates a team and a power of its own (two requests); then, in every 10 requests: 2 hero
creates (on its team), 3 reads of one hero with its team and powers nested, 2 partial updates
(PATCH), 2 pages of the hero list (20 heroes with their teams) and 1 grant of its power to one of
its heroes (many-to-many). Every response is checked against what the worker expects; at the end
the whole hero list, paged, must hold exactly every worker's heroes with their last values, and
every hero's powers must be those granted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .web_client import Client, LoadError, expect

PATTERN = ("create", "get", "patch", "list", "create", "grant", "get", "patch", "get", "list")
TABLES = ("hero_powers", "heroes", "powers", "teams")
SERVICES = (
    ("aiouow", "aiouow (FastAPI, the example)", ("examples/fastapi_app.py",)),
    ("sqlalchemy", "SQLAlchemy AsyncSession (FastAPI)", ("-m", "benchmarks.web_sqlalchemy_heroes")),
)
HERO_FIELDS = ("id", "name", "secret_name", "age", "team_id")


@dataclass(slots=True)
class Worker:
    """One of the concurrent clients: its team, its power and its heroes, as it expects them."""

    name: str
    team: dict[str, Any] | None = None
    power: dict[str, Any] | None = None
    heroes: dict[int, dict[str, Any]] = field(default_factory=dict)
    powers: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    created: int = 0
    step: int = 0


def fields_of(hero: dict[str, Any]) -> dict[str, Any]:
    return {k: hero[k] for k in HERO_FIELDS}


async def one_request(client: Client, worker: Worker, round_no: int) -> None:
    if worker.team is None:  # a worker's first request
        team = {"name": f"team r{round_no}-{worker.name}", "headquarters": f"{worker.name} tower"}
        made = expect(await client.post("/teams", json=team), 201, team, "POST /teams")
        worker.team = {k: made[k] for k in ("id", "name", "headquarters")}
        return
    if worker.power is None:  # and its second
        power = {"name": f"power r{round_no}-{worker.name}"}
        made = expect(await client.post("/powers", json=power), 201, power, "POST /powers")
        worker.power = {k: made[k] for k in ("id", "name")}
        return
    op = PATTERN[worker.step % len(PATTERN)]
    worker.step += 1
    ids = sorted(worker.heroes)
    if op == "create" or not ids:
        name = f"hero r{round_no}-{worker.name}-{worker.created}"
        worker.created += 1
        body = {"name": name, "secret_name": f"secret {name}", "age": worker.created % 90, "team_id": worker.team["id"]}
        hero = expect(await client.post("/heroes", json=body), 201, body, f"POST /heroes {name}")
        if not isinstance(hero.get("id"), int) or hero["id"] in worker.heroes:
            raise LoadError(f"POST /heroes {name}: bad id {hero.get('id')!r}")
        worker.heroes[hero["id"]] = fields_of(hero)
        worker.powers[hero["id"]] = []
    elif op == "get":
        hero_id = ids[worker.step % len(ids)]
        want = {**worker.heroes[hero_id], "team": worker.team, "powers": worker.powers[hero_id]}
        expect(await client.get(f"/heroes/{hero_id}"), 200, want, f"GET /heroes/{hero_id}")
    elif op == "patch":
        hero_id = ids[(worker.step * 7) % len(ids)]
        change = {"age": worker.step % 97}
        worker.heroes[hero_id] = {**worker.heroes[hero_id], **change}
        response = await client.patch(f"/heroes/{hero_id}", json=change)
        expect(response, 200, worker.heroes[hero_id], f"PATCH /heroes/{hero_id}")
    elif op == "list":
        offset = (worker.step * 13) % 200
        page = expect(await client.get("/heroes", params={"offset": offset, "limit": 20}), 200, None, "GET /heroes")
        if len(page) > 20 or any("team" not in h for h in page) or page != sorted(page, key=lambda h: h["id"]):
            raise LoadError(f"GET /heroes?offset={offset}&limit=20: a wrong page: {str(page)[:200]}")
    else:  # grant
        hero_id = ids[(worker.step * 3) % len(ids)]
        if worker.power not in worker.powers[hero_id]:
            worker.powers[hero_id] = [*worker.powers[hero_id], worker.power]
        want = {**worker.heroes[hero_id], "powers": worker.powers[hero_id]}
        path = f"/heroes/{hero_id}/powers/{worker.power['id']}"
        expect(await client.put(path), 200, want, f"PUT {path}")


async def check_state(client: Client, workers_by_round: list[list[Worker]]) -> str:
    """Every hero every worker made, with its last values and its powers, and no other hero."""
    workers = [w for ws in workers_by_round for w in ws]
    expected = {hero_id: h for w in workers for hero_id, h in w.heroes.items()}
    actual: dict[int, dict[str, Any]] = {}
    offset = 0
    while True:
        page = expect(await client.get("/heroes", params={"offset": offset, "limit": 100}), 200, None, "GET /heroes")
        if not page:
            break
        actual.update((h["id"], fields_of(h)) for h in page)
        offset += len(page)
    if actual != expected:
        missing = sorted(expected.keys() - actual.keys())[:5]
        extra = sorted(actual.keys() - expected.keys())[:5]
        wrong = [i for i in expected.keys() & actual.keys() if expected[i] != actual[i]][:5]
        raise LoadError(f"final state differs: missing {missing}, unexpected {extra}, wrong values {wrong}")
    powers = {hero_id: p for w in workers for hero_id, p in w.powers.items()}
    ids = sorted(powers)
    for start in range(0, len(ids), 50):  # each hero's powers, 50 requests at a time

        async def check(hero_id: int) -> None:
            got = expect(await client.get(f"/heroes/{hero_id}"), 200, None, f"GET /heroes/{hero_id}")
            if got["powers"] != powers[hero_id]:
                raise LoadError(f"hero {hero_id}: powers {got['powers']}, expected {powers[hero_id]}")

        await asyncio.gather(*(check(i) for i in ids[start : start + 50]))
    granted = sum(len(p) for p in powers.values())
    return f"{len(actual)} heroes and {granted} grants as expected"
