"""The floor on PostgreSQL: hand-written asyncpg code, the fastest correct way we know.

One statement per batch, whatever the row count: INSERT ... SELECT FROM unnest(...) WITH
ORDINALITY ... RETURNING, UPDATE ... FROM unnest(...), DELETE ... = ANY($1). Objects are slotted
dataclasses kept in a dict by key (a minimal identity map); the code itself knows what it changed.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from .models import SELECT_ALL, ItemRow, Values, renamed
from .system import Sample, System, clock, median, settle, traced_bytes

INSERT = (
    "INSERT INTO items (name, qty, price, note) SELECT n, q, p, t "
    "FROM unnest($1::text[], $2::bigint[], $3::numeric[], $4::text[]) WITH ORDINALITY AS u(n, q, p, t, ord) "
    "ORDER BY ord RETURNING id"
)
RENAME = "UPDATE items AS i SET name = u.name FROM unnest($1::bigint[], $2::text[]) AS u(id, name) WHERE i.id = u.id"
SET_QTY = "UPDATE items AS i SET qty = u.qty FROM unnest($1::bigint[], $2::bigint[]) AS u(id, qty) WHERE i.id = u.id"
DELETE = "DELETE FROM items WHERE id = ANY($1::bigint[])"
GET = "SELECT id, name, qty, price, note FROM items WHERE id = $1"
UPDATE_QTY = "UPDATE items SET qty = $1 WHERE id = $2"
SELECT_UPTO = f"{SELECT_ALL} WHERE id <= $1"


def _identity_map(rows: list[asyncpg.Record]) -> dict[int, ItemRow]:
    return {r[0]: ItemRow(r[0], r[1], r[2], r[3], r[4]) for r in rows}


class HandwrittenPostgres(System):
    key = "hand"
    title = "hand-written (asyncpg)"

    pool: asyncpg.Pool[Any]

    async def open(self) -> None:
        # The same pool aiouow opens: asyncpg's, one connection kept, up to ten.
        self.pool = await asyncpg.create_pool(
            self.target.location, min_size=1, max_size=10, server_settings=self.target.server_settings
        )

    async def close(self) -> None:
        await self.pool.close()

    async def insert(self, values: list[Values]) -> Sample:
        objs = [ItemRow(None, *v) for v in values]
        settle()
        started = clock()
        names = [o.name for o in objs]
        qtys = [o.qty for o in objs]
        prices = [o.price for o in objs]
        notes = [o.note for o in objs]
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(INSERT, names, qtys, prices, notes)
        # Identity values are drawn in row order: sorted keys match the objects' order.
        for obj, key in zip(objs, sorted(r[0] for r in rows), strict=True):
            obj.id = key
        elapsed = clock() - started
        return Sample(elapsed, 1, [(o.id, o.name) for o in objs])

    async def load(self, n: int) -> Sample:
        settle()
        started = clock()
        async with self.pool.acquire() as conn, conn.transaction():
            found = _identity_map(await conn.fetch(SELECT_ALL))
        elapsed = clock() - started
        return Sample(elapsed, 1, [(k, o.name) for k, o in found.items()])

    async def update(self, n: int, keys: list[int]) -> Sample:
        async with self.pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            found = _identity_map(await conn.fetch(SELECT_ALL))
            settle()
            started = clock()
            changed: list[ItemRow] = []
            for k in keys:
                obj = found[k]
                obj.name = renamed(k)
                changed.append(obj)
            await conn.execute(RENAME, [o.id for o in changed], [o.name for o in changed])
            await tx.commit()
        # Released inside the timing, as insert and load are, and as aiouow's commit() does.
        elapsed = clock() - started
        return Sample(elapsed, 1)

    async def delete(self, n: int, keys: list[int]) -> Sample:
        async with self.pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            found = _identity_map(await conn.fetch(SELECT_ALL))
            settle()
            started = clock()
            gone = [found.pop(k).id for k in keys]
            await conn.execute(DELETE, gone)
            await tx.commit()
        elapsed = clock() - started  # released inside the timing, like the others
        return Sample(elapsed, 1)

    async def get_hit(self, n: int, keys: list[int]) -> Sample:
        async with self.pool.acquire() as conn, conn.transaction():
            found = _identity_map(await conn.fetch(SELECT_ALL))

        async def get(key: int) -> ItemRow | None:
            return found.get(key)

        settle()
        started = clock()
        for k in keys:
            await get(k)
        elapsed = clock() - started
        return Sample(elapsed / len(keys), 0)

    async def request_loop(self, keys: list[int]) -> Sample:
        pool = self.pool
        settle()
        started = clock()
        for k in keys:
            async with pool.acquire() as conn, conn.transaction():
                r = await conn.fetchrow(GET, k)
                assert r is not None
                obj = ItemRow(r[0], r[1], r[2], r[3], r[4])
                obj.qty += 1
                await conn.execute(UPDATE_QTY, obj.qty, obj.id)
        elapsed = clock() - started
        return Sample(elapsed, 2 * len(keys))

    async def flush(self, tracked: int, rounds: list[list[int]]) -> Sample:
        times: list[float] = []
        async with self.pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            found = _identity_map(await conn.fetch(SELECT_UPTO, tracked))
            for keys in rounds:
                settle()
                started = clock()
                changed = []
                for k in keys:
                    obj = found[k]
                    obj.qty += 1
                    changed.append(obj)
                await conn.execute(SET_QTY, [o.id for o in changed], [o.qty for o in changed])
                times.append(clock() - started)
            await tx.commit()
        return Sample(median(times), 1)

    async def memory(self, n: int) -> Sample:
        # For reference: the plainest identity map, one dict per row in a dict by key.
        async with self.pool.acquire() as conn, conn.transaction():

            async def load() -> dict[int, dict[str, Any]]:
                return {r[0]: dict(r.items()) for r in await conn.fetch(SELECT_ALL)}

            size, found = await traced_bytes(load)
            assert len(found) == n
        return Sample(size / n)
