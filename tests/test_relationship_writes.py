"""Writing through relationships: assignment, collections, link rows, save cascade, graphs of
new objects in one flush, and what is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import aiouow
from aiouow import AsyncSession, Entity, NotLoadedError, SessionError, field, relationship, select


class Team(Entity, table="rw_teams"):
    id: int = field(primary_key=True)
    name: str
    heroes: list[Hero] = relationship(back_populates="team")
    members: list[Member] = relationship(back_populates="team", delete_orphan=True)


class Hero(Entity, table="rw_heroes"):
    id: int = field(primary_key=True)
    name: str
    team_id: int | None = field(default=None, foreign_key="rw_teams.id", on_delete="set null")
    team: Team | None = relationship(back_populates="heroes")
    powers: list[Power] = relationship(link="HeroPower", back_populates="heroes")
    profile: Profile | None = relationship(back_populates="hero")


class Power(Entity, table="rw_powers"):
    id: int = field(primary_key=True)
    name: str
    heroes: list[Hero] = relationship(link="HeroPower", back_populates="powers")


class HeroPower(Entity, table="rw_hero_powers"):
    hero_id: int = field(primary_key=True, init=True, foreign_key="rw_heroes.id", on_delete="cascade")
    power_id: int = field(primary_key=True, init=True, foreign_key="rw_powers.id", on_delete="cascade")
    level: int = 1


class Profile(Entity, table="rw_profiles"):
    id: int = field(primary_key=True)
    bio: str
    hero_id: int | None = field(default=None, foreign_key="rw_heroes.id", unique=True, on_delete="cascade")
    hero: Hero | None = relationship(back_populates="profile")


class Member(Entity, table="rw_members"):
    id: int = field(primary_key=True)
    name: str
    team_id: int | None = field(default=None, foreign_key="rw_teams.id", on_delete="cascade")
    team: Team | None = relationship(back_populates="members")


class Node(Entity, table="rw_nodes"):
    id: int = field(primary_key=True)
    label: str
    parent_id: int | None = field(default=None, foreign_key="rw_nodes.id", on_delete="cascade")
    parent: Node | None = relationship(fk="parent_id", back_populates="children")
    children: list[Node] = relationship(fk="parent_id", back_populates="parent")


class RwTag(Entity, table="rw_tags"):
    id: int = field(primary_key=True)
    items: list[RwItem] = relationship(link="RwTagging")


class RwItem(Entity, table="rw_items"):
    id: int = field(primary_key=True)


class RwTagging(Entity, table="rw_taggings"):
    tag_id: int = field(primary_key=True, init=True, foreign_key="rw_tags.id")
    item_id: int = field(primary_key=True, init=True, foreign_key="rw_items.id")
    note: str


ALL = (Team, Hero, Power, HeroPower, Profile, Member, Node, RwTag, RwItem, RwTagging)


@pytest.fixture
async def db(pool: aiouow.Pool) -> AsyncIterator[aiouow.Pool]:
    await pool.drop_all(*ALL)
    await pool.create_all(*ALL)
    yield pool
    await pool.drop_all(*ALL)


def counts(s: AsyncSession) -> dict[str, int]:
    return dict(s.stats().statements)


async def rows(pool: aiouow.Pool, sql: str) -> list[tuple[object, ...]]:
    async with AsyncSession(pool) as s:
        return [tuple(r.values()) for r in await s.execute(sql)]


class TestGraphOfNewObjects:
    async def test_teams_heroes_and_powers_go_in_one_flush_parents_first(self, db: aiouow.Pool) -> None:
        flight = Power(name="flight")
        teams = [
            Team(name=f"t{i}", heroes=[Hero(name=f"h{i}-{j}", powers=[flight]) for j in range(3)]) for i in range(4)
        ]
        async with AsyncSession(db) as s:
            s.add_all(teams)  # (the heroes, the power and the link rows come with them)
            assert len(s.new) == 4 + 12 + 1 + 12
            await s.commit()
            assert counts(s).get("insert") == 4  # teams and powers, then heroes, then links: one each
            assert counts(s).get("update", 0) == 0
        for team in teams:
            assert team.id is not None and all(h.team_id == team.id for h in team.heroes)
            assert all(h.team is team and h.powers == [flight] for h in team.heroes)
        assert len(flight.heroes) == 12
        assert await rows(db, "SELECT count(*) FROM rw_heroes h JOIN rw_teams t ON t.id = h.team_id") == [(12,)]
        assert await rows(db, "SELECT count(*) FROM rw_hero_powers") == [(12,)]

    async def test_a_tree_with_generated_keys_goes_in_one_flush_without_updates(self, db: aiouow.Pool) -> None:
        root = Node(label="root", children=[Node(label="a", children=[Node(label="a1")]), Node(label="b")])
        async with AsyncSession(db) as s:
            s.add(root)
            await s.flush()
            assert counts(s).get("insert") == 3 and counts(s).get("update", 0) == 0  # one per level
            a = root.children[0]
            assert a.parent is root and a.parent_id == root.id and a.children[0].parent_id == a.id
            await s.commit()
        found = await rows(
            db, "SELECT n.label AS child, p.label AS parent FROM rw_nodes n LEFT JOIN rw_nodes p ON p.id = n.parent_id"
        )
        assert sorted(found, key=str) == sorted([("root", None), ("a", "root"), ("a1", "a"), ("b", "root")], key=str)

    async def test_init_takes_relationships_and_keeps_both_sides_in_step(self, db: aiouow.Pool) -> None:
        team = Team(name="t")
        hero = Hero(name="h", team=team)
        assert team.heroes == [hero] and hero.team_id is None
        profile = Profile(bio="b", hero=hero)
        assert hero.profile is profile
        async with AsyncSession(db) as s:
            s.add(hero)  # the team and the profile come with it
            assert s.state(team) is aiouow.ObjectState.PENDING and s.state(profile) is aiouow.ObjectState.PENDING
            await s.commit()
        assert hero.team_id == team.id and profile.hero_id == hero.id

    async def test_children_keep_waiting_when_their_parents_collection_is_unloaded(self, db: aiouow.Pool) -> None:
        async with AsyncSession(db) as s:
            old = Hero(name="old")
            s.add(old)
            await s.commit()
            team = Team(name="t", heroes=[Hero(name="a")], members=[Member(name="m")])
            s.add(team)
            old.team_id = None  # a key set by hand unloads every team's heroes (the new team's too)
            old.team_id = 1
            assert not s.is_loaded(team, Team.heroes)
            await s.commit()
            assert team.id is not None
        assert sorted(await rows(db, "SELECT name, team_id FROM rw_heroes")) == [("a", team.id), ("old", 1)]
        assert await rows(db, "SELECT name, team_id FROM rw_members") == [("m", team.id)]

    async def test_a_key_given_by_hand_is_kept_and_a_later_key_wins(self, db: aiouow.Pool) -> None:
        async with AsyncSession(db) as s:
            a, b = Team(name="a"), Team(name="b")
            s.add_all([a, b])
            await s.flush()
            hero = Hero(name="h", team_id=a.id)
            s.add(hero)
            await s.flush()
            assert hero.team_id == a.id and a.heroes == [hero]  # (kept in step with the row)
            c = Team(name="c")
            hero.team = c  # waits for c's key ...
            hero.team_id = b.id  # ... but the key set by hand afterwards wins
            await s.commit()
            assert hero.team_id == b.id and c.id is not None

    async def test_a_cycle_of_generated_keys_is_refused_with_nothing_written(self, db: aiouow.Pool) -> None:
        a = Node(label="a")
        b = Node(label="b", parent=a)
        a.parent = b
        async with AsyncSession(db) as s:
            s.add(a)
            with pytest.raises(SessionError, match="in a cycle"):
                await s.flush()
            assert s.session_state is aiouow.SessionState.IDLE and counts(s).get("insert", 0) == 0
            a.parent = None  # broken: it goes
            await s.commit()
            assert b.parent_id == a.id


class TestReferences:
    async def test_assigning_sets_the_key_and_moves_between_loaded_collections(self, db: aiouow.Pool) -> None:
        async with AsyncSession(db) as s:
            a, b = Team(name="a"), Team(name="b")
            s.add_all([a, b, Hero(name="h", team=a)])
            await s.commit()
        async with AsyncSession(db) as s:
            teams = await s.scalars(select(Team).order_by(Team.id).load(Team.heroes))
            a, b = teams
            hero = a.heroes[0]
            hero.team = b
            assert hero.team_id == b.id and a.heroes == [] and b.heroes == [hero]
            assert s.dirty_fields(hero) == ["team_id"]
            await s.commit()
        async with AsyncSession(db) as s:
            again = await s.get_one(Hero, hero.id)
            assert again.team_id == b.id
            await s.load(again, Hero.team)
            assert again.team is not None and again.team.name == "b"
            again.team = None
            assert again.team_id is None
            await s.commit()
        assert await rows(db, "SELECT team_id FROM rw_heroes") == [(None,)]

    async def test_assigning_while_the_other_side_is_not_loaded_sends_nothing(self, db: aiouow.Pool) -> None:
        async with AsyncSession(db) as s:
            s.add_all([Team(name="a"), Hero(name="h")])
            await s.commit()
        async with AsyncSession(db) as s:
            team, hero = await s.get_one(Team, 1), await s.get_one(Hero, 1)
            before = counts(s)
            hero.team = team
            assert counts(s) == before and not s.is_loaded(team, Team.heroes) and hero.team_id == team.id
            await s.commit()

    async def test_a_one_to_one_replaced_lets_the_old_one_go(self, db: aiouow.Pool) -> None:
        async with AsyncSession(db) as s:
            hero = Hero(name="h", profile=Profile(bio="old"))
            s.add(hero)
            await s.flush()
            old = hero.profile
            assert old is not None and old.hero_id == hero.id
            hero.profile = Profile(bio="new")
            assert old.hero_id is None and old.hero is None
            await s.commit()
        assert sorted(await rows(db, "SELECT bio, hero_id FROM rw_profiles"), key=str) == sorted(
            [("old", None), ("new", hero.id)], key=str
        )

    async def test_wrong_types_and_other_sessions_are_refused(self, db: aiouow.Pool) -> None:
        hero = Hero(name="h")
        with pytest.raises(TypeError, match=r"cannot set Hero\.team of Hero\(.*\) to Power\(.*\): expected Team"):
            hero.team = Power(name="p")  # type: ignore[assignment]
        with pytest.raises(TypeError, match=r"cannot add Team\(.*\) to Hero\.powers: it holds Power objects"):
            hero.powers.append(Team(name="t"))  # type: ignore[arg-type]
        assert hero.powers == [] and hero.team is None
        async with AsyncSession(db) as s, AsyncSession(db) as other:
            s.add(hero)
            team = Team(name="t")
            other.add(team)
            with pytest.raises(SessionError, match="belong to different sessions"):
                hero.team = team
            with pytest.raises(SessionError, match=r"cannot change Team\.heroes of Team\(.*\): .*different sessions"):
                team.heroes.append(hero)
            assert team.heroes == []  # nothing changed
            await s.rollback()
            await other.rollback()


class TestCollections:
    async def test_a_deleted_child_leaves_the_collection_of_a_new_parent(self, db: aiouow.Pool) -> None:
        """Found by the relationship state machine: the child's key still waited for the new
        parent's, so the flush that deleted it did not find the parent by key."""
        async with AsyncSession(db) as s:
            s.add(Hero(name="h"))
            await s.commit()
        async with AsyncSession(db) as s:
            (hero,) = await s.all(Hero)
            team = Team(name="new")
            s.add(team)
            team.heroes.append(hero)
            s.delete(hero)
            await s.commit()
            assert team.heroes == []

    async def test_every_list_change_writes_the_keys(self, db: aiouow.Pool) -> None:
        async with AsyncSession(db) as s:
            team = Team(name="t")
            heroes = [Hero(name=f"h{i}") for i in range(6)]
            s.add_all([team, *heroes])
            await s.commit()
            team.heroes.append(heroes[0])
            team.heroes += [heroes[1], heroes[2]]
            team.heroes.extend([heroes[3]])
            team.heroes.insert(0, heroes[4])
            team.heroes.append(heroes[0])  # (already in: not twice)
            assert [h.name for h in team.heroes] == ["h4", "h0", "h1", "h2", "h3"]
            assert all(h.team is team and h.team_id == team.id for h in team.heroes)
            team.heroes.remove(heroes[1])
            popped = team.heroes.pop()
            del team.heroes[0]
            assert heroes[1].team_id is None and popped.team_id is None and heroes[4].team is None
            team.heroes[0] = heroes[5]  # h0 out, h5 in
            assert heroes[0].team_id is None and heroes[5].team_id == team.id
            team.heroes[1:] = [heroes[1]]
            assert [h.name for h in team.heroes] == ["h5", "h1"]
            await s.commit()
        assert sorted(await rows(db, "SELECT name FROM rw_heroes WHERE team_id IS NOT NULL")) == [("h1",), ("h5",)]
        async with AsyncSession(db) as s:
            again = await s.one(select(Team).load(Team.heroes))
            again.heroes = [h for h in again.heroes if h.name == "h1"]
            await s.commit()
            again.heroes.clear()
            await s.commit()
        assert await rows(db, "SELECT count(*) FROM rw_heroes WHERE team_id IS NOT NULL") == [(0,)]

    async def test_a_delete_orphan_collection_deletes_what_leaves_it(self, db: aiouow.Pool) -> None:
        async with AsyncSession(db) as s:
            team = Team(name="t", members=[Member(name="a"), Member(name="b")])
            s.add(team)
            await s.commit()
            gone = team.members.pop(0)
            assert s.state(gone) is aiouow.ObjectState.DELETED
            fresh = Member(name="c")
            team.members.append(fresh)
            team.members.remove(fresh)  # pending: simply not added
            assert s.state(fresh) is aiouow.ObjectState.TRANSIENT
            await s.commit()
        assert await rows(db, "SELECT name FROM rw_members") == [("b",)]

    async def test_appending_a_transient_object_to_a_held_collection_adds_it(self, db: aiouow.Pool) -> None:
        async with AsyncSession(db) as s:
            team = Team(name="t")
            s.add(team)
            await s.commit()
            hero = Hero(name="h")
            team.heroes.append(hero)
            assert s.state(hero) is aiouow.ObjectState.PENDING
            other = Hero(name="o", team=team)  # (through the other side too)
            assert s.state(other) is aiouow.ObjectState.PENDING
            await s.commit()
        assert await rows(db, "SELECT count(*) FROM rw_heroes WHERE team_id = 1") == [(2,)]

    async def test_replacing_an_unloaded_collection_is_refused(self, db: aiouow.Pool) -> None:
        async with AsyncSession(db) as s:
            s.add(Team(name="t"))
            await s.commit()
        async with AsyncSession(db) as s:
            team = await s.get_one(Team, 1)
            with pytest.raises(NotLoadedError, match=r"cannot replace Team\.heroes .*: it is not loaded"):
                team.heroes = []

    async def test_a_deleted_child_leaves_the_loaded_collection(self, db: aiouow.Pool) -> None:
        async with AsyncSession(db) as s:
            team = Team(name="t", heroes=[Hero(name="a"), Hero(name="b")])
            s.add(team)
            await s.commit()
            s.delete(team.heroes[0])
            await s.commit()
            assert [h.name for h in team.heroes] == ["b"]
            s.delete(team)  # on_delete="set null": the hero keeps no key and no reference
            await s.commit()
            hero = await s.get_one(Hero, 2)
            assert hero.team_id is None and hero.team is None


