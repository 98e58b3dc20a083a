"""SQLAlchemy 2.x ORM through its AsyncSession (``expire_on_commit=False``), on asyncpg or aiosqlite.

Importing this module fails with ImportError when SQLAlchemy (or greenlet) is missing; the
runner then shows "n/a" in its column.
"""

from __future__ import annotations

import importlib.util
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Dialect, Integer, Numeric, Text, event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from .database import SQLITE_PRAGMAS
from .models import TABLE, Values, renamed
from .system import Sample, System, clock, median, settle, traced_bytes

if importlib.util.find_spec("greenlet") is None:  # SQLAlchemy's asyncio extension needs it
    raise ImportError("SQLAlchemy's asyncio support needs greenlet: pip install 'sqlalchemy[asyncio]'")


class DecimalText(TypeDecorator[Decimal]):
    """Decimals as exact text on SQLite, as aiouow and the hand-written code store them."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class Base(DeclarativeBase):
    pass


class SAItem(Base):
    """The declarative model equivalent to ``models.Item`` (the table is made by the runner)."""

    __tablename__ = TABLE

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    qty: Mapped[int] = mapped_column(BigInteger)
    price: Mapped[Decimal] = mapped_column(Numeric().with_variant(DecimalText(), "sqlite"))
    note: Mapped[str | None] = mapped_column(Text, default=None)


class SQLAlchemySystem(System):
    key = "sqlalchemy"
    title = "SQLAlchemy"

    engine: AsyncEngine
    maker: async_sessionmaker[AsyncSession]

    async def open(self) -> None:
        connect_args: dict[str, Any] = {}
        if self.target.dialect == "postgresql":
            connect_args["server_settings"] = self.target.server_settings
        self.engine = create_async_engine(self.target.sqlalchemy_url, connect_args=connect_args)
        self.statements = 0
        sync_engine = self.engine.sync_engine
        if self.target.dialect == "sqlite":

            @event.listens_for(sync_engine, "connect")
            def _pragmas(dbapi_connection: Any, record: Any) -> None:
                cursor = dbapi_connection.cursor()
                for pragma in SQLITE_PRAGMAS:
                    cursor.execute(pragma)
                cursor.close()

        @event.listens_for(sync_engine, "before_cursor_execute")
        def _count(*args: Any) -> None:
            self.statements += 1

        self.maker = async_sessionmaker(self.engine, expire_on_commit=False)

    async def close(self) -> None:
        await self.engine.dispose()

    async def _loaded(self, tracked: int | None = None) -> tuple[AsyncSession, dict[int, SAItem]]:
        s = self.maker()
        stmt = select(SAItem) if tracked is None else select(SAItem).where(SAItem.id <= tracked)
        return s, {o.id: o for o in (await s.scalars(stmt)).all()}

    async def insert(self, values: list[Values]) -> Sample:
        objs = [SAItem(name=name, qty=qty, price=price, note=note) for name, qty, price, note in values]
        s = self.maker()
        before = self.statements
        settle()
        started = clock()
        s.add_all(objs)
        await s.commit()
        elapsed = clock() - started
        statements = self.statements - before
        await s.close()
        return Sample(elapsed, statements, [(o.id, o.name) for o in objs])

    async def load(self, n: int) -> Sample:
        before = self.statements
        settle()
        started = clock()
        async with self.maker() as s:
            objs = (await s.scalars(select(SAItem))).all()
        elapsed = clock() - started
        return Sample(elapsed, self.statements - before, [(o.id, o.name) for o in objs])

    async def update(self, n: int, keys: list[int]) -> Sample:
        s, by_key = await self._loaded()
        before = self.statements
        settle()
        started = clock()
        for k in keys:
            by_key[k].name = renamed(k)
        await s.commit()
        elapsed = clock() - started
        statements = self.statements - before
        await s.close()
        return Sample(elapsed, statements)

    async def delete(self, n: int, keys: list[int]) -> Sample:
        s, by_key = await self._loaded()
        before = self.statements
        settle()
        started = clock()
        for k in keys:
            await s.delete(by_key[k])
        await s.commit()
        elapsed = clock() - started
        statements = self.statements - before
        await s.close()
        return Sample(elapsed, statements)

    async def get_hit(self, n: int, keys: list[int]) -> Sample:
        s, by_key = await self._loaded()
        assert len(by_key) == n
        before = self.statements
        get = s.get
        settle()
        started = clock()
        for k in keys:
            await get(SAItem, k)
        elapsed = clock() - started
        statements = self.statements - before
        await s.close()
        return Sample(elapsed / len(keys), statements)

    async def request_loop(self, keys: list[int]) -> Sample:
        maker = self.maker
        before = self.statements
        settle()
        started = clock()
        for k in keys:
            async with maker() as s:
                item = await s.get(SAItem, k)
                assert item is not None
                item.qty += 1
                await s.commit()
        elapsed = clock() - started
        return Sample(elapsed, self.statements - before)

    async def flush(self, tracked: int, rounds: list[list[int]]) -> Sample:
        s, by_key = await self._loaded(tracked)
        assert len(by_key) == tracked
        before = self.statements
        times: list[float] = []
        for keys in rounds:
            settle()
            started = clock()
            for k in keys:
                by_key[k].qty += 1
            await s.flush()
            times.append(clock() - started)
        statements = self.statements - before
        await s.commit()
        await s.close()
        return Sample(median(times), statements // len(rounds))

    async def memory(self, n: int) -> Sample:
        s = self.maker()
        await s.execute(text("SELECT 1"))  # the connection and its transaction are not the objects' cost

        async def load() -> list[SAItem]:
            return list((await s.scalars(select(SAItem))).all())

        size, objs = await traced_bytes(load)
        assert len(objs) == n
        await s.close()
        return Sample(size / n)
