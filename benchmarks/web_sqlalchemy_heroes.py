"""The heroes API of ``examples/fastapi_app.py``, written with SQLAlchemy 2's AsyncSession instead.

Same routes, same JSON, same statuses, same tables; written the way SQLModel's tutorial and
FastAPI's docs write it: a session per request from a dependency, ``expire_on_commit=False``, an
explicit ``commit()`` in each handler that writes, a pydantic model per public shape (built
``from_attributes``), ``selectinload`` for the relationships a response shows (async SQLAlchemy
cannot load lazily). ``benchmarks/web_load.py`` runs it next to the aiouow example:

    AIOUOW_URL=sqlite:///heroes.db python -m benchmarks.web_sqlalchemy_heroes --port 8001

The engine is configured as aiouow's pool is: at most 10 connections, and on SQLite the same
pragmas (``benchmarks/web_sqlalchemy_app.py``). uvicorn runs with the example's settings.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Column, ForeignKey, Integer, String, Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload

from .web_sqlalchemy_app import make_engine

URL = os.environ.get("AIOUOW_URL", "sqlite:///heroes.db")


class Base(DeclarativeBase):
    pass


hero_powers = Table(
    "hero_powers",
    Base.metadata,
    Column("hero_id", ForeignKey("heroes.id", ondelete="CASCADE"), primary_key=True),
    Column("power_id", ForeignKey("powers.id", ondelete="CASCADE"), primary_key=True),
)


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    headquarters: Mapped[str] = mapped_column(String)
    heroes: Mapped[list[Hero]] = relationship(back_populates="team", passive_deletes=True)


class Hero(Base):
    __tablename__ = "heroes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    secret_name: Mapped[str] = mapped_column(String)
    age: Mapped[int | None] = mapped_column(Integer, index=True, default=None)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True, default=None)
    team: Mapped[Team | None] = relationship(back_populates="heroes")
    powers: Mapped[list[Power]] = relationship(secondary=hero_powers, passive_deletes=True)


class Power(Base):
    __tablename__ = "powers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)


# -- the public shapes, one pydantic model each ----------------------------------------------------
class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class TeamCreate(BaseModel):
    name: str
    headquarters: str


class TeamPublic(Public):
    id: int
    name: str
    headquarters: str


class HeroCreate(BaseModel):
    name: str
    secret_name: str
    age: int | None = None
    team_id: int | None = None


class HeroPublic(Public):
    id: int
    name: str
    secret_name: str
    age: int | None
    team_id: int | None


class PowerCreate(BaseModel):
    name: str


class PowerPublic(Public):
    id: int
    name: str


class HeroWithTeam(HeroPublic):
    team: TeamPublic | None


class HeroFull(HeroWithTeam):
    powers: list[PowerPublic]


class TeamWithHeroes(TeamPublic):
    heroes: list[HeroPublic]


class Patch(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TeamPatch(Patch):
    name: str | None = None
    headquarters: str | None = None


class HeroPatch(Patch):
    name: str | None = None
    secret_name: str | None = None
    age: int | None = None
    team_id: int | None = None


maker: async_sessionmaker[AsyncSession] | None = None
engine_pool: Any = None


async def get_session() -> AsyncIterator[AsyncSession]:
    assert maker is not None
    async with maker() as s:
        yield s


Session = Annotated[AsyncSession, Depends(get_session)]
Offset = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=100)]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    global maker, engine_pool
    engine = make_engine(URL)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    engine_pool = engine.pool
    try:
        yield
    finally:
        await engine.dispose()


app = FastAPI(title="Heroes (SQLAlchemy)", lifespan=lifespan)


@app.exception_handler(IntegrityError)
async def conflict(request: Request, exc: IntegrityError) -> JSONResponse:
    return JSONResponse({"error": "conflict"}, status_code=409)


async def hero_or_404(s: AsyncSession, hero_id: int, *load: Any) -> Hero:
    hero = (await s.scalars(select(Hero).where(Hero.id == hero_id).options(*load))).one_or_none()
    if hero is None:
        raise HTTPException(404, "no such Hero")
    return hero


async def team_or_404(s: AsyncSession, team_id: int, *load: Any) -> Team:
    team = (await s.scalars(select(Team).where(Team.id == team_id).options(*load))).one_or_none()
    if team is None:
        raise HTTPException(404, "no such Team")
    return team


@app.post("/teams", status_code=201)
async def create_team(body: TeamCreate, s: Session) -> TeamWithHeroes:
    team = Team(**body.model_dump(), heroes=[])
    s.add(team)
    await s.commit()
    return TeamWithHeroes.model_validate(team)


@app.get("/teams")
async def list_teams(s: Session, offset: Offset = 0, limit: Limit = 100) -> list[TeamPublic]:
    teams = await s.scalars(select(Team).order_by(Team.id).offset(offset).limit(limit))
    return [TeamPublic.model_validate(t) for t in teams]


@app.get("/teams/{team_id}")
async def show_team(team_id: int, s: Session) -> TeamWithHeroes:
    return TeamWithHeroes.model_validate(await team_or_404(s, team_id, selectinload(Team.heroes)))


@app.patch("/teams/{team_id}")
async def update_team(team_id: int, patch: TeamPatch, s: Session) -> TeamPublic:
    team = await team_or_404(s, team_id)
    for name, value in patch.model_dump(exclude_unset=True).items():
        setattr(team, name, value)
    await s.commit()
    return TeamPublic.model_validate(team)


@app.delete("/teams/{team_id}", status_code=204)
async def delete_team(team_id: int, s: Session) -> Response:
    await s.delete(await team_or_404(s, team_id))
    await s.commit()
    return Response(status_code=204)


@app.post("/heroes", status_code=201)
async def create_hero(body: HeroCreate, s: Session) -> HeroPublic:
    hero = Hero(**body.model_dump())
    s.add(hero)
    await s.commit()
    return HeroPublic.model_validate(hero)


@app.get("/heroes")
async def list_heroes(
    s: Session, offset: Offset = 0, limit: Limit = 100, min_age: Annotated[int | None, Query()] = None
) -> list[HeroWithTeam]:
    stmt = select(Hero).order_by(Hero.id).offset(offset).limit(limit).options(selectinload(Hero.team))
    if min_age is not None:
        stmt = stmt.where(Hero.age >= min_age)
    return [HeroWithTeam.model_validate(h) for h in await s.scalars(stmt)]


@app.get("/heroes/{hero_id}")
async def show_hero(hero_id: int, s: Session) -> HeroFull:
    hero = await hero_or_404(s, hero_id, selectinload(Hero.team), selectinload(Hero.powers))
    return HeroFull.model_validate(hero)


@app.patch("/heroes/{hero_id}")
async def update_hero(hero_id: int, patch: HeroPatch, s: Session) -> HeroPublic:
    hero = await hero_or_404(s, hero_id)
    for name, value in patch.model_dump(exclude_unset=True).items():
        setattr(hero, name, value)
    await s.commit()
    return HeroPublic.model_validate(hero)


@app.delete("/heroes/{hero_id}", status_code=204)
async def delete_hero(hero_id: int, s: Session) -> Response:
    await s.delete(await hero_or_404(s, hero_id))
    await s.commit()
    return Response(status_code=204)


@app.post("/powers", status_code=201)
async def create_power(body: PowerCreate, s: Session) -> PowerPublic:
    power = Power(**body.model_dump())
    s.add(power)
    await s.commit()
    return PowerPublic.model_validate(power)


@app.get("/powers")
async def list_powers(s: Session) -> list[PowerPublic]:
    return [PowerPublic.model_validate(p) for p in await s.scalars(select(Power).order_by(Power.name))]


@app.put("/heroes/{hero_id}/powers/{power_id}")
async def grant_power(hero_id: int, power_id: int, s: Session) -> HeroFull:
    hero = await hero_or_404(s, hero_id, selectinload(Hero.team), selectinload(Hero.powers))
    power = await s.get(Power, power_id)
    if power is None:
        raise HTTPException(404, "no such Power")
    if power not in hero.powers:
        hero.powers.append(power)
    await s.commit()
    return HeroFull.model_validate(hero)


@app.delete("/heroes/{hero_id}/powers/{power_id}")
async def revoke_power(hero_id: int, power_id: int, s: Session) -> HeroFull:
    hero = await hero_or_404(s, hero_id, selectinload(Hero.team), selectinload(Hero.powers))
    hero.powers = [p for p in hero.powers if p.id != power_id]
    await s.commit()
    return HeroFull.model_validate(hero)


@app.get("/health")
async def health() -> dict[str, dict[str, int]]:
    pool = engine_pool
    return {"pool": {"size": pool.size(), "idle": pool.checkedin(), "in_use": pool.checkedout()}}


def main() -> None:
    parser = argparse.ArgumentParser(description="The heroes API with SQLAlchemy's AsyncSession.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
