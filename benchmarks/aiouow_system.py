"""aiouow, used as its documentation shows: sessions, ``add_all``, ``get``, ``delete``, ``commit``."""

from __future__ import annotations

import aiouow
from aiouow import AsyncSession, SessionStats, select

from .models import Item, Values, renamed
from .system import Sample, System, clock, median, settle, traced_bytes


def data_statements(stats: SessionStats) -> int:
    """Statements other than BEGIN, COMMIT, ROLLBACK (and DDL)."""
    return sum(n for kind, n in stats.statements.items() if kind != "other")


class AiouowSystem(System):
    key = "aiouow"
    title = "aiouow"

    pool: aiouow.Pool

    async def open(self) -> None:
        # aiouow's own pool (on PostgreSQL, an asyncpg pool with 1 to 10 connections and the same
        # statement cache as the hand-written code's); the run's server settings go in the URL.
        self.pool = await aiouow.create_pool(self.target.aiouow_url)

    async def close(self) -> None:
        await self.pool.close()

    async def _loaded(self) -> tuple[AsyncSession, dict[int, Item]]:
        """A session holding every row (untimed preparation), and its objects by key."""
        s = AsyncSession(self.pool)
        return s, {o.id: o for o in await s.all(Item)}

    async def insert(self, values: list[Values]) -> Sample:
        objs = [Item(name=name, qty=qty, price=price, note=note) for name, qty, price, note in values]
        s = AsyncSession(self.pool)
        settle()
        started = clock()
        s.add_all(objs)
        await s.commit()
        elapsed = clock() - started
        await s.close()
        return Sample(elapsed, data_statements(s.stats()), [(o.id, o.name) for o in objs])

    async def load(self, n: int) -> Sample:
        settle()
        started = clock()
        s = AsyncSession(self.pool)
        objs = await s.all(Item)
        await s.close()
        elapsed = clock() - started
        return Sample(elapsed, data_statements(s.stats()), [(o.id, o.name) for o in objs])

    async def update(self, n: int, keys: list[int]) -> Sample:
        s, by_key = await self._loaded()
        before = data_statements(s.stats())
        settle()
        started = clock()
        for k in keys:
            by_key[k].name = renamed(k)
        await s.commit()
        elapsed = clock() - started
        await s.close()
        return Sample(elapsed, data_statements(s.stats()) - before)

    async def delete(self, n: int, keys: list[int]) -> Sample:
        s, by_key = await self._loaded()
        before = data_statements(s.stats())
        settle()
        started = clock()
        for k in keys:
            s.delete(by_key[k])
        await s.commit()
        elapsed = clock() - started
        await s.close()
        return Sample(elapsed, data_statements(s.stats()) - before)

    async def get_hit(self, n: int, keys: list[int]) -> Sample:
        s, by_key = await self._loaded()
        assert len(by_key) == n
        before = data_statements(s.stats())
        get = s.get
        settle()
        started = clock()
        for k in keys:
            await get(Item, k)
        elapsed = clock() - started
        statements = data_statements(s.stats()) - before
        await s.close()
        return Sample(elapsed / len(keys), statements)

    async def request_loop(self, keys: list[int]) -> Sample:
        pool = self.pool
        sessions: list[AsyncSession] = []  # kept for their statistics, read after the timing
        settle()
        started = clock()
        for k in keys:
            async with AsyncSession(pool) as s:
                item = await s.get(Item, k)
                assert item is not None
                item.qty += 1
                await s.commit()
            sessions.append(s)
        elapsed = clock() - started
        return Sample(elapsed, sum(data_statements(s.stats()) for s in sessions))

    async def flush(self, tracked: int, rounds: list[list[int]]) -> Sample:
        s = AsyncSession(self.pool)
        by_key = {o.id: o for o in await s.scalars(select(Item).where(Item.id <= tracked))}
        assert len(by_key) == tracked
        before = data_statements(s.stats())
        times: list[float] = []
        for keys in rounds:
            settle()
            started = clock()
            for k in keys:
                by_key[k].qty += 1
            await s.flush()
            times.append(clock() - started)
        statements = data_statements(s.stats()) - before
        await s.commit()
        await s.close()
        return Sample(median(times), statements // len(rounds))

    async def memory(self, n: int) -> Sample:
        s = AsyncSession(self.pool)
        await s.execute("SELECT 1")  # the connection and its transaction are not the objects' cost

        async def load() -> list[Item]:
            return await s.all(Item)

        size, objs = await traced_bytes(load)
        assert len(objs) == n
        await s.close()
        return Sample(size / n)
