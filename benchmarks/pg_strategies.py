"""``python -m benchmarks.pg_strategies --db postgresql://...``: the PostgreSQL write strategies aiouow chose from.

For each of INSERT (keys returned), UPDATE and DELETE, the ways asyncpg can send a batch, each
on a fresh table, in one transaction on one connection, interleaved per repetition after a
warm-up round; medians and rows per second. aiouow's flush uses the ``unnest`` / ``= ANY``
forms: one statement whose text does not depend on the row count, and no parameter limit.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeAlias

import asyncpg

from .database import PostgresAdmin, Target, parse_target, seed_values
from .machine import Environment, command_line, describe_environment
from .models import renamed, spread_keys
from .page import environment_lines, write_page
from .report import Table
from .runner import Progress
from .system import clock, median, settle

#: PostgreSQL's limit on bind parameters per statement (a 16-bit count).
PG_MAX_PARAMS = 32767
COLUMNS = "name, qty, price, note"
Conn: TypeAlias = "asyncpg.Connection[Any]"
Rows = list[tuple[str, int, Decimal, str | None]]


@dataclass(frozen=True, slots=True)
class Strategy:
    operation: str  # insert, update, delete
    name: str
    keys_returned: bool
    run: Callable[[Conn, Rows, list[int]], Awaitable[tuple[int, list[int] | None]]]  # -> (statements, keys)


async def insert_executemany(conn: Conn, rows: Rows, keys: list[int]) -> tuple[int, list[int] | None]:
    sql = f"INSERT INTO items ({COLUMNS}) VALUES ($1, $2, $3, $4) RETURNING id"
    if hasattr(conn, "fetchmany"):  # asyncpg >= 0.30: executemany that returns rows
        got = await conn.fetchmany(sql, rows)
        return len(rows), [r[0] for r in got]
    await conn.executemany(sql.removesuffix(" RETURNING id"), rows)
    return len(rows), None


async def insert_values(conn: Conn, rows: Rows, keys: list[int]) -> tuple[int, list[int] | None]:
    per = PG_MAX_PARAMS // 4
    out: list[int] = []
    statements = 0
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        groups = ", ".join(f"(${i * 4 + 1}, ${i * 4 + 2}, ${i * 4 + 3}, ${i * 4 + 4})" for i in range(len(chunk)))
        sql = f"INSERT INTO items ({COLUMNS}) VALUES {groups} RETURNING id"
        got = await conn.fetch(sql, *[v for r in chunk for v in r])
        out.extend(sorted(r[0] for r in got))
        statements += 1
    return statements, out


async def insert_unnest(conn: Conn, rows: Rows, keys: list[int]) -> tuple[int, list[int] | None]:
    sql = (
        f"INSERT INTO items ({COLUMNS}) SELECT n, q, p, t "
        "FROM unnest($1::text[], $2::bigint[], $3::numeric[], $4::text[]) WITH ORDINALITY AS u(n, q, p, t, ord) "
        "ORDER BY ord RETURNING id"
    )
    got = await conn.fetch(sql, *(list(col) for col in zip(*rows, strict=True)))
    return 1, sorted(r[0] for r in got)


async def insert_copy(conn: Conn, rows: Rows, keys: list[int]) -> tuple[int, list[int] | None]:
    await conn.copy_records_to_table("items", records=rows, columns=["name", "qty", "price", "note"])
    return 1, None


async def update_executemany(conn: Conn, rows: Rows, keys: list[int]) -> tuple[int, list[int] | None]:
    await conn.executemany("UPDATE items SET name = $1 WHERE id = $2", [(renamed(k), k) for k in keys])
    return len(keys), None


async def update_unnest(conn: Conn, rows: Rows, keys: list[int]) -> tuple[int, list[int] | None]:
    await conn.execute(
        "UPDATE items AS i SET name = u.name FROM unnest($1::bigint[], $2::text[]) AS u(id, name) WHERE i.id = u.id",
        keys,
        [renamed(k) for k in keys],
    )
    return 1, None


async def delete_executemany(conn: Conn, rows: Rows, keys: list[int]) -> tuple[int, list[int] | None]:
    await conn.executemany("DELETE FROM items WHERE id = $1", [(k,) for k in keys])
    return len(keys), None


async def delete_any(conn: Conn, rows: Rows, keys: list[int]) -> tuple[int, list[int] | None]:
    await conn.execute("DELETE FROM items WHERE id = ANY($1::bigint[])", keys)
    return 1, None


STRATEGIES = (
    Strategy("insert", "executemany ... RETURNING (fetchmany)", True, insert_executemany),
    Strategy(
        "insert", f"multi-row VALUES ... RETURNING ({PG_MAX_PARAMS // 4:,} rows per statement)", True, insert_values
    ),
    Strategy("insert", "INSERT ... SELECT FROM unnest(...) WITH ORDINALITY ... RETURNING", True, insert_unnest),
    Strategy("insert", "COPY (copy_records_to_table)", False, insert_copy),
    Strategy("update", "executemany UPDATE ... WHERE id = $2", False, update_executemany),
    Strategy("update", "UPDATE ... FROM unnest($1::bigint[], $2::text[])", False, update_unnest),
    Strategy("delete", "executemany DELETE ... WHERE id = $1", False, delete_executemany),
    Strategy("delete", "DELETE ... WHERE id = ANY($1)", False, delete_any),
)


@dataclass
class StrategyResult:
    strategy: Strategy
    rows: int
    times: list[float]
    statements: int = 0

    @property
    def median(self) -> float:
        return median(self.times)


async def run_strategies(target: Target, rows: int, repeat: int) -> tuple[list[StrategyResult], Environment]:
    admin = await PostgresAdmin.connect(target)
    conn: Conn = await asyncpg.connect(target.location, server_settings=target.server_settings)
    values: Rows = seed_values(rows)
    keys = spread_keys(max(1, rows // 20), rows)
    results = [StrategyResult(s, rows if s.operation == "insert" else len(keys), []) for s in STRATEGIES]
    progress = Progress((repeat + 1) * len(results), "postgresql write strategies")
    try:
        env = describe_environment("postgresql", await admin.server_version())
        for round_ in range(repeat + 1):
            for res in results:
                s = res.strategy
                progress.step(f"{'warm-up' if round_ == 0 else f'round {round_}'}: {s.operation}, {s.name[:24]}")
                await admin.reset(0 if s.operation == "insert" else rows)
                settle()
                started = clock()
                async with conn.transaction():
                    statements, got = await s.run(conn, values, keys)
                elapsed = clock() - started
                if s.keys_returned and got != list(range(1, rows + 1)):
                    raise AssertionError(f"{s.name}: keys returned do not match the rows' order")
                left = await conn.fetchval("SELECT count(*) FROM items")
                expected = rows if s.operation != "delete" else rows - len(keys)
                if left != expected:
                    raise AssertionError(f"{s.name}: {left} rows left, expected {expected}")
                res.statements = statements
                if round_ > 0:
                    res.times.append(elapsed)
                progress.advance()
    finally:
        progress.close()
        await conn.close()
        await admin.drop()
        await admin.close()
    return results, env


def strategies_table(results: list[StrategyResult]) -> Table:
    best: dict[str, float] = {}
    for r in results:
        best[r.strategy.operation] = min(best.get(r.strategy.operation, float("inf")), r.median)
    rows = []
    for r in results:
        s = r.strategy
        rows.append(
            [
                f"{s.operation} {r.rows:,}",
                s.name,
                "yes" if s.keys_returned else ("no" if s.operation == "insert" else "-"),
                f"{r.statements:,}",
                f"{r.median * 1e3:.2f}",
                f"{r.rows / r.median:,.0f}",
                f"{r.median / best[s.operation]:.2f}x",
            ]
        )
    return Table(["operation", "strategy", "keys", "statements", "median ms", "rows/s", "vs fastest"], rows, left=3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pg_strategies", description=__doc__.split("\n", 1)[0])
    p.add_argument("--db", required=True, help="postgresql://...")
    p.add_argument("--rows", type=int, default=20_000, help="rows inserted / in the table (default 20000)")
    p.add_argument("--repeat", type=int, default=5, help="recorded repetitions after the warm-up (default 5)")
    p.add_argument("--out", default=None, help="write (merge) a section into this Markdown report")
    p.add_argument("--durable-commits", action="store_true", help="keep the server's synchronous_commit (default: off)")
    args = p.parse_args(argv)
    target = parse_target(args.db, durable=args.durable_commits)
    if target.dialect != "postgresql":
        p.error("--db must be a postgresql:// URL")
    if args.rows < 100 or args.repeat < 1:
        p.error("--rows must be at least 100 and --repeat at least 1")
    command = command_line("benchmarks.pg_strategies")
    results, env = asyncio.run(run_strategies(target, args.rows, args.repeat))
    table = strategies_table(results)
    print(f"{target.label}: medians of {args.repeat} repetitions after one warm-up round\n")
    print(table.text())
    if args.out:
        body = "\n".join(
            [
                "## PostgreSQL write strategies",
                "",
                "How asyncpg can send a batch of INSERTs (keys returned), UPDATEs and DELETEs; each in one "
                "transaction on a fresh table. aiouow's flush uses the `unnest` and `= ANY` forms.",
                "",
                *environment_lines(
                    env,
                    command,
                    f"- Medians of {args.repeat} repetitions after one warm-up round\n- {target.settings_note}",
                ),
                "",
                table.markdown(),
            ]
        )
        write_page(args.out, "pg-strategies", body + "\n")
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
