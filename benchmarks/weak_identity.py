"""``python -m benchmarks.weak_identity --db sqlite|postgresql://...``: peak memory of a worker that
streams a table of 1,000,000 rows and keeps none of the objects, with ``identity_map="strong"``
(the default: every object stays until the session ends) and ``identity_map="weak"``.

Each mode runs in a fresh Python process (the peak RSS of a process only grows), after the table is
filled once with the driver's bulk path; the figure is that process's peak resident set size
(``VmHWM``), next to the same process's RSS before the stream began.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import aiouow
from aiouow import AsyncSession, Entity, field, select

TABLE = "bench_stream_rows"


class StreamRow(Entity, table=TABLE):
    id: int = field(primary_key=True, init=True)
    name: str
    n: int


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _rss_mib() -> float:
    return _status_mib("VmRSS")


def _peak_mib() -> float:
    # VmHWM, not getrusage's ru_maxrss: a child started by fork and exec inherits its parent's
    # ru_maxrss (here, the parent's million records), while VmHWM starts again with the new program.
    return _status_mib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def fill(url: str, rows: int) -> None:
    async with aiouow.create_pool(url) as pool:
        await pool.drop_all(StreamRow)
        await pool.create_all(StreamRow)
    records = [(i, f"row {i}", i % 97) for i in range(1, rows + 1)]
    if url.startswith("postgresql"):
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            await conn.copy_records_to_table(TABLE, records=records, columns=["id", "name", "n"])
        finally:
            await conn.close()
    else:
        import sqlite3

        path = url.removeprefix("sqlite:///")
        db = sqlite3.connect(path)
        with db:
            db.executemany(f"INSERT INTO {TABLE} (id, name, n) VALUES (?, ?, ?)", records)
        db.close()


async def stream(url: str, mode: str, batch_size: int) -> dict[str, float]:
    async with aiouow.create_pool(url) as pool, AsyncSession(pool, identity_map=mode) as s:
        before = _rss_mib()
        started = time.perf_counter()
        total = seen = 0
        async for row in s.stream(select(StreamRow), batch_size=batch_size):
            total += row.n
            seen += 1
        elapsed = time.perf_counter() - started
        held = len(s)
    return {"rows": seen, "held": held, "rss_before": before, "peak": _peak_mib(), "seconds": elapsed, "sum": total}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--db", default="sqlite", help="sqlite (a temporary file) or postgresql://...")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)  # (the mode, in a child process)
    p.add_argument("--url", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(stream(args.url, args.child, args.batch_size))))
        return
    tmp = tempfile.TemporaryDirectory()
    url = args.db if args.db != "sqlite" else f"sqlite:///{os.path.join(tmp.name, 'stream.db')}"
    asyncio.run(fill(url, args.rows))
    results = {}
    for mode in ("strong", "weak"):
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.weak_identity", "--child", mode, "--url", url,
             "--batch-size", str(args.batch_size)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    assert results["strong"]["sum"] == results["weak"]["sum"]
    print(f"{args.rows:,} rows streamed, none kept ({'PostgreSQL' if url.startswith('postgresql') else 'SQLite'}):")
    print(f"{'identity_map':14} {'held at end':>12} {'RSS before':>11} {'peak RSS':>10} {'growth':>9} {'seconds':>8}")
    for mode, r in results.items():
        growth = r["peak"] - r["rss_before"]
        print(
            f"{mode:14} {int(r['held']):>12,} {r['rss_before']:>8.1f} MiB {r['peak']:>6.1f} MiB"
            f" {growth:>5.1f} MiB {r['seconds']:>8.2f}"
        )
    if url.startswith("postgresql"):
        asyncio.run(_drop(url))
    tmp.cleanup()


async def _drop(url: str) -> None:
    async with aiouow.create_pool(url) as pool:
        await pool.drop_all(StreamRow)


if __name__ == "__main__":
    main()
