"""Faults of a replicated PostgreSQL under load: a failover, and a replica that stops.

    python -m benchmarks.failover [--workers 8] [--seconds 3]

It makes its own servers (``benchmarks/pgcluster.py``: a primary with ``initdb``, standbys with
``pg_basebackup -R``, on free loopback ports; removed at the end) and runs two scenarios:

- **failover**: ``workers`` tasks insert rows with keys of their own through ``run_transaction``
  on a multi-host URL (``target_session_attrs=read-write``), synchronous replication on. After
  1 s the primary is stopped (``-m immediate``: a crash), 0.3 s later the standby is promoted
  (``pg_ctl promote``), and the load goes on for ``seconds``. Reported: commits, retries by error
  class, unknown outcomes, failures, the time from the crash to the first commit on the new
  primary, and the check that every committed row is there exactly once.
- **replica down**: ``workers`` tasks read through a pool with two replicas; after 1 s one
  replica is stopped. Reported: reads per server, and errors (there should be none).
- **routing cost**: sessions one after another, reading (a count) and writing (an insert,
  committed), on a pool with two replicas and on the same primary without them.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections import Counter

import asyncpg

import aiouow
from aiouow import AsyncSession, Entity, field, run_transaction, select

from .pgcluster import Cluster


class Receipt(Entity, table="failover_receipts"):
    key: int = field(primary_key=True, init=True)
    note: str


async def failover(workers: int, seconds: float) -> bool:
    cluster = Cluster.create(standbys=1)
    try:
        old, new = cluster.primary, cluster.standbys[0]
        admin = await asyncpg.connect(old.url)  # (ALTER SYSTEM runs outside a transaction)
        try:
            await admin.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            await admin.execute("SELECT pg_reload_conf()")
        finally:
            await admin.close()
        url = (
            f"postgresql://postgres@127.0.0.1:{old.port},127.0.0.1:{new.port}/postgres?target_session_attrs=read-write"
        )
        committed: dict[int, float] = {}
        unknown: set[int] = set()
        failed: Counter[str] = Counter()
        retries: Counter[str] = Counter()
        keys = iter(range(1, 10**9))
        stop = asyncio.Event()
        crashed_at = 0.0

        def on_retry(attempt: int, error: Exception) -> None:
            retries[type(error).__name__] += 1

        async with aiouow.create_pool(url, max_size=workers, acquire_timeout=30) as pool:
            await pool.create_all(Receipt)

            async def worker() -> None:
                while not stop.is_set():
                    key = next(keys)

                    async def write(s: AsyncSession, key: int = key) -> None:
                        s.add(Receipt(key=key, note="x"))

                    try:
                        await run_transaction(
                            pool, write, retries=100, backoff=0.05, max_backoff=0.5, on_retry=on_retry
                        )
                        committed[key] = time.monotonic()
                    except aiouow.CommitOutcomeUnknownError:
                        unknown.add(key)
                    except aiouow.AiouowError as exc:
                        failed[type(exc).__name__] += 1

            tasks = [asyncio.create_task(worker()) for _ in range(workers)]
            await asyncio.sleep(1.0)
            before = len(committed)
            crashed_at = time.monotonic()
            await asyncio.to_thread(cluster.stop, old, "immediate")
            await asyncio.sleep(0.3)
            await asyncio.to_thread(cluster.promote, new)
            promoted_at = time.monotonic()
            await asyncio.sleep(seconds)
            stop.set()
            await asyncio.gather(*tasks)
            async with AsyncSession(pool) as s:
                stored = [r[0] for r in await s.rows(select(Receipt.key))]
        times = sorted(committed.values())
        # The outage as the writers saw it: the longest time without any commit.
        outage = max((b - a for a, b in itertools.pairwise(times)), default=float("nan"))
        lost = set(committed) - set(stored)
        doubled = len(stored) - len(set(stored))
        phantom = set(stored) - set(committed) - unknown
        print("failover (primary crashed with -m immediate, standby promoted 0.3 s later)")
        print(f"  {workers} writers; commits: {before} before the crash, {len(committed) - before} after")
        print(f"  retries by error: {dict(retries) or 'none'}; unknown outcomes: {len(unknown)}")
        print(f"  failed: {dict(failed) or 'none'}")
        print(f"  longest time without a commit (the outage the writers saw): {outage:.2f} s")
        print(f"  the promotion command returned {promoted_at - crashed_at:.2f} s after the crash")
        print(f"  committed rows missing: {len(lost)}; stored twice: {doubled}; stored, not reported: {len(phantom)}")
        return not lost and not doubled and not phantom and not failed
    finally:
        cluster.destroy()


async def replica_down(workers: int, seconds: float) -> bool:
    cluster = Cluster.create(standbys=2)
    try:
        reached: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        stop = asyncio.Event()
        replicas = [s.url for s in cluster.standbys]
        async with aiouow.create_pool(cluster.primary.url, replicas=replicas, max_size=workers) as pool:
            await pool.create_all(Receipt)
            for standby in cluster.standbys:
                await cluster.wait_replayed(standby)

            async def reader() -> None:
                while not stop.is_set():
                    try:
                        async with AsyncSession(pool) as s:
                            await s.count(select(Receipt))
                            tx = s._tx
                            reached["primary" if tx is None or tx.replica is None else tx.replica.name] += 1
                    except aiouow.AiouowError as exc:
                        errors[type(exc).__name__] += 1

            tasks = [asyncio.create_task(reader()) for _ in range(workers)]
            await asyncio.sleep(1.0)
            await asyncio.to_thread(cluster.stop, cluster.standbys[1], "immediate")
            stopped = dict(reached)
            await asyncio.sleep(seconds)
            stop.set()
            await asyncio.gather(*tasks)
        print("replica down (one of two standbys crashed with -m immediate mid-load)")
        print(f"  reads per server before the crash: {stopped}")
        print(f"  reads per server in all: {dict(reached)}; errors: {dict(errors) or 'none'}")
        return not errors
    finally:
        cluster.destroy()


async def routing_cost(sessions: int) -> None:
    """What routing costs a session, one at a time: reads (a count) and writes (an insert, committed),
    on a pool with two replicas against the same primary without them."""
    cluster = Cluster.create(standbys=2)
    try:
        async with aiouow.create_pool(cluster.primary.url) as plain:
            await plain.create_all(Receipt)
        for standby in cluster.standbys:
            await cluster.wait_replayed(standby)
        replicas = [s.url for s in cluster.standbys]
        keys = iter(range(1, 10**9))
        print(f"routing cost ({sessions} sessions one after another, medians of 5 rounds, ms per session)")
        for label, kwargs in (("primary only", {}), ("two replicas", {"replicas": replicas})):
            async with aiouow.create_pool(cluster.primary.url, **kwargs) as pool:  # type: ignore[arg-type]

                async def reads() -> None:
                    async with AsyncSession(pool) as s:
                        await s.count(select(Receipt))

                async def writes() -> None:
                    async with AsyncSession(pool) as s:
                        s.add(Receipt(key=next(keys), note="x"))
                        await s.commit()

                figures = []
                for what in (reads, writes):
                    rounds = []
                    for _ in range(6):
                        started = time.perf_counter()
                        for _ in range(sessions):
                            await what()
                        rounds.append((time.perf_counter() - started) / sessions * 1000)
                    figures.append(sorted(rounds[1:])[2])  # (the first round warms up)
                print(f"  {label:<13} read session {figures[0]:.3f} ms, write session {figures[1]:.3f} ms")
    finally:
        cluster.destroy()


async def main(args: argparse.Namespace) -> int:
    ok = await failover(args.workers, args.seconds)
    ok = await replica_down(args.workers, args.seconds) and ok
    await routing_cost(args.sessions)
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.failover", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="load after the fault (default 3)")
    parser.add_argument("--sessions", type=int, default=500, help="sessions per round of the routing cost")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
