"""Migrations with Alembic: autogenerate sees no difference for tables made by create_all, and a
worked migration (add a column, add an index) proposed by autogenerate, applied, then confirmed by
check_schema, on both dialects."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import aiouow
from aiouow import AsyncSession, Entity, field

pytest.importorskip("alembic", reason="the Alembic integration needs alembic (pip install aiouow[alembic])")

from alembic.autogenerate import compare_metadata, produce_migrations
from alembic.migration import MigrationContext
from alembic.operations import Operations, ops
from sqlalchemy.ext.asyncio import create_async_engine

from aiouow.integrations.alembic import context_options, metadata

from .models import ALL
from .relmodels import REL_ALL


class NoteV1(Entity, table="alembic_notes"):
    id: int = field(primary_key=True)
    title: str
    body: str | None = None


class NoteV2(Entity, table="alembic_notes"):  # the next version of the same table
    id: int = field(primary_key=True)
    title: str = field(index=True)
    body: str | None = None
    due: dt.datetime | None = None


def sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1).replace("sqlite://", "sqlite+aiosqlite://", 1)


async def with_context(url: str, fn: Any) -> Any:
    engine = create_async_engine(sqlalchemy_url(url))
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(lambda sync: fn(MigrationContext.configure(sync, opts=context_options(sync))))
    finally:
        await engine.dispose()


def apply(context: MigrationContext, metadata_: Any, table: str) -> list[str]:
    """Run what autogenerate proposes for ``table`` (as ``alembic upgrade`` would run the generated
    revision; the test database holds other tests' tables, which the metadata does not list)."""
    operations = Operations(context)
    done: list[str] = []

    def run(op: Any) -> None:
        if isinstance(op, ops.ModifyTableOps):
            for sub in op.ops:
                run(sub)
            return
        operations.invoke(op)
        done.append(type(op).__name__)

    for op in produce_migrations(context, metadata_).upgrade_ops.ops:
        if getattr(op, "table_name", None) == table:
            run(op)
    return done


def _other_table(difference: Any) -> bool:
    """A difference about another test's table (in the database, not in the metadata)."""
    item = difference[1] if isinstance(difference, tuple) else None
    table = getattr(item, "table", item)
    return getattr(table, "name", None) != "alembic_notes"


class TestAlembic:
    async def test_autogenerate_sees_no_difference_after_create_all(self, pool: aiouow.Pool, url: str) -> None:
        await pool.drop_all(*REL_ALL)
        await pool.create_all(*REL_ALL)
        try:
            target = metadata(*ALL, *REL_ALL)
            diff = await with_context(url, lambda ctx: compare_metadata(ctx, target))
            ours = {t.name for t in target.sorted_tables}
            assert [d for d in diff if not (d[0] == "remove_table" and d[1].name not in ours)] == []
        finally:
            await pool.drop_all(*REL_ALL)

    async def test_a_worked_migration_add_a_column_and_an_index(self, pool: aiouow.Pool, url: str) -> None:
        await pool.drop_all(NoteV1)
        await pool.create_all(NoteV1)
        try:
            async with AsyncSession(pool) as s:
                s.add(NoteV1(title="before the migration"))
                await s.commit()
            with pytest.raises(aiouow.SchemaError, match="due"):
                await pool.check_schema(NoteV2)
            target = metadata(NoteV2)
            done = await with_context(url, lambda ctx: apply(ctx, target, "alembic_notes"))
            assert sorted(done) == ["AddColumnOp", "CreateIndexOp"]
            await pool.check_schema(NoteV2)  # the tables agree with the new version
            diff = await with_context(url, lambda ctx: compare_metadata(ctx, target))
            assert [d for d in diff if not _other_table(d)] == []
            async with AsyncSession(pool) as s:
                (old,) = await s.all(NoteV2)
                assert old.title == "before the migration" and old.due is None
                old.due = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
                await s.commit()
            async with AsyncSession(pool) as s:
                assert (await s.get_one(NoteV2, old.id)).due == dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
        finally:
            await pool.drop_all(NoteV1)
