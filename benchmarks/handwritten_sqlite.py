"""The floor on SQLite: hand-written aiosqlite code, the fastest correct way we found.

One connection with aiouow's settings (WAL, synchronous=NORMAL, foreign keys on); every
workload in an explicit transaction. INSERTs are multi-row ``VALUES ... RETURNING id`` in
chunks of `INSERT_CHUNK` rows (faster here than executemany plus inferred keys, or larger
chunks); UPDATEs are one executemany; DELETEs one ``IN (...)`` per chunk of keys. Decimals are
stored as exact text, as aiouow stores them.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from typing import Any

import aiosqlite

from .database import open_sqlite
from .models import SELECT_ALL, ItemRow, Values, renamed
from .system import Sample, System, clock, median, settle, traced_bytes

#: Rows per INSERT statement: 100 to 1,000 measure alike here; 5,000 and more are slower.
INSERT_CHUNK = 500
_probe = sqlite3.connect(":memory:")
#: Keys per DELETE statement (the build's host-parameter limit).
DELETE_CHUNK = min(30_000, _probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
_probe.close()

RENAME = "UPDATE items SET name = ? WHERE id = ?"
SET_QTY = "UPDATE items SET qty = ? WHERE id = ?"
GET = "SELECT id, name, qty, price, note FROM items WHERE id = ?"
SELECT_UPTO = f"{SELECT_ALL} WHERE id <= ?"


def _insert_sql(rows: int) -> str:
    return "INSERT INTO items (name, qty, price, note) VALUES " + ", ".join(["(?, ?, ?, ?)"] * rows) + " RETURNING id"


def _identity_map(rows: Any) -> dict[int, ItemRow]:
    return {r[0]: ItemRow(r[0], r[1], r[2], Decimal(r[3]), r[4]) for r in rows}


class HandwrittenSQLite(System):
    key = "hand"
    title = "hand-written (aiosqlite)"

    db: aiosqlite.Connection

    async def open(self) -> None:
        self.db = await open_sqlite(self.target.location)
        self._full_chunk = _insert_sql(INSERT_CHUNK)

    async def close(self) -> None:
        await self.db.close()

    async def insert(self, values: list[Values]) -> Sample:
        objs = [ItemRow(None, *v) for v in values]
        db = self.db
        settle()
        started = clock()
        statements = 0
        await db.execute("BEGIN IMMEDIATE")
        for start in range(0, len(objs), INSERT_CHUNK):
            chunk = objs[start : start + INSERT_CHUNK]
            sql = self._full_chunk if len(chunk) == INSERT_CHUNK else _insert_sql(len(chunk))
            params = [v for o in chunk for v in (o.name, o.qty, str(o.price), o.note)]
            # RETURNING order is unspecified; keys grow in VALUES order, so sorted keys match.
            keys = sorted(r[0] for r in await db.execute_fetchall(sql, params))
            for obj, key in zip(chunk, keys, strict=True):
                obj.id = key
            statements += 1
        await db.execute("COMMIT")
        elapsed = clock() - started
        return Sample(elapsed, statements, [(o.id, o.name) for o in objs])

    async def load(self, n: int) -> Sample:
        db = self.db
        settle()
        started = clock()
        await db.execute("BEGIN")
        found = _identity_map(await db.execute_fetchall(SELECT_ALL))
        await db.execute("COMMIT")
        elapsed = clock() - started
        return Sample(elapsed, 1, [(k, o.name) for k, o in found.items()])

    async def _load_all(self) -> dict[int, ItemRow]:
        await self.db.execute("BEGIN")
        return _identity_map(await self.db.execute_fetchall(SELECT_ALL))

    async def update(self, n: int, keys: list[int]) -> Sample:
        found = await self._load_all()
        settle()
        started = clock()
        changed: list[ItemRow] = []
        for k in keys:
            obj = found[k]
            obj.name = renamed(k)
            changed.append(obj)
        await self.db.executemany(RENAME, [(o.name, o.id) for o in changed])
        await self.db.execute("COMMIT")
        elapsed = clock() - started
        return Sample(elapsed, 1)

    async def delete(self, n: int, keys: list[int]) -> Sample:
        found = await self._load_all()
        settle()
        started = clock()
        gone = [found.pop(k).id for k in keys]
        statements = 0
        for start in range(0, len(gone), DELETE_CHUNK):
            chunk = gone[start : start + DELETE_CHUNK]
            await self.db.execute(f"DELETE FROM items WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
            statements += 1
        await self.db.execute("COMMIT")
        elapsed = clock() - started
        return Sample(elapsed, statements)

    async def get_hit(self, n: int, keys: list[int]) -> Sample:
        found = await self._load_all()
        await self.db.execute("COMMIT")

        async def get(key: int) -> ItemRow | None:
            return found.get(key)

        settle()
        started = clock()
        for k in keys:
            await get(k)
        elapsed = clock() - started
        return Sample(elapsed / len(keys), 0)

    async def request_loop(self, keys: list[int]) -> Sample:
        db = self.db
        settle()
        started = clock()
        for k in keys:
            await db.execute("BEGIN IMMEDIATE")  # read, then write: take the write lock first
            rows = list(await db.execute_fetchall(GET, (k,)))
            r = rows[0]
            obj = ItemRow(r[0], r[1], r[2], Decimal(r[3]), r[4])
            obj.qty += 1
            await db.execute(SET_QTY, (obj.qty, obj.id))
            await db.execute("COMMIT")
        elapsed = clock() - started
        return Sample(elapsed, 2 * len(keys))

    async def flush(self, tracked: int, rounds: list[list[int]]) -> Sample:
        db = self.db
        await db.execute("BEGIN")
        found = _identity_map(await db.execute_fetchall(SELECT_UPTO, (tracked,)))
        times: list[float] = []
        for keys in rounds:
            settle()
            started = clock()
            changed = []
            for k in keys:
                obj = found[k]
                obj.qty += 1
                changed.append(obj)
            await db.executemany(SET_QTY, [(o.qty, o.id) for o in changed])
            times.append(clock() - started)
        await db.execute("COMMIT")
        return Sample(median(times), 1)

    async def memory(self, n: int) -> Sample:
        # For reference: the plainest identity map, one dict per row in a dict by key.
        db = self.db
        await db.execute("BEGIN")

        async def load() -> dict[int, dict[str, Any]]:
            rows = await db.execute_fetchall(SELECT_ALL)
            return {r[0]: {"id": r[0], "name": r[1], "qty": r[2], "price": Decimal(r[3]), "note": r[4]} for r in rows}

        size, found = await traced_bytes(load)
        await db.execute("COMMIT")
        assert len(found) == n
        return Sample(size / n)
