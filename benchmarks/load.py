"""``python -m benchmarks.load --db sqlite|postgresql://...``: concurrent sessions contending for rows.

1,000 concurrent sessions over a pool of 10 each lock one of a few counter rows with
``get(..., for_update=True)``, increment it and commit. The run checks that no update was lost and
no connection leaked, and reports throughput and the wait to acquire a connection (p50, p99, max).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from typing import Any

import aiouow
from aiouow import AsyncSession, Entity, field


class Counter(Entity, table="bench_counters"):
    id: int = field(primary_key=True, init=True)
    value: int = 0


async def run(url: str, sessions: int, pool_size: int, rows: int) -> dict[str, float]:
    async with aiouow.create_pool(url, max_size=pool_size, acquire_timeout=300) as pool:
        await pool.drop_all(Counter)
        await pool.create_all(Counter)
        async with AsyncSession(pool) as s:
            s.add_all(Counter(id=i) for i in range(rows))
            await s.commit()

        waits: list[float] = []
        driver: Any = pool.driver
        real_acquire = driver.acquire

        async def timed_acquire() -> Any:
            started = time.perf_counter()
            conn = await real_acquire()
            waits.append(time.perf_counter() - started)
            return conn

        driver.acquire = timed_acquire

        async def bump(n: int) -> None:
            async with AsyncSession(pool) as s:
                counter = await s.get_one(Counter, n % rows, for_update=True)
                counter.value += 1
                await s.commit()

        started = time.perf_counter()
        await asyncio.gather(*(bump(n) for n in range(sessions)))
        elapsed = time.perf_counter() - started
        driver.acquire = real_acquire

        async with AsyncSession(pool) as s:
            total = sum(c.value for c in await s.all(Counter))
        stats = pool.stats()
        await pool.drop_all(Counter)
    if total != sessions:
        raise SystemExit(f"lost updates: {sessions - total} of {sessions}")
    if stats.in_use:
        raise SystemExit(f"leaked connections: {stats}")
    waits.sort()
    return {
        "transactions/s": sessions / elapsed,
        "seconds": elapsed,
        "acquire p50 ms": statistics.median(waits) * 1000,
        "acquire p99 ms": waits[int(len(waits) * 0.99) - 1] * 1000,
        "acquire max ms": waits[-1] * 1000,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__)
    p.add_argument("--db", default="sqlite", help="sqlite (a temporary file) or postgresql://...")
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--pool-size", type=int, default=10)
    p.add_argument("--rows", type=int, default=10, help="counter rows the sessions contend for")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{os.path.join(tmp, 'load.db')}" if args.db == "sqlite" else args.db
        result = asyncio.run(run(url, args.sessions, args.pool_size, args.rows))
    dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
    print(f"{args.sessions} sessions, pool of {args.pool_size}, {args.rows} contended rows, {dialect}:")
    print("  no lost update, no leaked connection")
    for name, value in result.items():
        print(f"  {name:>16}: {value:10.2f}")


if __name__ == "__main__":
    main()
