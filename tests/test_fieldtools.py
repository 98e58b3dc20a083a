"""`aiouow.fields`, `aiouow.asdict`, `aiouow.update`, and SQLModel's spelling of a generated key."""

from __future__ import annotations

import pytest

import aiouow
from aiouow import AsyncSession, DataError, Entity, field

from .models import User
from .relmodels import Hero


class SqlModelHero(Entity, table="fieldtools_heroes"):
    id: int | None = field(default=None, primary_key=True)
    name: str
    secret_name: str
    age: int | None = None


class Versioned(Entity, table="fieldtools_versioned"):
    id: int = field(primary_key=True)
    name: str
    version: int = field(version=True)


class TestFieldsAndAsdict:
    def test_fields_in_column_order_without_relationships(self) -> None:
        assert aiouow.fields(Hero) == ("id", "name", "team_id")
        assert aiouow.fields(Hero(name="x")) == ("id", "name", "team_id")

    def test_asdict_include_exclude_and_json_copies(self) -> None:
        user = User(name="ann", email="a@example.org", profile={"tags": ["x"]})
        d = aiouow.asdict(user, exclude=["created"])
        assert list(d) == ["id", "name", "email", "active", "profile"]
        d["profile"]["tags"].append("y")  # type: ignore[index]
        assert user.profile == {"tags": ["x"]}  # a copy: the object did not change
        assert aiouow.asdict(user, include=["name", "email"]) == {"name": "ann", "email": "a@example.org"}
        with pytest.raises(AttributeError, match="'nmae'"):
            aiouow.asdict(user, include=["nmae"])

    def test_not_an_entity(self) -> None:
        with pytest.raises(aiouow.MappingError):
            aiouow.fields(dict)


class TestUpdate:
    async def test_a_partial_update_is_written_at_the_next_flush(self, pool: aiouow.Pool) -> None:
        async with AsyncSession(pool) as s:
            s.add(User(name="ann", email="a@example.org"))
            await s.commit()
            user = await s.get_one(User, 1)
            assert aiouow.update(user, {"name": "anne", "active": False}) is user
            assert s.dirty_fields(user) == ["name", "active"]
            await s.commit()
        async with AsyncSession(pool) as s:
            again = await s.get_one(User, 1)
            assert (again.name, again.active, again.email) == ("anne", False, "a@example.org")

    def test_unknown_keys_set_nothing_and_are_named(self) -> None:
        hero = Hero(name="x")
        with pytest.raises(AttributeError, match=r"'nmae', 'team' are not fields of Hero \(team: a relationship"):
            aiouow.update(hero, {"name": "y", "nmae": "z", "team": None})
        assert hero.name == "x"

    def test_a_changed_key_or_version_is_a_data_error_and_sets_nothing(self) -> None:
        user = User(name="ann", email="a@example.org")
        user.__dict__["id"] = 7  # (as after a flush)
        with pytest.raises(DataError, match="primary key field 'id' would change from 7 to 8") as info:
            aiouow.update(user, {"name": "b", "id": 8})
        assert info.value.field == "id" and user.name == "ann"
        aiouow.update(user, {"id": 7, "name": "b"})  # the same key: no change
        with pytest.raises(DataError, match="version field"):
            aiouow.update(Versioned(name="v"), {"version": 3})

    def test_not_a_mapping(self) -> None:
        with pytest.raises(TypeError, match="expected a mapping"):
            aiouow.update(Hero(name="x"), [("name", "y")])  # type: ignore[arg-type]


class TestSqlModelKey:
    async def test_int_or_none_default_none_is_a_generated_key(self, pool: aiouow.Pool) -> None:
        await pool.drop_all(SqlModelHero)
        await pool.create_all(SqlModelHero)
        try:
            async with AsyncSession(pool) as s:
                generated = SqlModelHero(name="Deadpond", secret_name="Dive Wilson")
                given = SqlModelHero(id=50, name="Rusty-Man", secret_name="Tommy Sharp")
                assert generated.id is None
                s.add_all([generated, given])
                await s.commit()
                assert isinstance(generated.id, int) and given.id == 50
            async with AsyncSession(pool) as s:
                assert sorted(h.name for h in await s.all(SqlModelHero)) == ["Deadpond", "Rusty-Man"]
                if pool.dialect == "postgresql":  # the column is NOT NULL (SQLite: NULL asks for a rowid)
                    with pytest.raises(aiouow.NotNullViolationError):
                        await s.execute("INSERT INTO fieldtools_heroes (id, name, secret_name) VALUES (NULL, 'x', 'y')")
        finally:
            await pool.drop_all(SqlModelHero)
