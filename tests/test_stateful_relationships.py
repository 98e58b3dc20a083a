"""A stateful property test of relationships: random loads, foreign-key assignments, writes through
relationships (references, collections, new teams with new heroes whose keys are generated), adds,
deletes (of heroes, and of teams, whose heroes' keys the database sets to NULL), flushes, commits
and rollbacks on one session, and after every step each loaded relationship must agree with what
the session holds; after a rollback, every relationship of an object that was committed holds
exactly what it held at the last commit (or is unloaded, as it was then), except that what a
transaction that wrote nothing loaded stays loaded.

The session holds every row (the teams and heroes are all loaded at the start, and every object
the test makes is added to it), so what a relationship should hold can be computed from the
session alone: a loaded ``hero.team`` is the held team whose key is ``hero.team_id`` (None for
None); a loaded ``team.heroes`` is the held, not deleted heroes whose ``team_id`` is the team's key
(as the open transaction sees them: after a flush, or at a load, which flushes first), in key
order. A relationship that could have gone stale must be unloaded instead, never wrong.

``AIOUOW_STATEFUL_EXAMPLES`` sets the number of examples (default 40; PostgreSQL runs half).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import aiouow
from aiouow import AsyncSession, ObjectState, select

from .conftest import DIALECTS, url_for
from .relmodels import REL_ALL, Hero, Team

EXAMPLES = int(os.environ.get("AIOUOW_STATEFUL_EXAMPLES", "40"))


class RelationshipMachine(RuleBasedStateMachine):
    def __init__(self, dialect: str) -> None:
        super().__init__()
        self.dialect = dialect
        self.loop = asyncio.new_event_loop()
        self.tmpdir = tempfile.mkdtemp()
        self.pool: aiouow.Pool | None = None
        self.session: AsyncSession | None = None
        self.loop.run_until_complete(self._open())
        self.teams: list[Team] = []
        self.heroes: list[Hero] = []
        self.flushed = True  # no change since the last flush (the invariant on collections needs it)
        #: The loaded relationships at the last commit, by object: what a rollback must give back.
        self.committed: dict[int, tuple[Any, dict[str, Any]]] = {}
        #: The open savepoints, each with what the held objects were when it opened: state, loaded
        #: relationships, fields.
        self.savepoints: list[tuple[aiouow.Savepoint, dict[int, tuple[Any, Any, dict[str, Any], dict[str, Any]]]]] = []

    async def _open(self) -> None:
        self.pool = await aiouow.create_pool(await url_for(self.dialect, Path(self.tmpdir)))
        await self.pool.drop_all(*REL_ALL)
        await self.pool.create_all(*REL_ALL)
        async with AsyncSession(self.pool) as s:
            teams = [Team(name=f"team {i}") for i in range(3)]
            s.add_all(teams)
            await s.flush()
            s.add_all(Hero(name=f"hero {i}", team_id=teams[i % 3].id if i < 5 else None) for i in range(6))
            await s.commit()
        self.session = AsyncSession(self.pool, n_plus_one="ignore")

    def teardown(self) -> None:
        try:
            if self.session is not None:
                self.run(self.session.close())
            if self.pool is not None:
                self.run(self.pool.drop_all(*REL_ALL))
                self.run(self.pool.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    @property
    def s(self) -> AsyncSession:
        assert self.session is not None
        return self.session

    @initialize()
    def load_everything(self) -> None:
        self.teams = self.run(self.s.scalars(select(Team).order_by(Team.id)))
        self.heroes = self.run(self.s.scalars(select(Hero).order_by(Hero.id)))
        self.remember_committed()

    def remember_committed(self) -> None:
        self.committed = {id(obj): (obj, relationships_of(obj)) for obj in self.held([*self.teams, *self.heroes])}

    def held(self, objs: list[Any]) -> list[Any]:
        return [o for o in objs if self.s.state(o) in (ObjectState.PERSISTENT, ObjectState.PENDING)]

    # -- rules ------------------------------------------------------------------------------------
    @rule(data=st.data(), which=st.sampled_from(["team", "heroes"]))
    def load(self, data: st.DataObject, which: str) -> None:
        objs = self.held(self.heroes if which == "team" else self.teams)
        if not objs:
            return
        if which == "team":
            self.run(self.s.load(data.draw(st.sampled_from(objs)), Hero.team))  # peers come along
        else:
            self.run(self.s.load(objs, Team.heroes))
        self.flushed = True  # (a load flushes first)

    @rule(data=st.data())
    def assign_team(self, data: st.DataObject) -> None:
        heroes = [h for h in self.held(self.heroes) if self.s.state(h) is ObjectState.PERSISTENT]
        teams = [t for t in self.held(self.teams) if t.id is not None]
        if heroes:
            hero = data.draw(st.sampled_from(heroes))
            hero.team_id = data.draw(st.sampled_from([None, *[t.id for t in teams]]))
            self.flushed = False

    @rule(data=st.data())
    def assign_reference(self, data: st.DataObject) -> None:
        """``hero.team = team`` (or None), through the relationship: both sides kept in step."""
        heroes = self.held(self.heroes)
        teams = self.held(self.teams)
        if heroes:
            hero = data.draw(st.sampled_from(heroes))
            hero.team = data.draw(st.sampled_from([None, *teams]))
            self.flushed = False  # (a key that waits for a new team's INSERT is set by the flush)

    @rule(data=st.data(), remove=st.booleans())
    def change_collection(self, data: st.DataObject, remove: bool) -> None:
        """``team.heroes.append(hero)`` / ``.remove(hero)``, where the collection is loaded."""
        teams = [t for t in self.held(self.teams) if "heroes" in t.__dict__]
        if not teams:
            return
        team = data.draw(st.sampled_from(teams))
        if remove and team.heroes:
            team.heroes.remove(data.draw(st.sampled_from(list(team.heroes))))
        elif not remove:
            heroes = self.held(self.heroes)
            if heroes:
                team.heroes.append(data.draw(st.sampled_from(heroes)))
        self.flushed = False

    @rule(n=st.integers(0, 3))
    def add_a_graph(self, n: int) -> None:
        """A new team with new heroes: keys generated, inserted in one flush, parents first."""
        team = Team(name="new team", heroes=[Hero(name=f"new {i}") for i in range(n)])
        self.s.add(team)
        self.teams.append(team)
        self.heroes.extend(team.heroes)
        self.flushed = False

    @rule(data=st.data())
    def rename(self, data: st.DataObject) -> None:
        """A change that is not a key: a flush of it keeps loaded relationships loaded."""
        objs = [o for o in self.held([*self.heroes, *self.teams]) if self.s.state(o) is ObjectState.PERSISTENT]
        if objs:
            data.draw(st.sampled_from(objs)).name = f"renamed {data.draw(st.integers(0, 9))}"

    @rule(data=st.data())
    def add_hero(self, data: st.DataObject) -> None:
        teams = [t for t in self.held(self.teams) if t.id is not None]
        team_id = data.draw(st.sampled_from([None, *[t.id for t in teams]]))
        hero = Hero(name="new", team_id=team_id)
        self.s.add(hero)
        self.heroes.append(hero)
        self.flushed = False

    @rule(data=st.data())
    def delete_hero(self, data: st.DataObject) -> None:
        heroes = [h for h in self.held(self.heroes) if self.s.state(h) is ObjectState.PERSISTENT]
        if heroes:
            self.s.delete(data.draw(st.sampled_from(heroes)))
            self.flushed = False

    @rule(data=st.data())
    def delete_team(self, data: st.DataObject) -> None:
        teams = [t for t in self.held(self.teams) if self.s.state(t) is ObjectState.PERSISTENT]
        if teams:
            self.s.delete(data.draw(st.sampled_from(teams)))  # its heroes' keys go NULL (on_delete)
            self.flushed = False

    @rule()
    def flush(self) -> None:
        self.run(self.s.flush())
        self.flushed = True

    @precondition(lambda self: len(self.savepoints) < 3)
    @rule()
    def open_savepoint(self) -> None:
        sp = self.s.begin_nested()
        self.run(sp.__aenter__())
        self.flushed = True
        kept = {
            id(obj): (obj, self.s.state(obj), relationships_of(obj), fields_of(obj))
            for obj in self.held([*self.teams, *self.heroes])
        }
        self.savepoints.append((sp, kept))

    @precondition(lambda self: bool(self.savepoints))
    @rule()
    def release_savepoint(self) -> None:
        sp, _ = self.savepoints.pop()
        self.run(sp.__aexit__(None, None, None))
        self.flushed = True

    @precondition(lambda self: bool(self.savepoints))
    @rule(by_exception=st.booleans())
    def rollback_savepoint(self, by_exception: bool) -> None:
        """Every object held at the savepoint holds its fields and loaded relationships again."""
        sp, kept = self.savepoints.pop()
        if by_exception:
            self.run(sp.__aexit__(RuntimeError, RuntimeError("leaving the block"), None))
        else:
            self.run(sp.rollback())
        self.flushed = True
        for obj, state, relationships, fields in kept.values():
            assert self.s.state(obj) is state, (obj, self.s.state(obj), state)
            assert fields_of(obj) == fields, (obj, fields_of(obj), fields)
            now = relationships_of(obj)
            assert now.keys() == relationships.keys(), (obj, now, relationships)
            for n, value in relationships.items():
                assert now[n] == value if isinstance(value, tuple) else now[n] is value, (obj, n, now[n], value)

    @rule()
    def commit(self) -> None:
        while self.savepoints:  # (commit() inside a savepoint is refused: leave the blocks first)
            self.release_savepoint()
        self.run(self.s.commit())
        self.flushed = True
        self.remember_committed()

    @rule()
    def rollback(self) -> None:
        tx = self.s._tx  # (white box: whether the transaction wrote decides what its loads become)
        wrote = tx is not None and tx.wrote
        self.run(self.s.rollback())
        self.savepoints.clear()
        self.flushed = True
        for obj, loaded in self.committed.values():
            if self.s.state(obj) is not ObjectState.PERSISTENT:
                continue
            names = ("heroes",) if isinstance(obj, Team) else ("team",)
            now = {n: obj.__dict__[n] for n in names if n in obj.__dict__}
            now = {n: tuple(v) if isinstance(v, list) else v for n, v in now.items()}
            if wrote:  # what it loaded may show rows the rollback undid: unloaded
                assert now.keys() == loaded.keys(), (obj, now, loaded)
            else:  # it wrote nothing: what it loaded still holds (the invariant checks its values)
                assert now.keys() >= loaded.keys(), (obj, now, loaded)
            for n, value in loaded.items():
                assert now[n] == value if isinstance(value, tuple) else now[n] is value, (obj, n, now[n], value)

    @precondition(lambda self: self.session is not None)
    @rule()
    def refresh_a_team(self) -> None:
        teams = [t for t in self.held(self.teams) if self.s.state(t) is ObjectState.PERSISTENT]
        if teams:
            self.run(self.s.refresh(teams[0]))

    # -- the invariant ----------------------------------------------------------------------------
    @invariant()
    def loaded_relationships_agree_with_the_session(self) -> None:
        if self.session is None:
            return
        in_session = (ObjectState.PERSISTENT, ObjectState.PENDING, ObjectState.DELETED)
        teams_by_key = {t.id: t for t in self.teams if self.s.state(t) in in_session}
        live = [h for h in self.held(self.heroes) if self.s.state(h) is not ObjectState.DELETED]
        for hero in self.held(self.heroes):
            if "team" in hero.__dict__:
                team = hero.__dict__["team"]
                if team is not None and team.id is None:  # a new team: the key waits for its INSERT
                    assert self.s.state(team) is ObjectState.PENDING
                    continue
                expected = None if hero.team_id is None else teams_by_key.get(hero.team_id)
                assert team is expected, (hero, team, expected)
        if self.flushed:  # the database's ON DELETE SET NULL, mirrored: no key names a deleted team
            deleted = {t.id for t in self.teams if self.s.state(t) is ObjectState.DELETED}
            assert not [h for h in live if h.team_id in deleted], deleted
        for team in self.held(self.teams):
            if "heroes" in team.__dict__ and (self.flushed or team.id is None):
                # (written through relationships, a collection keeps the order of its writes)
                if team.id is None:  # (a hero marked for deletion leaves it when the flush deletes it)
                    candidates = live if self.flushed else [h for h in self.heroes if self.s.state(h) in in_session]
                    members = [h for h in candidates if h.__dict__.get("team") is team]
                else:
                    members = [h for h in live if h.team_id == team.id]
                expected_heroes = sorted(members, key=id)
                assert sorted(team.__dict__["heroes"], key=id) == expected_heroes, (
                    team,
                    team.__dict__["heroes"],
                    expected_heroes,
                )


def relationships_of(obj: Any) -> dict[str, Any]:
    """The loaded relationships of a team or hero (collections as tuples)."""
    names = ("heroes",) if isinstance(obj, Team) else ("team",)
    return {
        n: tuple(obj.__dict__[n]) if isinstance(obj.__dict__[n], list) else obj.__dict__[n]
        for n in names
        if n in obj.__dict__
    }


def fields_of(obj: Any) -> dict[str, Any]:
    return {n: obj.__dict__[n] for n in (("id", "name") if isinstance(obj, Team) else ("id", "name", "team_id"))}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_loaded_relationships_are_never_stale(dialect: str, tmp_path: Path) -> None:
    asyncio.run(url_for(dialect, tmp_path))  # skips (or fails under CI) when there is no PostgreSQL server
    run_state_machine_as_test(
        lambda: RelationshipMachine(dialect),
        settings=settings(
            max_examples=EXAMPLES if dialect == "sqlite" else max(EXAMPLES // 2, 1),
            stateful_step_count=25,
            deadline=None,
            report_multiple_bugs=False,
        ),
    )