class TestManyToMany:
    async def test_link_rows_follow_the_collections_on_either_side(self, db: aiouow.Pool) -> None:
        async with AsyncSession(db) as s:
            hero, flight, speed = Hero(name="h"), Power(name="flight"), Power(name="speed")
            s.add_all([hero, flight, speed])
            await s.commit()
            hero.powers.append(flight)
            speed.heroes.append(hero)  # (from the other side)
            assert hero.powers == [flight, speed] and flight.heroes == [hero]
            await s.commit()
            assert await rows(db, "SELECT count(*) FROM rw_hero_powers") == [(2,)]
            hero.powers.remove(flight)
            assert flight.heroes == []
            await s.commit()
        assert await rows(db, "SELECT power_id FROM rw_hero_powers") == [(speed.id,)]

    async def test_unlinking_rows_that_were_never_loaded(self, db: aiouow.Pool) -> None:
        async with AsyncSession(db) as s:
            s.add(Hero(name="h", powers=[Power(name="a"), Power(name="b")]))
            await s.commit()
        async with AsyncSession(db) as s:
            hero = await s.one(select(Hero).load(Hero.powers))
            assert [p.name for p in hero.powers] == ["a", "b"]
            first = hero.powers.pop(0)
            hero.powers.append(first)  # back again: nothing to write
            hero.powers.pop(0)  # "a" leaves for good
            await s.flush()
            await s.rollback()  # ... or not
        assert await rows(db, "SELECT count(*) FROM rw_hero_powers") == [(2,)]
        async with AsyncSession(db) as s:
            hero = await s.one(select(Hero).load(Hero.powers))
            hero.powers.clear()
            await s.commit()
            assert s.state(hero) is aiouow.ObjectState.PERSISTENT
        assert await rows(db, "SELECT count(*) FROM rw_hero_powers") == [(0,)]

    async def test_a_link_entity_that_needs_more_than_its_keys_is_refused(self, db: aiouow.Pool) -> None:
        async with AsyncSession(db) as s:
            tag = RwTag()
            s.add(tag)
            with pytest.raises(SessionError, match="the link entity RwTagging needs values besides its keys"):
                tag.items.append(RwItem())
            assert tag.items == [] and len(s.new) == 1  # nothing changed
            await s.rollback()


