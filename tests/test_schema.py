"""pool.check_schema(*entities): every difference between the entities and the live tables."""

from __future__ import annotations

import datetime as dt

import pytest

import aiouow
from aiouow import AsyncSession, Entity, SchemaError, field

from .models import ALL, OrderLine, Tag, User


class Note(Entity, table="schema_notes"):
    id: int = field(primary_key=True)
    title: str
    body: str | None = None
    due: dt.datetime | None = None


async def raw(pool: aiouow.Pool, *statements: str) -> None:
    async with AsyncSession(pool) as s:
        for sql in statements:
            await s.execute(sql)
        await s.commit()


class TestCheckSchema:
    async def test_tables_made_by_create_all_match(self, pool: aiouow.Pool) -> None:
        await pool.check_schema(*ALL)

    async def test_every_difference_is_listed(self, pool: aiouow.Pool) -> None:
        await pool.drop_all(Note)
        text = "text" if pool.dialect == "postgresql" else "TEXT"
        await raw(
            pool,
            # (created by hand as an older version of Note: no "due", a nullable title, an extra column)
            f"CREATE TABLE schema_notes (id {'bigint' if pool.dialect == 'postgresql' else 'INTEGER'} PRIMARY KEY, "
            f"title {text}, body {'integer' if pool.dialect == 'postgresql' else 'INTEGER'}, legacy {text} NOT NULL)",
        )
        try:
            with pytest.raises(SchemaError) as info:
                await pool.check_schema(Note, Tag)
            found = info.value.differences
            assert found == [
                "column schema_notes.title (Note.title) allows NULL, the entity needs NOT NULL",
                f"column schema_notes.body (Note.body) is {'integer' if pool.dialect == 'postgresql' else 'INTEGER'}, "
                f"the entity needs {text}",
                "column schema_notes.due (Note.due) does not exist",
                "column schema_notes.legacy exists in the table, but Note has no field for it",
            ]
            assert "4 way(s)" in str(info.value) and "migration" in str(info.value)
        finally:
            await pool.drop_all(Note)

    async def test_a_missing_table_and_a_different_key(self, pool: aiouow.Pool) -> None:
        await pool.drop_all(OrderLine)
        await raw(
            pool,
            "CREATE TABLE order_lines (order_id INTEGER NOT NULL, line INTEGER NOT NULL PRIMARY KEY, "
            "sku TEXT NOT NULL, qty INTEGER NOT NULL)",
        )
        with pytest.raises(SchemaError) as info:
            await pool.check_schema(OrderLine, Note, User)
        found = info.value.differences
        assert "the primary key of order_lines is (line), OrderLine declares (order_id, line)" in found
        assert "table 'schema_notes' of Note does not exist" in found
        assert not [d for d in found if "users" in d]
