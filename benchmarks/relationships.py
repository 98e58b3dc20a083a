"""Relationship loading, three systems side by side: hand-written driver code, aiouow, SQLAlchemy.

    python -m benchmarks.relationships --db sqlite --repeat 15
    python -m benchmarks.relationships --db postgresql://postgres@127.0.0.1:5432/aiouow_bench

Workloads (every system sends the same statements: one for the objects, then one per 500 keys):
- many-to-one: 10,000 heroes, then their teams;
- one-to-many: 1,000 teams, then their 10,000 heroes;
- many-to-many: 2,000 heroes, then their powers (3 each, through a link table);
- a graph of new objects: 1,000 teams with 10 heroes each, keys generated, in one commit (the
  teams' INSERT, their keys from RETURNING, then the heroes' INSERT; the objects are built inside
  the timing, in every system).

The hand-written code builds slotted objects and links them by dicts; aiouow runs
``s.scalars(select(...))`` then ``s.load(objs, rel)``; SQLAlchemy 2.x ``selectinload``. Medians of
``--repeat`` runs after a warm-up; printed as milliseconds and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import aiosqlite
import asyncpg
from sqlalchemy import BigInteger, ForeignKey, Integer, Text
from sqlalchemy import select as sa_select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, selectinload
from sqlalchemy.orm import relationship as sa_relationship

import aiouow
from aiouow import AsyncSession, Entity, field, relationship, select

TEAMS, HEROES, POWERS, WITH_POWERS, POWERS_EACH, CHUNK = 1_000, 10_000, 200, 2_000, 3, 500


# -- aiouow ------------------------------------------------------------------------------------
class Team(Entity, table="bench_teams"):
    id: int = field(primary_key=True)
    name: str
    heroes: list[Hero] = relationship(back_populates="team")


class Hero(Entity, table="bench_heroes"):
    id: int = field(primary_key=True)
    name: str
    team_id: int | None = field(default=None, foreign_key="bench_teams.id", index=True)
    team: Team | None = relationship(back_populates="heroes")
    powers: list[Power] = relationship(link="HeroPower")


class Power(Entity, table="bench_powers"):
    id: int = field(primary_key=True)
    name: str


class HeroPower(Entity, table="bench_hero_powers"):
    hero_id: int = field(primary_key=True, init=True, foreign_key="bench_heroes.id")
    power_id: int = field(primary_key=True, init=True, foreign_key="bench_powers.id", index=True)
    level: int = 1


class GraphTeam(Entity, table="bench_graph_teams"):
    id: int = field(primary_key=True)
    name: str
    heroes: list[GraphHero] = relationship(back_populates="team")


class GraphHero(Entity, table="bench_graph_heroes"):
    id: int = field(primary_key=True)
    name: str
    team_id: int | None = field(default=None, foreign_key="bench_graph_teams.id")
    team: GraphTeam | None = relationship(back_populates="heroes")


ALL = (Team, Hero, Power, HeroPower, GraphTeam, GraphHero)
GRAPH_TEAMS, GRAPH_HEROES = 1_000, 10


async def aiouow_m2o(pool: aiouow.Pool) -> int:
    async with AsyncSession(pool) as s:
        heroes = await s.scalars(select(Hero))
        await s.load(heroes, Hero.team)
        return sum(1 for h in heroes if h.team is not None)


async def aiouow_o2m(pool: aiouow.Pool) -> int:
    async with AsyncSession(pool) as s:
        teams = await s.scalars(select(Team))
        await s.load(teams, Team.heroes)
        return sum(len(t.heroes) for t in teams)


async def aiouow_m2m(pool: aiouow.Pool) -> int:
    async with AsyncSession(pool) as s:
        heroes = await s.scalars(select(Hero).where(Hero.id <= WITH_POWERS))
        await s.load(heroes, Hero.powers)
        return sum(len(h.powers) for h in heroes)


async def aiouow_graph(pool: aiouow.Pool) -> int:
    teams = [
        GraphTeam(name=f"team {i}", heroes=[GraphHero(name=f"hero {i}-{j}") for j in range(GRAPH_HEROES)])
        for i in range(GRAPH_TEAMS)
    ]
    async with AsyncSession(pool) as s:
        s.add_all(teams)
        await s.commit()
    return sum(1 for t in teams for h in t.heroes if h.team_id == t.id)


# -- hand-written ------------------------------------------------------------------------------
@dataclass(slots=True)
class HTeam:
    id: int
    name: str
    heroes: list[HHero] = dc_field(default_factory=list)


@dataclass(slots=True)
class HHero:
    id: int
    name: str
    team_id: int | None
    team: HTeam | None = None
    powers: list[HPower] = dc_field(default_factory=list)


@dataclass(slots=True)
class HPower:
    id: int
    name: str


class Hand:
    """Runs a query with a list of keys the driver's way: ``= ANY($1)`` or ``IN (?, ...)``."""

    def __init__(self, dialect: str, conn: Any) -> None:
        self.dialect, self.conn = dialect, conn

    async def rows(self, sql: str) -> list[Any]:
        if self.dialect == "sqlite":
            return list(await self.conn.execute_fetchall(sql))
        return list(await self.conn.fetch(sql))

    async def rows_in(self, sql: str, column: str, keys: list[int], tail: str = "") -> list[Any]:
        out: list[Any] = []
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            if self.dialect == "sqlite":
                marks = ", ".join("?" * len(chunk))
                out.extend(await self.conn.execute_fetchall(f"{sql} WHERE {column} IN ({marks}){tail}", chunk))
            else:
                out.extend(await self.conn.fetch(f"{sql} WHERE {column} = ANY($1::bigint[]){tail}", chunk))
        return out

    async def m2o(self) -> int:
        heroes = [HHero(r[0], r[1], r[2]) for r in await self.rows("SELECT id, name, team_id FROM bench_heroes")]
        keys = sorted({h.team_id for h in heroes if h.team_id is not None})
        rows = await self.rows_in("SELECT id, name FROM bench_teams", "id", keys, " ORDER BY id")
        teams = {r[0]: HTeam(r[0], r[1]) for r in rows}
        for h in heroes:
            h.team = teams.get(h.team_id) if h.team_id is not None else None
        return sum(1 for h in heroes if h.team is not None)

    async def o2m(self) -> int:
        teams = {r[0]: HTeam(r[0], r[1]) for r in await self.rows("SELECT id, name FROM bench_teams")}
        sql = "SELECT id, name, team_id FROM bench_heroes"
        for r in await self.rows_in(sql, "team_id", sorted(teams), " ORDER BY id"):
            team = teams[r[2]]
            hero = HHero(r[0], r[1], r[2], team)
            team.heroes.append(hero)
        return sum(len(t.heroes) for t in teams.values())

    async def m2m(self) -> int:
        heroes = {
            r[0]: HHero(r[0], r[1], r[2])
            for r in await self.rows(f"SELECT id, name, team_id FROM bench_heroes WHERE id <= {WITH_POWERS}")
        }
        powers: dict[int, HPower] = {}
        sql = "SELECT t.id, t.name, l.hero_id FROM bench_powers AS t JOIN bench_hero_powers AS l ON l.power_id = t.id"
        for r in await self.rows_in(sql, "l.hero_id", sorted(heroes), " ORDER BY l.hero_id, t.id"):
            power = powers.get(r[0])
            if power is None:
                power = powers[r[0]] = HPower(r[0], r[1])
            heroes[r[2]].powers.append(power)
        return sum(len(h.powers) for h in heroes.values())

    async def graph(self) -> int:
        teams = [HTeam(0, f"team {i}") for i in range(GRAPH_TEAMS)]
        for i, team in enumerate(teams):
            team.heroes = [HHero(0, f"hero {i}-{j}", None, team) for j in range(GRAPH_HEROES)]
        heroes = [h for t in teams for h in t.heroes]
        if self.dialect == "sqlite":
            db = self.conn
            await db.execute("BEGIN IMMEDIATE")
            for start in range(0, len(teams), CHUNK):
                chunk = teams[start : start + CHUNK]
                sql = "INSERT INTO bench_graph_teams (name) VALUES " + ", ".join(["(?)"] * len(chunk)) + " RETURNING id"
                keys = sorted(r[0] for r in await db.execute_fetchall(sql, [t.name for t in chunk]))
                for team, key in zip(chunk, keys, strict=True):
                    team.id = key
            for start in range(0, len(heroes), CHUNK):
                part = heroes[start : start + CHUNK]
                marks = ", ".join(["(?, ?)"] * len(part))
                sql = f"INSERT INTO bench_graph_heroes (name, team_id) VALUES {marks} RETURNING id"
                assert all(h.team is not None for h in part)
                params = [v for h in part for v in (h.name, h.team.id)]  # type: ignore[union-attr]
                keys = sorted(r[0] for r in await db.execute_fetchall(sql, params))
                for hero, key in zip(part, keys, strict=True):
                    hero.id, hero.team_id = key, hero.team.id  # type: ignore[union-attr]
            await db.execute("COMMIT")
        else:
            conn = self.conn
            async with conn.transaction():
                rows = await conn.fetch(
                    "INSERT INTO bench_graph_teams (name) SELECT n FROM unnest($1::text[]) WITH ORDINALITY AS u(n, o) "
                    "ORDER BY o RETURNING id",
                    [t.name for t in teams],
                )
                for team, key in zip(teams, sorted(r[0] for r in rows), strict=True):
                    team.id = key
                for hero in heroes:
                    hero.team_id = hero.team.id  # type: ignore[union-attr]
                rows = await conn.fetch(
                    "INSERT INTO bench_graph_heroes (name, team_id) SELECT n, t FROM unnest($1::text[], $2::bigint[]) "
                    "WITH ORDINALITY AS u(n, t, o) ORDER BY o RETURNING id",
                    [h.name for h in heroes],
                    [h.team_id for h in heroes],
                )
                for hero, key in zip(heroes, sorted(r[0] for r in rows), strict=True):
                    hero.id = key
        return sum(1 for t in teams for h in t.heroes if h.team_id == t.id)


