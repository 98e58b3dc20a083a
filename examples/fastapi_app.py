"""The heroes, teams and powers API on FastAPI and aiouow: SQLModel's tutorial application, complete.

Run it with one command (``pip install "aiouow[fastapi]"``; the database is an SQLite file,
``heroes.db``, unless ``AIOUOW_URL`` names another, e.g. ``postgresql://user@host/db``):

```
python examples/fastapi_app.py --port 8000
```

and try it (or open http://localhost:8000/docs):

```
curl --json '{"name": "Preventers", "headquarters": "Sharp Tower"}' localhost:8000/teams
curl --json '{"name": "Deadpond", "secret_name": "Dive Wilson", "team_id": 1}' localhost:8000/heroes
curl --json '{"name": "regeneration"}' localhost:8000/powers
curl -X PUT localhost:8000/heroes/1/powers/1
curl localhost:8000/heroes/1              # with its team and powers
curl 'localhost:8000/heroes?offset=0&limit=10'
curl -X PATCH --json '{"age": 48}' localhost:8000/heroes/1
curl -X DELETE localhost:8000/teams/1     # its heroes stay, without a team
```

Everything an entity needs is written once: the entity classes are the request bodies and the
response models. Each request gets one session (``SessionMiddleware``), committed before the
response starts; no handler commits. Errors are answered by ``install_error_handlers``: a hero or
team that does not exist is a 404, a duplicate name or an unknown ``team_id`` a 409, a bad value a
422, each naming the field or constraint. The tests are ``tests/test_example_fastapi.py``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import uvicorn
from fastapi import Depends, FastAPI, Query, Response
from pydantic import BaseModel, ConfigDict, Field

import aiouow
from aiouow import AsyncSession, Entity, field, relationship, select
from aiouow.integrations.starlette import SessionMiddleware, get_session, install_error_handlers

URL = os.environ.get("AIOUOW_URL", "sqlite:///heroes.db")


class Team(Entity, table="teams"):
    id: int = field(primary_key=True)
    name: str = field(unique=True)
    headquarters: str
    heroes: list[Hero] = relationship(back_populates="team")


class Hero(Entity, table="heroes"):
    id: int = field(primary_key=True)
    name: str = field(unique=True)
    secret_name: str
    age: int | None = field(default=None, index=True)
    team_id: int | None = field(default=None, foreign_key="teams.id", index=True, on_delete="set null")
    team: Team | None = relationship(back_populates="heroes")
    powers: list[Power] = relationship(link="HeroPower")


class Power(Entity, table="powers"):
    id: int = field(primary_key=True)
    name: str = field(unique=True)


class HeroPower(Entity, table="hero_powers"):
    """The link between heroes and powers (many-to-many)."""

    hero_id: int = field(primary_key=True, init=True, foreign_key="heroes.id", on_delete="cascade")
    power_id: int = field(primary_key=True, init=True, foreign_key="powers.id", on_delete="cascade")


ENTITIES = (Team, Hero, Power, HeroPower)


# -- the PATCH bodies: every field optional, and only those the client sent are applied -----------
class Patch(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a 422, not silently dropped


class TeamPatch(Patch):
    name: str | None = None
    headquarters: str | None = None


class HeroPatch(Patch):
    name: str | None = None
    secret_name: str | None = None
    age: int | None = None
    team_id: int | None = None


class PoolHealth(BaseModel):
    size: int = Field(description="connections open")
    idle: int
    in_use: int = Field(description="connections lent to requests now (0 when idle: none leaked)")


class Health(BaseModel):
    pool: PoolHealth


Session = Annotated[AsyncSession, Depends(get_session)]
Offset = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=100)]


def create_app(url: str = URL) -> FastAPI:
    """The application, on the database at ``url`` (its pool opened in the lifespan)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with aiouow.create_pool(url) as pool:
            await pool.create_all(*ENTITIES)
            app.state.pool = pool
            yield

    app = FastAPI(title="Heroes", lifespan=lifespan)
    app.add_middleware(SessionMiddleware, pool=lambda: app.state.pool)
    install_error_handlers(app)

    # -- teams ---------------------------------------------------------------------------------------
    @app.post("/teams", status_code=201)
    async def create_team(team: Team, s: Session) -> Team:
        s.add(team)
        await s.flush()  # team.id is set
        return team

    @app.get("/teams")
    async def list_teams(s: Session, offset: Offset = 0, limit: Limit = 100) -> list[Team]:
        return await s.scalars(select(Team).order_by(Team.id).offset(offset).limit(limit))

    @app.get("/teams/{team_id}")
    async def show_team(team_id: int, s: Session) -> Team:
        team = await s.get_one(Team, team_id)  # NotFoundError: a 404
        await s.load(team, Team.heroes)
        return team

    @app.patch("/teams/{team_id}")
    async def update_team(team_id: int, patch: TeamPatch, s: Session) -> Team:
        team = aiouow.update(await s.get_one(Team, team_id), patch.model_dump(exclude_unset=True))
        await s.flush()  # a duplicate name is a 409 here, before the response is built
        return team

    @app.delete("/teams/{team_id}", status_code=204)
    async def delete_team(team_id: int, s: Session) -> Response:
        s.delete(await s.get_one(Team, team_id))  # its heroes' team_id: NULL (on_delete)
        return Response(status_code=204)

    # -- heroes --------------------------------------------------------------------------------------
    @app.post("/heroes", status_code=201)
    async def create_hero(hero: Hero, s: Session) -> Hero:
        s.add(hero)
        await s.flush()  # an unknown team_id is a 409 (the foreign key), a duplicate name too
        return hero

    @app.get("/heroes")
    async def list_heroes(
        s: Session,
        offset: Offset = 0,
        limit: Limit = 100,
        min_age: Annotated[int | None, Query()] = None,
    ) -> list[Hero]:
        query = select(Hero).order_by(Hero.id).offset(offset).limit(limit).load(Hero.team)
        if min_age is not None:
            query = query.where(Hero.age >= min_age)  # (a nullable field: mypy needs aiouow.mypy)
        return await s.scalars(query)  # the heroes and their teams: two statements

    @app.get("/heroes/{hero_id}")
    async def show_hero(hero_id: int, s: Session) -> Hero:
        hero = await s.get_one(Hero, hero_id)
        await s.load(hero, Hero.team, Hero.powers)
        return hero

    @app.patch("/heroes/{hero_id}")
    async def update_hero(hero_id: int, patch: HeroPatch, s: Session) -> Hero:
        hero = aiouow.update(await s.get_one(Hero, hero_id), patch.model_dump(exclude_unset=True))
        await s.flush()
        return hero

    @app.delete("/heroes/{hero_id}", status_code=204)
    async def delete_hero(hero_id: int, s: Session) -> Response:
        s.delete(await s.get_one(Hero, hero_id))  # its link rows go with it (on_delete)
        return Response(status_code=204)

    # -- powers, and the heroes' powers (many-to-many) -------------------------------------------------
    @app.post("/powers", status_code=201)
    async def create_power(power: Power, s: Session) -> Power:
        s.add(power)
        await s.flush()
        return power

    @app.get("/powers")
    async def list_powers(s: Session) -> list[Power]:
        return await s.scalars(select(Power).order_by(Power.name))

    @app.put("/heroes/{hero_id}/powers/{power_id}")
    async def grant_power(hero_id: int, power_id: int, s: Session) -> Hero:
        hero = await s.get_one(Hero, hero_id)
        power = await s.get_one(Power, power_id)
        await s.load(hero, Hero.team, Hero.powers)
        if power not in hero.powers:  # (granting it again changes nothing)
            hero.powers.append(power)  # a link row, inserted at the commit
        return hero

    @app.delete("/heroes/{hero_id}/powers/{power_id}")
    async def revoke_power(hero_id: int, power_id: int, s: Session) -> Hero:
        hero = await s.get_one(Hero, hero_id)
        await s.load(hero, Hero.team, Hero.powers)
        hero.powers[:] = [p for p in hero.powers if p.id != power_id]  # its link row is deleted
        return hero

    # -- health ----------------------------------------------------------------------------------------
    @app.get("/health")
    async def health() -> Health:
        stats = app.state.pool.stats()
        return Health(pool=PoolHealth(size=stats.size, idle=stats.idle, in_use=stats.in_use))

    return app


app = create_app()

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
