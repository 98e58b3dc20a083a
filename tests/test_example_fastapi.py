"""examples/fastapi_app.py, the heroes API, driven as its users would test it: Starlette's TestClient,
the pool opened in the application's lifespan, everything rolled back (aiouow.testing), both dialects."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from .conftest import url_for

ROOT = Path(__file__).resolve().parent.parent


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fastapi_app_example", ROOT / "examples" / "fastapi_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (pydantic resolves the entities' annotations through it)
    spec.loader.exec_module(module)
    return module


example = load_example()


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request: pytest.FixtureRequest, tmp_path: Path, aiouow_rollback: None) -> Iterator[TestClient]:
    url = asyncio.run(url_for(request.param, tmp_path))
    with TestClient(example.create_app(url)) as client:
        yield client
        assert client.get("/health").json()["pool"]["in_use"] == 0  # no request left a connection behind


def post(client: TestClient, path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    data: dict[str, Any] = response.json()
    return data


def preventers(client: TestClient) -> dict[str, Any]:
    return post(client, "/teams", {"name": "Preventers", "headquarters": "Sharp Tower"})


class TestTeamsAndHeroes:
    def test_create_and_show_with_relationships(self, client: TestClient) -> None:
        team = preventers(client)
        assert team == {"id": team["id"], "name": "Preventers", "headquarters": "Sharp Tower", "heroes": []}
        hero = post(client, "/heroes", {"name": "Deadpond", "secret_name": "Dive Wilson", "team_id": team["id"]})
        assert hero["id"] > 0 and hero["age"] is None and "team" not in hero  # not loaded: left out
        shown = client.get(f"/heroes/{hero['id']}").json()
        assert shown["team"] == {"id": team["id"], "name": "Preventers", "headquarters": "Sharp Tower"}
        assert shown["powers"] == []
        assert [h["name"] for h in client.get(f"/teams/{team['id']}").json()["heroes"]] == ["Deadpond"]

    def test_pagination(self, client: TestClient) -> None:
        for n in range(7):
            post(client, "/heroes", {"name": f"hero {n}", "secret_name": "s", "age": 20 + n})
        page = client.get("/heroes", params={"offset": 2, "limit": 3}).json()
        assert [h["name"] for h in page] == ["hero 2", "hero 3", "hero 4"]
        assert all(h["team"] is None for h in page)  # loaded, and empty
        assert [h["age"] for h in client.get("/heroes", params={"min_age": 25}).json()] == [25, 26]
        assert client.get("/heroes", params={"limit": 101}).status_code == 422
        assert client.get("/heroes", params={"offset": -1}).status_code == 422

    def test_patch_changes_only_what_was_sent(self, client: TestClient) -> None:
        team = preventers(client)
        hero = post(client, "/heroes", {"name": "Rusty-Man", "secret_name": "Tommy Sharp", "age": 48})
        patched = client.patch(f"/heroes/{hero['id']}", json={"age": 49, "team_id": team["id"]})
        assert patched.status_code == 200, patched.text
        fields = ("id", "name", "secret_name", "age", "team_id")
        assert {k: patched.json()[k] for k in fields} == {k: hero[k] for k in fields} | {
            "age": 49,
            "team_id": team["id"],
        }
        shown = client.get(f"/heroes/{hero['id']}").json()
        assert (shown["age"], shown["secret_name"], shown["team"]["name"]) == (49, "Tommy Sharp", "Preventers")
        assert client.patch(f"/heroes/{hero['id']}", json={"age": None}).json()["age"] is None

    def test_patch_refusals(self, client: TestClient) -> None:
        hero = post(client, "/heroes", {"name": "Rusty-Man", "secret_name": "Tommy Sharp"})
        unknown = client.patch(f"/heroes/{hero['id']}", json={"secert_name": "typo"})
        assert unknown.status_code == 422 and "secert_name" in unknown.text
        null_name = client.patch(f"/heroes/{hero['id']}", json={"name": None})  # NOT NULL: nothing written
        assert null_name.status_code == 422 and "name" in null_name.text
        assert client.patch("/heroes/999999", json={"age": 3}).status_code == 404
        assert client.get(f"/heroes/{hero['id']}").json()["name"] == "Rusty-Man"

    def test_conflicts_and_missing_rows(self, client: TestClient) -> None:
        preventers(client)
        duplicate = client.post("/teams", json={"name": "Preventers", "headquarters": "elsewhere"})
        assert duplicate.status_code == 409 and "Preventers" not in duplicate.text  # no row data leaks
        no_team = client.post("/heroes", json={"name": "X", "secret_name": "Y", "team_id": 999999})
        assert no_team.status_code == 409
        assert client.get("/heroes/999999").status_code == 404
        assert client.get("/teams/999999").json() == {"error": "not found", "detail": "no such Team"}
        bad = client.post("/heroes", json={"name": "X", "secret_name": "Y", "age": "old"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "age"]
        assert client.get("/heroes").json() == []  # none of it was written

    def test_deleting_a_team_keeps_its_heroes(self, client: TestClient) -> None:
        team = preventers(client)
        hero = post(client, "/heroes", {"name": "Deadpond", "secret_name": "Dive Wilson", "team_id": team["id"]})
        assert client.delete(f"/teams/{team['id']}").status_code == 204
        assert client.get(f"/teams/{team['id']}").status_code == 404
        shown = client.get(f"/heroes/{hero['id']}").json()
        assert shown["team_id"] is None and shown["team"] is None
        assert client.delete(f"/heroes/{hero['id']}").status_code == 204
        assert client.get("/heroes").json() == []


class TestPowers:
    def test_grant_and_revoke(self, client: TestClient) -> None:
        hero = post(client, "/heroes", {"name": "Deadpond", "secret_name": "Dive Wilson"})
        regen = post(client, "/powers", {"name": "regeneration"})
        wit = post(client, "/powers", {"name": "wit"})
        for power in (regen, wit, regen):  # granting one again changes nothing
            assert client.put(f"/heroes/{hero['id']}/powers/{power['id']}").status_code == 200
        shown = client.get(f"/heroes/{hero['id']}").json()
        assert sorted(p["name"] for p in shown["powers"]) == ["regeneration", "wit"]
        revoked = client.delete(f"/heroes/{hero['id']}/powers/{regen['id']}").json()
        assert [p["name"] for p in revoked["powers"]] == ["wit"]
        assert [p["name"] for p in client.get(f"/heroes/{hero['id']}").json()["powers"]] == ["wit"]
        assert client.put(f"/heroes/{hero['id']}/powers/999999").status_code == 404
        assert [p["name"] for p in client.get("/powers").json()] == ["regeneration", "wit"]

    def test_deleting_a_hero_deletes_its_links(self, client: TestClient) -> None:
        hero = post(client, "/heroes", {"name": "Deadpond", "secret_name": "Dive Wilson"})
        regen = post(client, "/powers", {"name": "regeneration"})
        client.put(f"/heroes/{hero['id']}/powers/{regen['id']}")
        assert client.delete(f"/heroes/{hero['id']}").status_code == 204
        assert [p["name"] for p in client.get("/powers").json()] == ["regeneration"]


def test_each_test_starts_from_an_empty_database(client: TestClient) -> None:
    assert client.get("/teams").json() == [] and client.get("/heroes").json() == []
    preventers(client)


def test_the_openapi_schema_is_complete(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths) >= {"/teams", "/teams/{team_id}", "/heroes", "/heroes/{hero_id}", "/powers"}
    hero_in = schema["components"]["schemas"]["HeroInput"]
    assert "id" not in hero_in["properties"] and set(hero_in["required"]) == {"name", "secret_name"}
    shown = paths["/heroes/{hero_id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert shown["properties"]["id"]["readOnly"] is True
    assert {"team", "powers"} <= set(shown["properties"])
