"""Load test of the web integration: a service under uvicorn, aiouow next to SQLAlchemy, same endpoints.

    python -m benchmarks.web_load --db sqlite
    python -m benchmarks.web_load --db postgresql://postgres@127.0.0.1:5432/test
    python -m benchmarks.web_load --app notes --db sqlite

Two applications (``--app``), each written twice, on aiouow and on SQLAlchemy's AsyncSession:

- ``heroes`` (the default): the FastAPI heroes API, ``examples/fastapi_app.py`` against
  ``benchmarks/web_sqlalchemy_heroes.py``; workload in ``benchmarks/web_heroes.py`` (creates,
  reads with nested relationships, PATCH, pages of the list, many-to-many grants).
- ``notes``: the Starlette notes service, ``examples/starlette_app.py`` against
  ``benchmarks/web_sqlalchemy_app.py``; workload in ``benchmarks/web_notes.py``.

For each system it starts the service under uvicorn in a subprocess on a free loopback port (the
same uvicorn settings for both), on fresh tables, and drives it with aiohttp's client
(``benchmarks/web_client.py``): 50 workers at a time, 2,000 requests per round. Every response is
checked against what the worker expects (status and JSON), and at the end the whole state is read
back and compared with every worker's. After the last round, ``GET /health`` must report no
connection in use: none leaked. The run fails (exit status 1) on any wrong response, wrong final
state or leaked connection.

It prints requests per second for each system (the median round, after an untimed warm-up), the
latency of a request (p50 and p99 over the timed rounds), and for scale the rate of ``GET /health``,
a route that touches no database: what the HTTP server and client manage on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from . import web_heroes, web_notes
from .web_client import TRANSPORT_ERRORS, Client, LoadError

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Service:
    key: str
    title: str
    command: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class App:
    """An application of the load test: its two services, its tables and its workload."""

    name: str
    services: tuple[Service, ...]
    tables: tuple[str, ...]
    workload: ModuleType

    @classmethod
    def of(cls, workload: ModuleType) -> App:
        services = tuple(Service(*s) for s in workload.SERVICES)
        return cls(workload.__name__.rsplit("_", 1)[-1], services, workload.TABLES, workload)


APPS = {"heroes": App.of(web_heroes), "notes": App.of(web_notes)}


@dataclass(slots=True)
class Round:
    seconds: float
    workers: list[Any]
    #: Seconds each request took, as its worker saw it.
    latencies: list[float]


async def drive(client: Client, app: App, requests: int, concurrency: int, round_no: int) -> Round:
    """``requests`` requests, by ``concurrency`` workers at once."""
    workers = [app.workload.Worker(f"w{i}") for i in range(concurrency)]
    share = [requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)]
    latencies: list[float] = []

    async def run(worker: Any, n: int) -> None:
        for _ in range(n):
            try:
                started = time.perf_counter()
                await app.workload.one_request(client, worker, round_no)
                latencies.append(time.perf_counter() - started)
            except TRANSPORT_ERRORS as exc:
                raise LoadError(f"{worker.name}, request {worker.step}: {type(exc).__name__}: {exc!r}") from exc

    start = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as tg:
            for worker, n in zip(workers, share, strict=True):
                tg.create_task(run(worker, n))
    except* LoadError as group:
        raise group.exceptions[0] from None
    return Round(time.perf_counter() - start, workers, latencies)


async def drive_health(client: Client, requests: int, concurrency: int) -> float:
    """Requests per second of ``GET /health`` (no session, no database): what the HTTP stack allows here."""

    async def run(n: int) -> None:
        for _ in range(n):
            response = await client.get("/health")
            if response.status_code != 200:
                raise LoadError(f"GET /health: expected 200, got {response.status_code}")

    start = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for i in range(concurrency):
            tg.create_task(run(requests // concurrency + (1 if i < requests % concurrency else 0)))
    return requests / (time.perf_counter() - start)


async def check_no_leak(client: Client) -> dict[str, int]:
    """``GET /health`` until no connection is in use (sessions close just after their response)."""
    deadline = time.monotonic() + 5
    while True:
        pool: dict[str, int] = (await client.get("/health")).json()["pool"]
        if pool["in_use"] == 0:
            return pool
        if time.monotonic() > deadline:
            raise LoadError(f"connections leaked: {pool}")
        await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def reset_tables(url: str, tables: tuple[str, ...]) -> None:
    """Drop the application's tables of a PostgreSQL database (each service creates them at startup)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {', '.join(tables)}")
    finally:
        await conn.close()


