"""field(on_delete=...): the database's ON DELETE, and the session's objects made to agree."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import aiouow
from aiouow import AsyncSession, Entity, ForeignKeyViolationError, MappingError, ObjectState, field, select

from .relmodels import REL_ALL, Hero, HeroPower, Node, Passport, Power, Team


@pytest.fixture
async def world(pool: aiouow.Pool) -> AsyncIterator[aiouow.Pool]:
    await pool.drop_all(*REL_ALL)
    await pool.create_all(*REL_ALL)
    async with AsyncSession(pool) as s:
        team, power = Team(name="Z"), Power(name="flight")
        s.add_all([team, power])
        await s.flush()
        a, b = Hero(name="a", team_id=team.id), Hero(name="b", team_id=team.id)
        s.add_all([a, b])
        await s.flush()
        s.add_all([Passport(number="P-a", hero_id=a.id), HeroPower(hero_id=a.id, power_id=power.id)])
        root = Node(label="root")
        s.add(root)
        await s.flush()
        child = Node(label="child", parent_id=root.id)
        s.add(child)
        await s.flush()
        s.add(Node(label="grandchild", parent_id=child.id))
        await s.commit()
    yield pool
    await pool.drop_all(*REL_ALL)


class TestOnDelete:
    async def test_set_null_clears_the_keys_of_held_objects(self, world: aiouow.Pool) -> None:
        async with AsyncSession(world) as s:
            heroes = await s.scalars(select(Hero).order_by(Hero.id))
            s.delete(await s.get_one(Team, 1))
            await s.flush()
            assert [h.team_id for h in heroes] == [None, None]
            assert not s.dirty  # what the rows hold now, not a change to send
            await s.rollback()
            assert [h.team_id for h in heroes] == [1, 1]
        async with AsyncSession(world) as s:
            s.delete(await s.get_one(Team, 1))
            await s.commit()
        async with AsyncSession(world) as s:
            assert [h.team_id for h in await s.all(Hero)] == [None, None]

    async def test_cascade_deletes_held_objects_in_turn(self, world: aiouow.Pool) -> None:
        async with AsyncSession(world) as s:
            passport = await s.get_one(Passport, 1)
            link = await s.get_one(HeroPower, (1, 1))
            nodes = await s.scalars(select(Node).order_by(Node.id))
            s.delete(await s.get_one(Hero, 1))
            s.delete(nodes[0])
            await s.flush()
            assert s.state(passport) is ObjectState.DELETED and s.state(link) is ObjectState.DELETED
            assert [s.state(n) for n in nodes] == [ObjectState.DELETED] * 3  # the grandchild too
            await s.rollback()
            assert (
                s.state(passport) is ObjectState.PERSISTENT
                and [s.state(n) for n in nodes] == [ObjectState.PERSISTENT] * 3
            )
            s.delete(await s.get_one(Hero, 1))
            await s.commit()
            assert s.state(passport) is ObjectState.TRANSIENT
        async with AsyncSession(world) as s:
            assert await s.all(Passport) == [] and await s.all(HeroPower) == []

    async def test_restrict_refuses_the_delete(self, world: aiouow.Pool) -> None:
        async with AsyncSession(world) as s:
            s.delete(await s.get_one(Power, 1))
            with pytest.raises(ForeignKeyViolationError):
                await s.commit()
            await s.rollback()

    def test_the_ddl_says_it(self, world: aiouow.Pool) -> None:
        ddl = " ".join(world.driver.dialect.create_table_sql(aiouow._mapping.mapper_of(HeroPower)))
        assert "ON DELETE CASCADE" in ddl and "ON DELETE RESTRICT" in ddl

    def test_bad_options_are_mapping_errors(self) -> None:
        with pytest.raises(MappingError, match="on_delete= applies to a foreign key"):

            class NoKey(Entity, table="od_no_key"):
                id: int = field(primary_key=True)
                x: int = field(on_delete="cascade")

        with pytest.raises(MappingError, match="'set null' needs a nullable field"):

            class NotNull(Entity, table="od_not_null"):
                id: int = field(primary_key=True)
                team_id: int = field(foreign_key="rel_teams.id", on_delete="set null")

        with pytest.raises(MappingError, match="must be 'cascade', 'set null' or 'restrict'"):

            class Odd(Entity, table="od_odd"):
                id: int = field(primary_key=True)
                team_id: int = field(foreign_key="rel_teams.id", on_delete="nothing")  # type: ignore[arg-type]
