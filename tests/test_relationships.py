"""Relationships: declared, resolved, loaded explicitly and in batches, never read stale."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import aiouow
from aiouow import AsyncSession, Entity, MappingError, NotLoadedError, QueryError, field, relationship, select

from .relmodels import REL_ALL, Hero, HeroPower, Node, Passport, Power, Team


@pytest.fixture
async def graph(pool: aiouow.Pool) -> AsyncIterator[aiouow.Pool]:
    """Two teams with heroes, powers through a link carrying a level, a passport, a small tree."""
    await pool.drop_all(*REL_ALL)
    await pool.create_all(*REL_ALL)
    async with AsyncSession(pool) as s:
        z, r = Team(name="Z-Force"), Team(name="Rusty")
        s.add_all([z, r])
        await s.flush()
        heroes = [
            Hero(name="Deadpond", team_id=z.id),
            Hero(name="Rusty-Man", team_id=r.id),
            Hero(name="Spider-Boy", team_id=z.id),
            Hero(name="Loner"),
        ]
        flight, strength = Power(name="flight"), Power(name="strength")
        s.add_all([*heroes, flight, strength])
        await s.flush()
        s.add_all(
            [
                HeroPower(hero_id=heroes[0].id, power_id=flight.id, level=3),
                HeroPower(hero_id=heroes[0].id, power_id=strength.id),
                HeroPower(hero_id=heroes[2].id, power_id=flight.id),
            ]
        )
        s.add(Passport(number="P-1", hero_id=heroes[0].id))
        root = Node(label="root")
        s.add(root)
        await s.flush()
        s.add_all([Node(label="a", parent_id=root.id), Node(label="b", parent_id=root.id)])
        await s.commit()
    yield pool
    await pool.drop_all(*REL_ALL)


def selects(s: AsyncSession) -> int:
    return s.stats().statements.get("select", 0)


class TestNotLoaded:
    async def test_reading_an_unloaded_relationship_says_how_to_load_it(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s:
            hero = await s.get_one(Hero, 1)
            with pytest.raises(NotLoadedError, match=r"Hero.team of Hero\(id=1\) is not loaded") as caught:
                _ = hero.team
            assert "await session.load(obj, Hero.team)" in str(caught.value)
            assert "select(Hero).load(Hero.team)" in str(caught.value)
            assert not isinstance(caught.value, AttributeError)
            with pytest.raises(NotLoadedError):  # getattr with a default is not fooled either
                getattr(hero, "team", None)
            assert not s.is_loaded(hero, Hero.team)

    def test_new_objects_have_their_relationships_loaded(self) -> None:
        team, hero = Team(name="t"), Hero(name="h")
        assert team.heroes == [] and hero.team is None and hero.powers == [] and hero.passport is None
        with pytest.raises(NotLoadedError):  # a key was given: which team is not known here
            _ = Hero(name="k", team_id=7).team


class TestLoading:
    async def test_many_to_one_in_one_statement_through_the_identity_map(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s:
            heroes = await s.scalars(select(Hero).order_by(Hero.id))
            z = await s.get_one(Team, 1)
            z.name = "Z-Force (unflushed)"
            before = selects(s)
            await s.load(heroes, Hero.team)
            assert selects(s) - before == 1
            assert [h.team.name if h.team else None for h in heroes] == [
                "Z-Force (unflushed)",
                "Rusty",
                "Z-Force (unflushed)",
                None,
            ]
            assert heroes[0].team is z  # the object the session holds, changes kept
            await s.rollback()

    async def test_one_to_many_keeps_key_order_and_fills_the_back_reference(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s:
            teams = await s.scalars(select(Team).order_by(Team.id))
            await s.load(teams, Team.heroes)
            assert [[h.name for h in t.heroes] for t in teams] == [["Deadpond", "Spider-Boy"], ["Rusty-Man"]]
            before = selects(s)
            assert teams[0].heroes[0].team is teams[0]  # set by the load: no statement
            assert selects(s) == before and s.is_loaded(teams[0].heroes[0], Hero.team)

    async def test_a_path_loads_level_by_level_with_many_to_many(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s:
            teams = await s.scalars(select(Team).order_by(Team.id))
            before = selects(s)
            await s.load(teams, (Team.heroes, Hero.powers))
            assert selects(s) - before == 2  # one per level: the many-to-many joins its link
            deadpond = teams[0].heroes[0]
            assert [p.name for p in deadpond.powers] == ["flight", "strength"]
            assert [p.name for p in teams[0].heroes[1].powers] == ["flight"]
            assert deadpond.powers[0] is teams[0].heroes[1].powers[0]  # one object per row

    async def test_one_to_one_and_a_tree(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s:
            heroes = await s.scalars(select(Hero).order_by(Hero.id))
            await s.load(heroes, Hero.passport)
            assert [h.passport.number if h.passport else None for h in heroes] == ["P-1", None, None, None]
            nodes = await s.scalars(select(Node).order_by(Node.id))
            await s.load(nodes, Node.children, Node.parent)
            root, a, b = nodes
            assert root.children == [a, b] and a.parent is root and root.parent is None and a.children == []

    async def test_select_load(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s:
            team = await s.one(select(Team).where(Team.name == "Rusty").load(Team.heroes))
            assert [h.name for h in team.heroes] == ["Rusty-Man"]
            teams = await s.all(select(Team).order_by(Team.id).load((Team.heroes, Hero.powers)))
            assert [p.name for p in teams[0].heroes[0].powers] == ["flight", "strength"]

    async def test_peer_batching_makes_a_loop_one_statement(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s:
            heroes = await s.scalars(select(Hero))
            before = selects(s)
            for hero in heroes:
                await s.load(hero, Hero.team)  # the first loads it for all four
            assert selects(s) - before == 1
            assert all(s.is_loaded(h, Hero.team) for h in heroes)

    async def test_large_sets_go_in_chunks(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s:
            s.add_all(Team(name=f"t{i}") for i in range(1200))
            await s.commit()
        async with AsyncSession(graph) as s:
            teams = await s.scalars(select(Team))
            before = selects(s)
            await s.load(teams, Team.heroes)
            assert selects(s) - before == 3  # 1,202 keys, 500 per statement
            assert sum(len(t.heroes) for t in teams) == 3


class TestJoins:
    async def test_join_filters_and_orders_by_a_related_entity(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s:
            heroes = await s.scalars(
                select(Hero).join(Hero.team).where(Team.name == "Z-Force").order_by(Hero.name.desc())
            )
            assert [h.name for h in heroes] == ["Spider-Boy", "Deadpond"]
            everyone = await s.scalars(select(Hero).outerjoin(Hero.team).order_by(Team.name, Hero.id))
            assert len(everyone) == 4  # Loner has no team, and is kept

    async def test_a_join_to_a_collection_returns_each_object_once(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s:
            teams = await s.scalars(select(Team).join(Team.heroes).where(Hero.name.like("%-%")).order_by(Team.id))
            assert [t.name for t in teams] == ["Z-Force", "Rusty"]
            flyers = await s.scalars(select(Hero).join(Hero.powers).where(Power.name == "flight").order_by(Hero.id))
            assert [h.name for h in flyers] == ["Deadpond", "Spider-Boy"]
            assert await s.count(select(Hero).join(Hero.powers).where(Power.name == "flight")) == 2

    async def test_values_across_a_join(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s:
            stmt = (
                aiouow.select(Team.name, aiouow.func.count(Hero.id))
                .join(Team.heroes)
                .group_by(Team.name)
                .order_by(Team.name)
            )
            assert await s.rows(stmt) == [("Rusty", 1), ("Z-Force", 2)]

    async def test_a_join_of_an_entity_to_itself_through_an_alias(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s:
            root = Node(label="top", children=[Node(label="x", children=[Node(label="x1")]), Node(label="y")])
            s.add(root)
            await s.commit()
            parent = aiouow.aliased(Node, "parent")
            under_root = select(Node).join(Node.parent, parent).where(parent.label == "top").order_by(Node.label)
            assert [n.label for n in await s.scalars(under_root)] == ["x", "y"]
            mine = Node.label.in_(["top", "x", "x1", "y"])
            pairs = select(Node.label, parent.label).join(Node.parent, parent).where(mine).order_by(Node.label)
            assert await s.rows(pairs) == [("x", "top"), ("x1", "x"), ("y", "top")]
            # a child compared with its parent (the condition that has/any cannot say)
            same_initial = select(Node).join(Node.parent, parent).where(Node.label.like("x%"), parent.label == "x")
            assert [n.label for n in await s.scalars(same_initial)] == ["x1"]
            everyone = select(Node.label, parent.label).outerjoin(Node.parent, parent).where(mine).order_by(Node.label)
            assert await s.rows(everyone) == [("top", None), ("x", "top"), ("x1", "x"), ("y", "top")]  # top kept
            child = aiouow.aliased(Node)  # (a name made up)
            with_children = select(Node).join(Node.children, child).where(child.label == "x1")
            assert [n.label for n in await s.scalars(with_children)] == ["x"]
            assert await s.count(select(Node).join(Node.children, child).where(mine)) == 3  # a row per child

    def test_aliases_refuse_what_they_cannot_do(self) -> None:
        parent = aiouow.aliased(Node, "parent")
        with pytest.raises(QueryError, match="does not join its alias"):
            select(Node).where(parent.label == "x")
        with pytest.raises(QueryError, match="expected an alias of Team"):
            select(Hero).join(Hero.team, parent)
        with pytest.raises(QueryError, match="joins that alias already"):
            select(Node).join(Node.parent, parent).join(Node.children, parent)
        with pytest.raises(QueryError, match="an alias is a plain name"):
            aiouow.aliased(Node, "bad name")
        with pytest.raises(QueryError, match="joins and EXISTS conditions start at the selected entity"):
            parent.children  # noqa: B018
        with pytest.raises(AttributeError, match="Node has no field 'nmae'"):
            parent.nmae  # noqa: B018

    def test_joins_that_do_not_chain_are_query_errors(self) -> None:
        with pytest.raises(QueryError, match="Team is not selected or joined before it"):
            select(Hero).join(Team.heroes)
        with pytest.raises(QueryError, match="which the statement does not join"):
            select(Hero).where(Team.name == "x")
        with pytest.raises(
            QueryError, match=r"join it under an alias: \.join\(Node\.parent, aiouow\.aliased\(Node\)\)"
        ):
            select(Node).join(Node.parent)
        with pytest.raises(QueryError, match="expected a relationship"):
            select(Hero).join(Team)  # type: ignore[arg-type]


class TestNeverStale:
    async def test_assigning_a_foreign_key_unloads_what_goes_through_it(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s:
            teams = await s.scalars(select(Team).order_by(Team.id).load(Team.heroes))
            hero = teams[0].heroes[0]
            hero.team_id = teams[1].id
            assert not s.is_loaded(hero, Hero.team)
            assert not s.is_loaded(teams[0], Team.heroes) and not s.is_loaded(teams[1], Team.heroes)
            await s.load(teams, Team.heroes)  # (autoflush sends the change first)
            assert [h.name for h in teams[1].heroes] == ["Deadpond", "Rusty-Man"]
            await s.rollback()
            assert not s.is_loaded(teams[1], Team.heroes)  # what the rollback undid is not kept

    async def test_commit_without_writes_keeps_relationships_loaded(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s:
            hero = await s.one(select(Hero).where(Hero.id == 1).load(Hero.team))
            await s.commit()
        assert hero.team is not None and hero.team.name == "Z-Force"  # detached, still loaded

    async def test_a_rollback_keeps_what_a_transaction_that_wrote_nothing_loaded(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s:
            heroes = await s.scalars(select(Hero).order_by(Hero.id))
            await s.load(heroes, Hero.team)
            heroes[0].team = None  # a change in memory only: put back by the rollback
            await s.rollback()  # (nothing was flushed: what was loaded is still true)
            assert heroes[0].team is not None and heroes[0].team.name == "Z-Force"
            assert heroes[1].team is not None and heroes[1].team.name == "Rusty"
            await s.load(heroes, Hero.powers)
        assert [p.name for p in heroes[0].powers] == ["flight", "strength"]  # close: still loaded
        assert heroes[3].team is None

    async def test_closing_after_a_write_unloads_what_it_loaded(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s:
            team = await s.one(select(Team).where(Team.id == 1))
            team.name = "Renamed"
            await s.flush()
            await s.load(team, Team.heroes)
        with pytest.raises(NotLoadedError):
            _ = team.heroes  # (the close rolled back the flush: the load is not kept)
        assert team.name == "Z-Force"

    async def test_a_flush_keeps_loaded_collections_in_step_with_rows_written_by_key(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s:
            team = await s.one(select(Team).where(Team.id == 2).load(Team.heroes))
            new = Hero(name="New", team_id=2)  # (through the key, not the relationship)
            s.add(new)
            await s.flush()
            assert [h.name for h in team.heroes] == ["Rusty-Man", "New"]
            s.delete(team.heroes[0])
            await s.flush()
            assert [h.name for h in team.heroes] == ["New"]
            await s.load(team, Team.heroes)
            assert [h.name for h in team.heroes] == ["New"]
            await s.rollback()

    async def test_a_refresh_or_a_locking_read_unloads(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s, AsyncSession(graph) as other:
            hero = await s.one(select(Hero).where(Hero.id == 1).load(Hero.team))
            moved = await other.get_one(Hero, 1)
            moved.team_id = 2
            await other.commit()
            await s.get(Hero, 1, for_update=True)  # reads the row again: team_id is 2 now
            assert hero.team_id == 2 and not s.is_loaded(hero, Hero.team)
            await s.load(hero, Hero.team)
            assert hero.team is not None and hero.team.name == "Rusty"
            await s.rollback()

    async def test_a_flush_that_only_updates_fields_keeps_them_loaded(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s:
            team = await s.one(select(Team).where(Team.id == 1).load(Team.heroes))
            team.heroes[0].name = "Renamed"
            team.name = "Z"
            await s.commit()
            assert [h.name for h in team.heroes] == ["Renamed", "Spider-Boy"]
            assert team.heroes[0].team is team


class TestBadInput:
    async def test_paths_that_do_not_chain_and_foreign_objects(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s, AsyncSession(graph) as other:
            teams = await s.scalars(select(Team))
            with pytest.raises(QueryError, match=r"Hero\.powers is a relationship of Hero, not of Team"):
                await s.load(teams, Hero.powers)
            with pytest.raises(QueryError, match="a path is a relationship"):
                await s.load(teams, "heroes")
            with pytest.raises(aiouow.DetachedInstanceError):
                await other.load(teams, Team.heroes)

    def test_unresolvable_and_ambiguous_relationships_are_mapping_errors(self) -> None:
        class Lost(Entity, table="rel_lost"):
            id: int = field(primary_key=True)
            ghost: Nowhere | None = relationship()  # type: ignore[name-defined]  # noqa: F821

        with pytest.raises(MappingError, match=r"cannot map Lost\.ghost: .*cannot be resolved"):
            Lost()

        class Twice(Entity, table="rel_twice"):
            id: int = field(primary_key=True)
            a_id: int | None = field(default=None, foreign_key="rel_teams.id")
            b_id: int | None = field(default=None, foreign_key="rel_teams.id")
            team: Team | None = relationship()

        with pytest.raises(MappingError, match=r"Twice.team: several foreign keys could serve \(a_id, b_id\)"):
            Twice()

        class NotEntity(Entity, table="rel_not_entity"):
            id: int = field(primary_key=True)
            thing: int | None = relationship()

        with pytest.raises(MappingError, match="is not an entity class"):
            NotEntity()

        class Mismatch(Entity, table="rel_mismatch"):
            id: int = field(primary_key=True)
            team_id: int | None = field(default=None, foreign_key="rel_teams.id")
            team: Team | None = relationship(back_populates="nothing")

        with pytest.raises(MappingError, match="back_populates='nothing': Team has no such relationship"):
            Mismatch()

    def test_a_one_to_one_needs_a_unique_key(self) -> None:
        class Owner(Entity, table="rel_owner"):
            id: int = field(primary_key=True)
            item: Item | None = relationship()

        class Item(Entity, table="rel_item"):
            id: int = field(primary_key=True)
            owner_id: int = field(foreign_key="rel_owner.id")

        with pytest.raises(MappingError, match="is not unique"):
            Owner()
        assert Item

    def test_a_link_needs_a_key_to_each_side(self) -> None:
        class Bad(Entity, table="rel_bad"):
            id: int = field(primary_key=True)
            powers: list[Power] = relationship(link=Passport)

        with pytest.raises(MappingError, match="needs exactly one foreign key"):
            Bad()
        assert HeroPower


class TestExists:
    async def test_has_and_any_correlate_with_each_row(self, graph: aiouow.Pool) -> None:
        async with AsyncSession(graph) as s:
            in_z = await s.scalars(
                select(Hero).where(aiouow.rel(Hero.team).has(Team.name == "Z-Force")).order_by(Hero.id)
            )
            assert [h.name for h in in_z] == ["Deadpond", "Spider-Boy"]
            teamless = await s.scalars(select(Hero).where(~aiouow.rel(Hero.team).has()))
            assert [h.name for h in teamless] == ["Loner"]
            flyers = await s.scalars(select(Hero).where(aiouow.rel(Hero.powers).any(Power.name == "flight")))
            assert sorted(h.name for h in flyers) == ["Deadpond", "Spider-Boy"]
            teams = await s.scalars(select(Team).where(aiouow.rel(Team.heroes).any(Hero.name.like("Rusty%"))))
            assert [t.name for t in teams] == ["Rusty"]
            assert await s.count(select(Team).where(aiouow.rel(Team.heroes).any())) == 2

    async def test_has_and_any_of_an_entity_on_itself(self, graph: aiouow.Pool) -> None:
        """The condition is on the related row (an alias names it); nesting gets an alias per level."""
        async with AsyncSession(graph) as s:
            (a,) = await s.filter(Node, label="a")
            s.add(Node(label="a1", parent_id=a.id))
            await s.flush()

            async def labels(condition: Any) -> list[str]:
                return [n.label for n in await s.scalars(select(Node).where(condition).order_by(Node.id))]

            assert await labels(aiouow.rel(Node.children).any(Node.label == "a1")) == ["a"]
            assert await labels(aiouow.rel(Node.parent).has(Node.label == "root")) == ["a", "b"]
            assert await labels(~aiouow.rel(Node.children).any()) == ["b", "a1"]
            grandparents = aiouow.rel(Node.children).any(aiouow.rel(Node.children).any(Node.label.like("a%")))
            assert await labels(grandparents) == ["root"]
            assert await labels(aiouow.rel(Node.parent).has(aiouow.rel(Node.parent).has())) == ["a1"]
            assert await s.count(select(Node).where(aiouow.rel(Node.children).any(Node.label == "b"))) == 1

    def test_bad_exists_are_query_errors(self) -> None:
        with pytest.raises(QueryError, match=r"is a collection: use \.any"):
            aiouow.rel(Team.heroes).has()
        with pytest.raises(QueryError, match=r"Hero\.name is not a field of Team"):
            aiouow.rel(Hero.team).has(Hero.name == "x")
        with pytest.raises(QueryError, match="as a relationship"):
            aiouow.rel(Hero.name)
