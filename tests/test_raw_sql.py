"""Raw SQL: the driver's own placeholders, or ``:name`` placeholders that run on every dialect."""

from __future__ import annotations

import pytest

from aiouow import AsyncSession, QueryError
from aiouow._sqltext import bind_named

from .models import Tag


class TestNamedPlaceholders:
    async def test_the_same_statement_runs_on_every_dialect(self, session: AsyncSession) -> None:
        session.add_all([Tag(code="a", label="one"), Tag(code="b", label="two")])
        rows = await session.execute(
            "SELECT code FROM tags WHERE label = :label OR code = :code OR label = :label ORDER BY code",
            label="two",
            code="a",
        )
        assert rows == [{"code": "a"}, {"code": "b"}]
        await session.execute("UPDATE tags SET label = :new WHERE code = :code", new="uno", code="a")
        assert (await session.get_one(Tag, "a")).label == "one"  # the identity map keeps its object
        assert await session.execute("SELECT label FROM tags WHERE code = :c", c="a") == [{"label": "uno"}]

    async def test_literals_comments_and_casts_are_left_alone(self, session: AsyncSession) -> None:
        session.add(Tag(code="x", label=":label"))
        rows = await session.execute(
            "SELECT code, ':code' AS lit /* :nothing */ FROM tags -- :nor_this\nWHERE label = :label",
            label=":label",
        )
        assert rows == [{"code": "x", "lit": ":code"}]

    async def test_missing_unused_and_mixed_parameters_are_query_errors(self, session: AsyncSession) -> None:
        with pytest.raises(QueryError, match="uses :code but no value was given"):
            await session.execute("SELECT * FROM tags WHERE code = :code", label="x")
        with pytest.raises(QueryError, match="'extra' given but the SQL has no :extra placeholder"):
            await session.execute("SELECT * FROM tags WHERE code = :code", code="x", extra=1)
        with pytest.raises(QueryError, match="positional parameters or :name ones, not both"):
            await session.execute("SELECT * FROM tags WHERE code = :code", "x", code="x")
        assert session.session_state.value == "idle"


class TestBindNamed:
    def test_postgresql_casts_and_dollar_quotes(self) -> None:
        sql, params = bind_named(
            'SELECT :a::text, $$ :b $$, $tag$ :c $tag$, [:d], "col:e", :a', {"a": 1}, lambda i: f"${i}"
        )
        assert sql == 'SELECT $1::text, $$ :b $$, $tag$ :c $tag$, [:d], "col:e", $1'
        assert params == [1]

    def test_a_name_after_a_word_character_is_not_a_placeholder(self) -> None:
        sql, params = bind_named("SELECT x:y, :v", {"v": 2}, lambda i: f"?{i}")
        assert (sql, params) == ("SELECT x:y, ?1", [2])