async def wait_ready(client: Client, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise LoadError(f"the service exited with status {proc.returncode}")
        try:
            if (await client.get("/health")).status_code == 200:
                return
        except TRANSPORT_ERRORS:
            pass
        await asyncio.sleep(0.1)
    raise LoadError("the service did not answer /health within 30 s")


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)  # uvicorn shuts down gracefully: the lifespan closes the pool
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@dataclass(frozen=True, slots=True)
class Result:
    service: Service
    rates: list[float]
    ceiling: float
    latencies: list[float]
    checked: str
    pool: dict[str, int]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    def percentile(self, p: int) -> float:
        """The ``p``-th percentile of the timed requests' latencies, in milliseconds."""
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000


async def run_service(app: App, service: Service, db: str, tmp: Path, args: argparse.Namespace) -> Result:
    if db == "sqlite":
        url = f"sqlite:///{tmp / service.key}.db"
    else:
        url = db
        await reset_tables(url, app.tables)
    port = free_port()
    log = tmp / f"{service.key}.log"
    env = {**os.environ, "AIOUOW_URL": url, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, *service.command, "--port", str(port)]
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(*command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        async with Client(f"http://127.0.0.1:{port}", args.concurrency) as client:
            await wait_ready(client, proc)
            rounds = [(await drive(client, app, args.warmup, args.concurrency, 0)).workers]
            ceiling = await drive_health(client, args.requests, args.concurrency)
            print(f"  {service.key:<10} GET /health: {ceiling:8.0f} requests/s (no database)", flush=True)
            rates: list[float] = []
            latencies: list[float] = []
            for round_no in range(1, args.rounds + 1):
                timed = await drive(client, app, args.requests, args.concurrency, round_no)
                rounds.append(timed.workers)
                rates.append(args.requests / timed.seconds)
                latencies += timed.latencies
                print(f"  {service.key:<10} round {round_no}: {rates[-1]:8.0f} requests/s", flush=True)
            checked = await app.workload.check_state(client, rounds)
            pool = await check_no_leak(client)
    except LoadError as exc:
        await stop(proc)
        output = await asyncio.to_thread(log.read_text)
        raise LoadError(f"{exc}\n--- the service's output (last lines):\n{output[-3000:]}") from None
    finally:
        await stop(proc)
        if db != "sqlite":
            await reset_tables(url, app.tables)
    return Result(service, rates, ceiling, latencies, checked, pool)


async def main(args: argparse.Namespace) -> int:
    db = args.db
    if db != "sqlite" and not db.startswith(("postgresql://", "postgres://")):
        raise SystemExit("--db must be sqlite or postgresql://...")
    where = "SQLite (a temporary file)" if db == "sqlite" else "PostgreSQL"
    app = APPS[args.app]
    print(
        f"the {app.name} application: {args.requests} requests per round, {args.concurrency} at a time, "
        f"{args.rounds} round(s) after {args.warmup} warm-up requests, on {where}; uvicorn in a subprocess, "
        "aiohttp's client here",
        flush=True,
    )
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        for service in app.services:
            try:
                results.append(await run_service(app, service, db, Path(tmp), args))
            except LoadError as exc:
                print(f"FAILED: {service.title}: {exc}", file=sys.stderr)
                return 1
    print()
    print(f"{'service':<38} {'requests/s':>10}  {'(rounds)':<18} {'p50 ms':>7} {'p99 ms':>7} {'/health':>8}  checks")
    for r in results:
        rounds = ", ".join(f"{x:.0f}" for x in r.rates)
        checks = f"{r.checked}, pool {r.pool['size']} open / {r.pool['in_use']} in use"
        print(
            f"{r.service.title:<38} {r.median:>10.0f}  ({rounds:<16}) {r.percentile(50):>7.1f} "
            f"{r.percentile(99):>7.1f} {r.ceiling:>8.0f}  {checks}"
        )
    if len(results) == 2:
        ours, theirs = results
        print(
            f"\naiouow / SQLAlchemy: {ours.median / theirs.median:.2f}x the throughput, p99 "
            f"{ours.percentile(99):.1f} ms vs {theirs.percentile(99):.1f} ms"
        )
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.web_load", description=__doc__)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--app", choices=sorted(APPS), default="heroes", help="the application (default heroes)")
    p.add_argument("--db", default="sqlite", help="sqlite (a temporary file per service) or postgresql://...")
    p.add_argument("--requests", type=int, default=2000, help="requests per round (default 2000)")
    p.add_argument("--concurrency", type=int, default=50, help="requests in flight at once (default 50)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per service (default 3)")
    p.add_argument("--warmup", type=int, default=200, help="untimed requests first (default 200)")
    args = p.parse_args(argv)
    if args.concurrency < 1 or args.requests < args.concurrency or args.rounds < 1 or args.warmup < args.concurrency:
        p.error("need concurrency >= 1, requests >= concurrency, warmup >= concurrency and rounds >= 1")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
