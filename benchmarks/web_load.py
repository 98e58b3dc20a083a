"""Load test of the web integration: the Starlette notes service under uvicorn, aiouow next to SQLAlchemy.

    python -m benchmarks.web_load --db sqlite
    python -m benchmarks.web_load --db postgresql://postgres@127.0.0.1:5432/test

For each system (``examples/starlette_app.py`` on aiouow's `SessionMiddleware`, and
``benchmarks/web_sqlalchemy_app.py``, the same service on SQLAlchemy's AsyncSession), it starts
the service under uvicorn in a subprocess on a free loopback port, on a fresh ``notes`` table,
and drives it with httpx: 50 workers at a time, each creating notes, reading them back and
updating them (2 creates, 5 gets and 3 updates in every 10 requests), 2,000 requests per round.

Every response is checked against what the worker expects (status and JSON), and at the end of
each round the whole table is read back through ``GET /notes`` and compared with every worker's
notes. After the last round, ``GET /health`` must report no connection in use: none leaked. The
run fails (exit status 1) on any wrong response, wrong final state or leaked connection.

It prints requests per second for each system (the median round, after an untimed warm-up), and
for scale the rate of ``GET /health``, a route that touches no database: what the HTTP server
and client manage on this machine.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
#: Per 10 requests of a worker: 2 creates, 5 gets, 3 updates (a worker starts with a create).
PATTERN = ("create", "get", "update", "get", "get", "create", "update", "get", "update", "get")


@dataclass(frozen=True, slots=True)
class Service:
    key: str
    title: str
    command: tuple[str, ...]


SERVICES = (
    Service("aiouow", "aiouow (SessionMiddleware)", ("examples/starlette_app.py",)),
    Service("sqlalchemy", "SQLAlchemy AsyncSession", ("-m", "benchmarks.web_sqlalchemy_app")),
)


class LoadError(Exception):
    """A response, the final state or the pool was not what it must be."""


@dataclass(slots=True)
class Worker:
    """One of the concurrent clients: its notes, as it expects the service to hold them."""

    name: str
    notes: dict[int, dict[str, Any]] = field(default_factory=dict)
    created: int = 0
    step: int = 0


def expect(response: httpx.Response, status: int, body: dict[str, Any] | None, what: str) -> dict[str, Any]:
    if response.status_code != status:
        raise LoadError(f"{what}: expected {status}, got {response.status_code}: {response.text[:200]}")
    if body is None:
        return {}
    data: dict[str, Any] = response.json()
    got = {k: data.get(k) for k in body}
    if got != body:
        raise LoadError(f"{what}: expected {body}, got {got}")
    return data


async def one_request(client: httpx.AsyncClient, worker: Worker, round_no: int) -> None:
    op = PATTERN[worker.step % len(PATTERN)]
    worker.step += 1
    ids = sorted(worker.notes)
    if op == "create":
        title = f"r{round_no}-{worker.name}-{worker.created}"
        worker.created += 1
        payload = {"title": title, "body": "new"}
        response = await client.post("/notes", json=payload)
        note = expect(response, 201, {**payload, "done": False}, f"POST /notes {title}")
        if not isinstance(note.get("id"), int) or note["id"] in worker.notes:
            raise LoadError(f"POST /notes {title}: bad id {note.get('id')!r}")
        worker.notes[note["id"]] = {"id": note["id"], "title": title, "body": "new", "done": False}
    elif op == "get":
        note_id = ids[worker.step % len(ids)]
        response = await client.get(f"/notes/{note_id}")
        expect(response, 200, worker.notes[note_id], f"GET /notes/{note_id}")
    else:
        note_id = ids[(worker.step * 7) % len(ids)]
        change = {"body": f"v{worker.step}", "done": worker.step % 2 == 0}
        response = await client.patch(f"/notes/{note_id}", json=change)
        worker.notes[note_id] = {**worker.notes[note_id], **change}
        expect(response, 200, worker.notes[note_id], f"PATCH /notes/{note_id}")


async def drive(
    client: httpx.AsyncClient, requests: int, concurrency: int, round_no: int
) -> tuple[float, list[Worker]]:
    """``requests`` requests, by ``concurrency`` workers at once; returns the seconds taken and the workers."""
    workers = [Worker(f"w{i}") for i in range(concurrency)]
    share = [requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)]

    async def run(worker: Worker, n: int) -> None:
        for _ in range(n):
            try:
                await one_request(client, worker, round_no)
            except httpx.HTTPError as exc:
                raise LoadError(f"{worker.name}, request {worker.step}: {type(exc).__name__}: {exc!r}") from exc

    start = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as tg:
            for worker, n in zip(workers, share, strict=True):
                tg.create_task(run(worker, n))
    except* LoadError as group:
        raise group.exceptions[0] from None
    return time.perf_counter() - start, workers


async def drive_health(client: httpx.AsyncClient, requests: int, concurrency: int) -> float:
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


async def check_state(client: httpx.AsyncClient, workers_by_round: list[list[Worker]]) -> int:
    """Every note every worker made, with its last values, and no other note; returns how many."""
    expected = {n["id"]: n for ws in workers_by_round for w in ws for n in w.notes.values()}
    response = await client.get("/notes")
    if response.status_code != 200:
        raise LoadError(f"GET /notes: expected 200, got {response.status_code}")
    actual = {n["id"]: {k: n[k] for k in ("id", "title", "body", "done")} for n in response.json()}
    if actual != expected:
        missing = sorted(expected.keys() - actual.keys())[:5]
        extra = sorted(actual.keys() - expected.keys())[:5]
        wrong = [i for i in expected.keys() & actual.keys() if expected[i] != actual[i]][:5]
        raise LoadError(f"final state differs: missing {missing}, unexpected {extra}, wrong values {wrong}")
    return len(actual)


async def check_no_leak(client: httpx.AsyncClient) -> dict[str, int]:
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


async def reset_table(url: str) -> None:
    """Drop the ``notes`` table of a PostgreSQL database (each service creates it at startup)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP TABLE IF EXISTS notes")
    finally:
        await conn.close()


