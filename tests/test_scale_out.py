"""Scale-out on PostgreSQL, against real servers: a primary and streaming standbys made by the test
(``tests/pgcluster.py``): routing, read-your-writes with a lagging replica, a replica down, a
demoted primary, and a failover under load."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import aiouow
from aiouow import AsyncSession, ConnectionLostError, Entity, field, run_transaction, select
from aiouow.integrations.starlette import SessionMiddleware, get_session
from benchmarks.pgcluster import Cluster, pg_bin


class Ledger(Entity, table="scale_ledger"):
    id: int = field(primary_key=True)
    note: str


class Receipt(Entity, table="scale_receipts"):
    """A key chosen by the writer, so that a write done twice would collide."""

    key: int = field(primary_key=True, init=True)
    note: str


def where(s: AsyncSession) -> str:
    """The server the session's open transaction runs on: "primary" or the replica's URL."""
    tx = s._tx
    assert tx is not None, "no transaction is open"
    return "primary" if tx.replica is None else tx.replica.name


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if pg_bin() is None:
        reason = "the PostgreSQL server programs (initdb, pg_basebackup) are not installed"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    made = Cluster.create(standbys=2)
    yield made
    made.destroy()


@pytest.fixture
async def pool(cluster: Cluster) -> AsyncIterator[aiouow.Pool]:
    replicas = [s.url for s in cluster.standbys]
    async with aiouow.create_pool(cluster.primary.url, replicas=replicas, max_size=4) as p:
        await p.drop_all(Ledger)
        await p.create_all(Ledger)
        for standby in cluster.standbys:
            await cluster.wait_replayed(standby)
        yield p


async def set_delay(cluster: Cluster, delay: str) -> None:
    """Make every standby apply WAL ``delay`` late (``recovery_min_apply_delay``)."""
    for standby in cluster.standbys:
        conn = await asyncpg.connect(standby.url)
        try:
            await conn.execute(f"ALTER SYSTEM SET recovery_min_apply_delay = '{delay}'")
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()


class TestRouting:
    async def test_reads_go_to_the_replicas_in_turn(self, pool: aiouow.Pool, cluster: Cluster) -> None:
        reached = set()
        for _ in range(4):
            async with AsyncSession(pool) as s:
                assert await s.count(select(Ledger)) == 0
                reached.add(where(s))
        assert reached == set(pool.replicas) and len(reached) == 2
        async with AsyncSession(pool, read_only=True) as s:  # raw SQL of a read-only session too
            rows = await s.execute("SELECT inet_server_port() AS port, pg_is_in_recovery() AS standby")
            assert rows[0]["standby"] is True
            assert rows[0]["port"] in {st.port for st in cluster.standbys}

    async def test_the_first_write_moves_the_transaction_to_the_primary(self, pool: aiouow.Pool) -> None:
        async with AsyncSession(pool) as s:
            assert await s.count(select(Ledger)) == 0
            assert where(s) != "primary"
            s.add(Ledger(note="first"))
            await s.flush()
            assert where(s) == "primary"
            assert await s.count(select(Ledger)) == 1  # the rest of the transaction reads its own write
            assert pool.node_stats()["primary"].in_use == 1
            assert all(stats.in_use == 0 for name, stats in pool.node_stats().items() if name != "primary")
            await s.commit()
            token = s.commit_token
            assert token is not None and "/" in token
            assert await s.count(select(Ledger)) == 1  # and after its commit: no stale read of it

    async def test_locking_reads_raw_sql_and_savepoints_run_on_the_primary(self, pool: aiouow.Pool) -> None:
        async with AsyncSession(pool) as s:
            await s.scalars(select(Ledger).for_update())
            assert where(s) == "primary"
        async with AsyncSession(pool) as s:
            await s.execute("SELECT 1 AS one")
            assert where(s) == "primary"
        async with AsyncSession(pool) as s:
            async with s.begin_nested():
                assert where(s) == "primary"

    async def test_a_write_during_a_stream_from_a_replica_ends_the_stream(self, pool: aiouow.Pool) -> None:
        async with AsyncSession(pool) as s:
            s.add_all(Ledger(note=str(i)) for i in range(5))
            await s.commit()
        async with AsyncSession(pool) as s:
            stream = s.stream(select(Ledger).order_by(Ledger.id), batch_size=2)
            first = await anext(stream)
            assert where(s) != "primary"
            first.note = "changed"
            await s.flush()  # the first write: the transaction moves to the primary
            await anext(stream)  # (the rest of the batch already read)
            with pytest.raises(aiouow.SessionError, match="read replica, and a write moved"):
                await anext(stream)
            await stream.aclose()

    async def test_a_stricter_isolation_keeps_the_whole_transaction_on_the_primary(self, pool: aiouow.Pool) -> None:
        async with AsyncSession(pool, isolation="repeatable read") as s:
            await s.count(select(Ledger))
            assert where(s) == "primary"
        async with AsyncSession(pool, isolation="repeatable read", read_only=True) as s:
            await s.count(select(Ledger))  # read-only: it never moves, and a standby keeps its snapshot
            assert where(s) != "primary"
        async with AsyncSession(pool, isolation="serializable", read_only=True) as s:
            await s.count(select(Ledger))  # a standby refuses serializable transactions
            assert where(s) == "primary"


class TestReadYourWrites:
    async def test_after_a_token_reads_wait_for_a_replica_that_has_it(
        self, pool: aiouow.Pool, cluster: Cluster
    ) -> None:
        await set_delay(cluster, "1500ms")
        try:
            async with AsyncSession(pool) as s:
                s.add(Ledger(note="written"))
                await s.commit()
                token = s.commit_token
            assert token is not None
            async with AsyncSession(pool) as stale:  # no token: a lagging replica, a stale read
                assert await stale.count(select(Ledger)) == 0
                assert where(stale) != "primary"
            async with AsyncSession(pool, after=token) as fresh:  # 1 s is not enough: the primary
                assert await fresh.count(select(Ledger)) == 1
                assert where(fresh) == "primary"
                fresh.add(Ledger(note="by the parent"))
                await fresh.commit()
                async with fresh.fork() as child:  # a fork reads what its parent committed
                    assert await child.count(select(Ledger)) == 2
            async with aiouow.create_pool(
                cluster.primary.url, replicas=pool.replicas, read_your_writes_timeout=10
            ) as patient:
                async with AsyncSession(patient, after=token) as waited:  # a replica, once it has it
                    assert await waited.count(select(Ledger)) == 1
                    assert where(waited) != "primary"
        finally:
            await set_delay(cluster, "0")

    async def test_a_bad_token_is_refused(self, pool: aiouow.Pool) -> None:
        with pytest.raises(aiouow.ConfigurationError, match="commit token"):
            AsyncSession(pool, after="yesterday")


class TestFaults:
    async def test_a_replica_that_is_down_is_skipped(self, pool: aiouow.Pool, cluster: Cluster) -> None:
        down = cluster.standbys[1]
        async with AsyncSession(pool) as s:  # (a connection to each replica is pooled)
            await s.count(select(Ledger))
        cluster.stop(down)
        try:
            reached = set()
            for _ in range(6):
                async with AsyncSession(pool) as s:
                    assert await s.count(select(Ledger)) == 0  # no error reaches the session
                    reached.add(where(s))
            assert down.url not in reached and reached
        finally:
            cluster.start(down)

    async def test_a_replica_that_dies_under_load(self, pool: aiouow.Pool, cluster: Cluster) -> None:
        """Readers in a loop; one replica is killed in the middle: no read fails, and the reads go on."""
        dying = cluster.standbys[0]
        stop = asyncio.Event()
        reached: list[str] = []

        async def reader() -> None:
            while not stop.is_set():
                async with AsyncSession(pool) as s:
                    assert await s.count(select(Ledger)) == 0
                    reached.append(where(s))

        readers = [asyncio.create_task(reader()) for _ in range(4)]
        try:
            await asyncio.sleep(0.3)
            await asyncio.to_thread(cluster.stop, dying, "immediate")
            killed_at = len(reached)
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*readers)  # (a failed read would raise here)
            after = reached[killed_at + 8 :]  # (reads already past their first statement then)
            assert after and dying.url not in after
        finally:
            stop.set()
            cluster.start(dying)

    async def test_a_url_that_names_a_standby_as_the_primary(self, cluster: Cluster) -> None:
        async with aiouow.create_pool(cluster.standbys[0].url, max_size=2) as wrong:
            async with AsyncSession(wrong) as s:
                s.add(Ledger(note="nowhere"))
                with pytest.raises(ConnectionLostError, match=r"no longer the primary.*25006"):
                    await s.commit()
            assert wrong.stats().in_use == 0


class TestConfiguration:
    async def test_replicas_are_for_postgresql(self, tmp_path: object) -> None:
        with pytest.raises(aiouow.ConfigurationError, match="PostgreSQL only"):
            aiouow.create_pool("sqlite://:memory:", replicas=["postgresql://x@127.0.0.1/db"])
        with pytest.raises(aiouow.ConfigurationError, match="list of URLs"):
            aiouow.create_pool("postgresql://x@127.0.0.1/db", replicas="postgresql://x@127.0.0.1/db")  # type: ignore[arg-type]

    async def test_a_replica_down_when_the_pool_opens(self, cluster: Cluster) -> None:
        nowhere = "postgresql://postgres@127.0.0.1:1/postgres"
        async with aiouow.create_pool(cluster.primary.url, replicas=[nowhere]) as p:
            async with AsyncSession(p) as s:
                await s.execute("SELECT 1 AS one")
                assert await s.count(select(Ledger)) >= 0
                assert where(s) == "primary"


@pytest.fixture
def failover_cluster() -> Iterator[Cluster]:
    if pg_bin() is None:
        pytest.skip("the PostgreSQL server programs are not installed")
    made = Cluster.create(standbys=1)
    yield made
    made.destroy()


async def test_failover_under_load(failover_cluster: Cluster) -> None:
    """The primary stops in the middle of a load; the standby is promoted. No committed write is lost
    or doubled, every failed commit says so, and the pool ends healthy on the new primary."""
    cluster = failover_cluster
    old, new = cluster.primary, cluster.standbys[0]
    conn = await asyncpg.connect(old.url)
    try:  # synchronous replication: a commit is acknowledged once the standby has it
        await conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()
    url = f"postgresql://postgres@127.0.0.1:{old.port},127.0.0.1:{new.port}/postgres?target_session_attrs=read-write"
    committed: set[int] = set()
    unknown: set[int] = set()
    failed: dict[str, int] = {}
    async with aiouow.create_pool(url, max_size=5, acquire_timeout=20) as pool:
        await pool.create_all(Receipt)
        stop = asyncio.Event()
        next_id = iter(range(1, 1_000_000))

        async def worker() -> None:
            while not stop.is_set():
                key = next(next_id)

                async def write(s: AsyncSession, key: int = key) -> None:
                    s.add(Receipt(key=key, note=f"row {key}"))

                try:
                    await run_transaction(pool, write, retries=50, backoff=0.05, max_backoff=0.5)
                    committed.add(key)
                except aiouow.CommitOutcomeUnknownError:
                    unknown.add(key)
                except aiouow.AiouowError as exc:
                    failed[type(exc).__name__] = failed.get(type(exc).__name__, 0) + 1

        workers = [asyncio.create_task(worker()) for _ in range(8)]
        await asyncio.sleep(1.0)
        before = len(committed)
        await asyncio.to_thread(cluster.stop, old, "immediate")
        await asyncio.sleep(0.3)
        await asyncio.to_thread(cluster.promote, new)
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*workers)
        assert len(committed) > before  # it went on after the failover
        async with AsyncSession(pool) as s:  # healthy on the new primary
            s.add(Receipt(key=999_999_999, note="after"))
            await s.commit()
            rows = await s.rows(select(Receipt.key))
    stored = [r[0] for r in rows]
    assert len(stored) == len(set(stored))  # none doubled (it is the key, so the database says so too)
    assert committed <= set(stored)  # no committed write lost
    assert set(stored) - {999_999_999} <= committed | unknown  # nothing stored that was reported failed
    assert not failed, failed


def notes_app(pool: aiouow.Pool) -> Starlette:
    async def write(request: Request) -> JSONResponse:
        get_session(request).add(Ledger(note="from a request"))
        return JSONResponse({}, status_code=201)

    async def count(request: Request) -> JSONResponse:
        return JSONResponse({"count": await get_session(request).count(select(Ledger))})

    return Starlette(
        routes=[Route("/write", write, methods=["POST"]), Route("/count", count)],
        middleware=[Middleware(SessionMiddleware, pool=pool)],
    )


class TestIntegrationsCarryTheToken:
    async def test_starlette_a_client_reads_its_own_writes(self, pool: aiouow.Pool, cluster: Cluster) -> None:
        await set_delay(cluster, "1500ms")
        try:
            transport = httpx.ASGITransport(app=notes_app(pool))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                written = await client.post("/write")
                token = written.headers["x-aiouow-after"]
                assert f"aiouow_after={token}" in written.headers["set-cookie"]
                assert "HttpOnly" in written.headers["set-cookie"]
                assert (await client.get("/count")).json() == {"count": 1}  # (the cookie came back)
                async with httpx.AsyncClient(transport=transport, base_url="http://test") as other:
                    assert (await other.get("/count")).json() == {"count": 0}  # another client: a lagging replica
                    header = {"X-Aiouow-After": token}
                    assert (await other.get("/count", headers=header)).json() == {"count": 1}
                    assert (await other.get("/count", headers={"X-Aiouow-After": "junk"})).status_code == 200
        finally:
            await set_delay(cluster, "0")

    async def test_aiohttp_a_client_reads_its_own_writes(self, pool: aiouow.Pool, cluster: Cluster) -> None:
        from aiohttp import web
        from aiohttp.test_utils import TestClient, TestServer

        from aiouow.integrations import aiohttp as integration

        async def write(request: web.Request) -> web.Response:
            integration.get_session(request).add(Ledger(note="from a request"))
            return web.json_response({}, status=201)

        async def count(request: web.Request) -> web.Response:
            return web.json_response({"count": await integration.get_session(request).count(select(Ledger))})

        app = web.Application()
        integration.setup(app, pool)
        app.router.add_post("/write", write)
        app.router.add_get("/count", count)
        await set_delay(cluster, "1500ms")
        try:
            async with TestClient(TestServer(app)) as client:
                written = await client.post("/write")
                token = written.headers["X-Aiouow-After"]
                assert written.cookies["aiouow_after"].value == token
                assert await (await client.get("/count")).json() == {"count": 1}
                fresh = await client.get("/count", headers={"X-Aiouow-After": token}, cookies={"aiouow_after": ""})
                assert await fresh.json() == {"count": 1}
        finally:
            await set_delay(cluster, "0")


async def test_a_rolled_back_test_reads_its_own_writes_on_a_pool_with_replicas(pool: aiouow.Pool) -> None:
    """aiouow.testing sends everything to the primary's rolled-back transaction (a replica would not see it)."""
    from aiouow.testing import rollback

    async with rollback(pool):
        async with AsyncSession(pool) as s:
            s.add(Ledger(note="in the test"))
            await s.commit()
        async with AsyncSession(pool) as s:
            assert await s.count(select(Ledger)) == 1
            assert where(s) == "primary"
    async with AsyncSession(pool) as s:
        assert await s.count(select(Ledger)) == 0