# -- SQLAlchemy --------------------------------------------------------------------------------
class Base(DeclarativeBase):
    pass


_KEY = BigInteger().with_variant(Integer(), "sqlite")


class SATeam(Base):
    __tablename__ = "bench_teams"
    id: Mapped[int] = mapped_column(_KEY, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    heroes: Mapped[list[SAHero]] = sa_relationship(back_populates="team", order_by="SAHero.id")


class SAHeroPower(Base):
    __tablename__ = "bench_hero_powers"
    hero_id: Mapped[int] = mapped_column(_KEY, ForeignKey("bench_heroes.id"), primary_key=True)
    power_id: Mapped[int] = mapped_column(_KEY, ForeignKey("bench_powers.id"), primary_key=True)
    level: Mapped[int] = mapped_column(BigInteger)


class SAHero(Base):
    __tablename__ = "bench_heroes"
    id: Mapped[int] = mapped_column(_KEY, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    team_id: Mapped[int | None] = mapped_column(_KEY, ForeignKey("bench_teams.id"))
    team: Mapped[SATeam | None] = sa_relationship(back_populates="heroes")
    powers: Mapped[list[SAPower]] = sa_relationship(secondary="bench_hero_powers", order_by="SAPower.id")


class SAPower(Base):
    __tablename__ = "bench_powers"
    id: Mapped[int] = mapped_column(_KEY, primary_key=True)
    name: Mapped[str] = mapped_column(Text)


class SAGraphTeam(Base):
    __tablename__ = "bench_graph_teams"
    id: Mapped[int] = mapped_column(_KEY, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    heroes: Mapped[list[SAGraphHero]] = sa_relationship(back_populates="team")


class SAGraphHero(Base):
    __tablename__ = "bench_graph_heroes"
    id: Mapped[int] = mapped_column(_KEY, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    team_id: Mapped[int | None] = mapped_column(_KEY, ForeignKey("bench_graph_teams.id"))
    team: Mapped[SAGraphTeam | None] = sa_relationship(back_populates="heroes")


async def sa_run(maker: Any, what: str) -> int:
    if what == "graph":
        teams = [
            SAGraphTeam(name=f"team {i}", heroes=[SAGraphHero(name=f"hero {i}-{j}") for j in range(GRAPH_HEROES)])
            for i in range(GRAPH_TEAMS)
        ]
        async with maker() as s:
            s.add_all(teams)
            await s.commit()
        return sum(1 for t in teams for h in t.heroes if h.team_id == t.id)
    async with maker() as s:
        if what == "m2o":
            heroes = (await s.scalars(sa_select(SAHero).options(selectinload(SAHero.team)))).all()
            return sum(1 for h in heroes if h.team is not None)
        if what == "o2m":
            teams = (await s.scalars(sa_select(SATeam).options(selectinload(SATeam.heroes)))).all()
            return sum(len(t.heroes) for t in teams)
        stmt = sa_select(SAHero).where(SAHero.id <= WITH_POWERS).options(selectinload(SAHero.powers))
        heroes = (await s.scalars(stmt)).all()
        return sum(len(h.powers) for h in heroes)


# -- the run -----------------------------------------------------------------------------------
async def seed(pool: aiouow.Pool) -> None:
    await pool.drop_all(*ALL)
    await pool.create_all(*ALL)
    async with AsyncSession(pool) as s:
        s.add_all(Team(name=f"team {i}") for i in range(TEAMS))
        s.add_all(Power(name=f"power {i}") for i in range(POWERS))
        await s.flush()
        s.add_all(Hero(name=f"hero {i}", team_id=i % TEAMS + 1) for i in range(HEROES))
        await s.flush()
        s.add_all(
            HeroPower(hero_id=h, power_id=(h * 7 + k) % POWERS + 1)
            for h in range(1, WITH_POWERS + 1)
            for k in range(POWERS_EACH)
        )
        await s.commit()


async def timed(
    fn: Callable[[], Awaitable[int]], repeat: int, before: Callable[[], Awaitable[None]] | None = None
) -> tuple[float, int]:
    """The median time of ``repeat`` runs after a warm-up (``before`` runs untimed before each)."""
    if before is not None:
        await before()
    result = await fn()  # warm-up (and the checked result)
    times = []
    for _ in range(repeat):
        if before is not None:
            await before()
        started = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


async def main(db: str, repeat: int) -> None:
    tmp = tempfile.TemporaryDirectory()
    if db == "sqlite":
        url, sa_url, dialect = f"sqlite:///{tmp.name}/rel.db", f"sqlite+aiosqlite:///{tmp.name}/rel.db", "sqlite"
    else:
        url, sa_url, dialect = db, db.replace("postgresql://", "postgresql+asyncpg://", 1), "postgresql"
    pool = await aiouow.create_pool(url)
    await seed(pool)
    raw: Any = await aiosqlite.connect(f"{tmp.name}/rel.db") if dialect == "sqlite" else await asyncpg.connect(db)
    engine = create_async_engine(sa_url)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    hand = Hand(dialect, raw)
    workloads = {
        "many-to-one: 10,000 heroes and their teams": ("m2o", hand.m2o, aiouow_m2o),
        "one-to-many: 1,000 teams and their 10,000 heroes": ("o2m", hand.o2m, aiouow_o2m),
        "many-to-many: 2,000 heroes and their 6,000 powers": ("m2m", hand.m2m, aiouow_m2m),
        "insert a graph: 1,000 teams x 10 heroes, one commit": ("graph", hand.graph, aiouow_graph),
    }

    async def empty_graph() -> None:
        async with AsyncSession(pool) as s:
            await s.execute("DELETE FROM bench_graph_heroes")
            await s.execute("DELETE FROM bench_graph_teams")
            await s.commit()

    print(f"{dialect}: medians of {repeat} runs (ms)")
    print(f"{'workload':52} {'hand':>8} {'aiouow':>8} {'SQLAlchemy':>11} {'aiouow/hand':>12} {'SA/aiouow':>10}")
    try:
        for title, (what, hand_fn, ours) in workloads.items():
            before = empty_graph if what == "graph" else None
            h, h_result = await timed(hand_fn, repeat, before)
            a, a_result = await timed(lambda ours=ours: ours(pool), repeat, before)  # type: ignore[misc]
            q, q_result = await timed(lambda what=what: sa_run(maker, what), repeat, before)  # type: ignore[misc]
            assert h_result == a_result == q_result, (title, h_result, a_result, q_result)
            print(f"{title:52} {h * 1e3:8.2f} {a * 1e3:8.2f} {q * 1e3:11.2f} {a / h:11.2f}x {q / a:9.2f}x")
    finally:
        await raw.close()
        await engine.dispose()
        await pool.drop_all(*ALL)
        await pool.close()
        tmp.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    asyncio.run(main(args.db, args.repeat))