async def wait_ready(client: httpx.AsyncClient, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise LoadError(f"the service exited with status {proc.returncode}")
        try:
            if (await client.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
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
    notes: int
    pool: dict[str, int]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


async def run_service(service: Service, db: str, tmp: Path, args: argparse.Namespace) -> Result:
    if db == "sqlite":
        url = f"sqlite:///{tmp / service.key}.db"
    else:
        url = db
        await reset_table(url)
    port = free_port()
    log = tmp / f"{service.key}.log"
    env = {**os.environ, "AIOUOW_URL": url, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, *service.command, "--port", str(port), "--no-access-log"]
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(*command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    # uvicorn closes a connection idle for 5 s; reusing one idle nearly that long races with the close.
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency, keepalive_expiry=2.0
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as client:
            await wait_ready(client, proc)
            rounds: list[list[Worker]] = []
            _, warm = await drive(client, args.warmup, args.concurrency, 0)
            rounds.append(warm)
            ceiling = await drive_health(client, args.requests, args.concurrency)
            print(f"  {service.key:<10} GET /health: {ceiling:8.0f} requests/s (no database)", flush=True)
            rates = []
            for round_no in range(1, args.rounds + 1):
                seconds, workers = await drive(client, args.requests, args.concurrency, round_no)
                rounds.append(workers)
                rates.append(args.requests / seconds)
                print(f"  {service.key:<10} round {round_no}: {args.requests / seconds:8.0f} requests/s", flush=True)
            notes = await check_state(client, rounds)
            pool = await check_no_leak(client)
    except LoadError as exc:
        await stop(proc)
        output = await asyncio.to_thread(log.read_text)
        raise LoadError(f"{exc}\n--- the service's output (last lines):\n{output[-3000:]}") from None
    finally:
        await stop(proc)
        if db != "sqlite":
            await reset_table(url)
    return Result(service, rates, ceiling, notes, pool)


async def main(args: argparse.Namespace) -> int:
    db = args.db
    if db != "sqlite" and not db.startswith(("postgresql://", "postgres://")):
        raise SystemExit("--db must be sqlite or postgresql://...")
    where = "SQLite (a temporary file)" if db == "sqlite" else "PostgreSQL"
    print(
        f"{args.requests} requests per round, {args.concurrency} at a time, {args.rounds} round(s) after "
        f"{args.warmup} warm-up requests, on {where}; uvicorn in a subprocess, httpx here",
        flush=True,
    )
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        for service in SERVICES:
            try:
                results.append(await run_service(service, db, Path(tmp), args))
            except LoadError as exc:
                print(f"FAILED: {service.title}: {exc}", file=sys.stderr)
                return 1
    print()
    print(f"{'service':<28} {'requests/s':>10}  {'(rounds)':<22} {'/health':>8}  checks")
    for r in results:
        rounds = ", ".join(f"{x:.0f}" for x in r.rates)
        checks = f"{r.notes} notes as expected, pool {r.pool['size']} open / {r.pool['in_use']} in use"
        print(f"{r.service.title:<28} {r.median:>10.0f}  ({rounds:<20}) {r.ceiling:>8.0f}  {checks}")
    if len(results) == 2:
        print(f"\naiouow / SQLAlchemy: {results[0].median / results[1].median:.2f}x the throughput")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.web_load", description=__doc__)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
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
