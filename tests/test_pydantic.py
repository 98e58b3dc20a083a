"""Entity classes as pydantic and FastAPI types: request bodies (validated, 422), response models and
return annotations, JSON schema with read-only generated keys, loaded relationships nested, unloaded
ones left out; a separate model reading an unloaded relationship fails with NotLoadedError."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

import aiouow
from aiouow import AsyncSession, select
from aiouow.integrations.starlette import SessionMiddleware, get_session, install_error_handlers

from .models import User
from .relmodels import REL_ALL, Hero, Team


class TestTypeAdapter:
    def test_validation_builds_a_transient_entity(self) -> None:
        hero = TypeAdapter(Hero).validate_python({"name": "Deadpond"})
        assert isinstance(hero, Hero) and hero.name == "Deadpond" and hero.id is None
        user = TypeAdapter(User).validate_json('{"name": "ann", "email": "a@example.org"}')
        assert user.active is True  # the entity's own default for what the client did not send

    def test_bad_input_is_a_validation_error_naming_the_field(self) -> None:
        with pytest.raises(ValidationError) as info:
            TypeAdapter(Hero).validate_json('{"name": 5}')
        (error,) = info.value.errors()
        assert error["loc"] == ("name",) and error["type"] == "string_type"

    def test_an_entity_object_passes_as_it_is(self) -> None:
        hero = Hero(name="x")
        assert TypeAdapter(Hero).validate_python(hero) is hero

    def test_serialization_nests_loaded_relationships_and_ends_cycles(self) -> None:
        team = Team(name="Z", heroes=[Hero(name="Deadpond")])
        out = TypeAdapter(Team).dump_python(team, mode="json")
        assert out == {
            "id": None,
            "name": "Z",
            "heroes": [{"id": None, "name": "Deadpond", "team_id": None, "powers": [], "passport": None}],
        }  # (the hero's `team` is the way back up: left out)

    def test_dataclass_tools_see_the_columns_only(self) -> None:
        """(What makes FastAPI read an entity parameter as the body: it looks like a dataclass.)"""
        hero = Hero(name="x")
        assert dataclasses.is_dataclass(Hero)
        assert [f.name for f in dataclasses.fields(Hero)] == ["id", "name", "team_id"]
        assert dataclasses.asdict(hero) == aiouow.asdict(hero) == {"id": None, "name": "x", "team_id": None}

    def test_json_schema_marks_the_generated_key_read_only(self) -> None:
        out = TypeAdapter(Hero).json_schema(mode="serialization")
        assert out["properties"]["id"]["readOnly"] is True and out["title"] == "Hero"
        assert "team" not in out["required"]
        body = TypeAdapter(Hero).json_schema(mode="validation")
        assert "id" not in body["properties"] and body["required"] == ["name"]


Session = Annotated[AsyncSession, Depends(get_session)]


class HeroPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    name: str
    team: dict[str, Any] | None


@pytest.fixture
async def app(pool: aiouow.Pool) -> AsyncIterator[FastAPI]:
    await pool.drop_all(*REL_ALL)
    await pool.create_all(*REL_ALL)
    api = FastAPI()
    api.add_middleware(SessionMiddleware, pool=pool)
    install_error_handlers(api)

    @api.post("/heroes", status_code=201)
    async def create_hero(hero: Hero, s: Session) -> Hero:
        s.add(hero)
        await s.flush()
        return hero

    @api.get("/heroes/{hero_id}", response_model=Hero)
    async def show_hero(hero_id: int, s: Session) -> Hero:
        return await s.get_one(Hero, hero_id)

    @api.get("/teams/{team_id}")
    async def show_team(team_id: int, s: Session) -> Team:
        return await s.one(select(Team).where(Team.id == team_id).load(Team.heroes))

    @api.get("/public/{hero_id}")
    async def public_hero(hero_id: int, s: Session) -> HeroPublic:
        return HeroPublic.model_validate(await s.get_one(Hero, hero_id))

    yield api
    await pool.drop_all(*REL_ALL)


async def call(app: FastAPI, method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path, **kwargs)


class TestFastAPI:
    async def test_body_response_and_nesting(self, app: FastAPI, pool: aiouow.Pool) -> None:
        created = await call(app, "POST", "/heroes", json={"name": "Deadpond"})
        assert created.status_code == 201
        hero = created.json()
        assert hero["name"] == "Deadpond" and isinstance(hero["id"], int)
        assert hero["team"] is None and hero["powers"] == [] and hero["passport"] is None  # new: loaded, empty
        async with AsyncSession(pool) as s:
            team = Team(name="Z")
            s.add(team)
            await s.flush()
            (await s.get_one(Hero, hero["id"])).team_id = team.id
            await s.commit()
        shown = (await call(app, "GET", f"/heroes/{hero['id']}")).json()
        assert shown == {"id": hero["id"], "name": "Deadpond", "team_id": team.id}  # unloaded: left out
        nested = (await call(app, "GET", f"/teams/{team.id}")).json()
        assert nested["heroes"][0]["name"] == "Deadpond" and "team" not in nested["heroes"][0]

    async def test_a_bad_body_is_a_422_and_a_missing_row_a_404(self, app: FastAPI) -> None:
        bad = await call(app, "POST", "/heroes", json={"name": 5})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "name"]
        assert (await call(app, "GET", "/heroes/12345")).status_code == 404

    async def test_a_separate_model_reading_an_unloaded_relationship_fails(
        self, app: FastAPI, pool: aiouow.Pool
    ) -> None:
        created = (await call(app, "POST", "/heroes", json={"name": "Deadpond"})).json()
        answer = await call(app, "GET", f"/public/{created['id']}")
        assert answer.status_code == 500  # never a silent null, never IO
        async with AsyncSession(pool) as s:
            hero = await s.get_one(Hero, created["id"])
            with pytest.raises(ValidationError, match=r"NotLoadedError: Hero\.team .* is not loaded"):
                HeroPublic.model_validate(hero)

    def test_the_openapi_schema_is_built(self, app: FastAPI) -> None:
        schema = app.openapi()
        assert "Hero" in str(schema["components"]["schemas"])