class TestRollback:
    async def test_a_rolled_back_graph_can_be_added_again(self, db: aiouow.Pool) -> None:
        team = Team(name="t", heroes=[Hero(name="a")])
        async with AsyncSession(db) as s:
            s.add(team)
            await s.flush()
            assert team.id is not None
            await s.rollback()
            assert team.id is None and s.state(team.heroes[0]) is aiouow.ObjectState.TRANSIENT
            s.add(team)
            await s.commit()
        assert team.heroes[0].team_id == team.id
        assert await rows(db, "SELECT count(*) FROM rw_heroes WHERE team_id IS NOT NULL") == [(1,)]

    async def test_a_rollback_puts_every_relationship_back_exactly(self, db: aiouow.Pool) -> None:
        async with AsyncSession(db) as s:
            a, b = Team(name="a", heroes=[Hero(name="x"), Hero(name="y")]), Team(name="b")
            flight = Power(name="flight")
            a.heroes[0].powers.append(flight)
            s.add_all([a, b])
            await s.commit()
            x, y = a.heroes
            x.team = b  # moved through the relationship
            x.powers.remove(flight)
            newcomer = Hero(name="z")
            a.heroes.append(newcomer)
            y.team_id = b.id  # ... and by its key (which unloads what goes through it)
            assert not s.is_loaded(y, Hero.team) and not s.is_loaded(a, Team.heroes)
            await s.flush()
            s.delete(flight)
            await s.flush()  # (x and flight leave the collections they were in)
            await s.load(b, Team.heroes)
            await s.rollback()
            assert a.heroes == [x, y] and x.team is a and y.team is a and y.team_id == a.id
            assert x.powers == [flight] and flight.heroes == [x]
            assert not s.is_loaded(b, Team.heroes) or b.heroes == []
            assert (
                s.state(newcomer) is aiouow.ObjectState.TRANSIENT and s.state(flight) is aiouow.ObjectState.PERSISTENT
            )
            await s.commit()
