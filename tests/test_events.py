"""Events: session, pool and entity targets; sync and async listeners; what a listener may change,
what its exception does, re-entrancy, and cancellation during a listener."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import aiouow
from aiouow import AsyncSession, ConfigurationError, Entity, ObjectState, SessionError, SessionState, event, field

from .faults import assert_clean, fault_url, interrupt


class Post(Entity, table="ev_posts"):
    id: int = field(primary_key=True)
    title: str
    stamp: str | None = None


class Audit(Entity, table="ev_audit"):
    id: int = field(primary_key=True)
    what: str


@pytest.fixture
async def epool(url: str) -> AsyncIterator[aiouow.Pool]:
    async with aiouow.create_pool(fault_url(url), max_size=3, cleanup_timeout=2.0) as pool:
        await pool.drop_all(Post, Audit)
        await pool.create_all(Post, Audit)
        yield pool
        await pool.drop_all(Post, Audit)


@pytest.fixture
def on_post() -> Iterator[list[tuple[str, Any]]]:
    """Entity listeners on Post for the test (class-wide: removed afterwards)."""
    added: list[tuple[str, Any]] = []
    yield added
    for name, fn in added:
        event.remove(Post, name, fn)


async def titles(pool: aiouow.Pool) -> list[str]:
    async with AsyncSession(pool) as s:
        return sorted(p.title for p in await s.all(Post))


class TestSessionEvents:
    async def test_before_flush_changes_are_written_by_the_same_flush(self, epool: aiouow.Pool) -> None:
        async with AsyncSession(epool) as s:

            @event.listens_for(s, "before_flush")
            def audit(session: AsyncSession) -> None:
                for obj in session.new:
                    if isinstance(obj, Post):
                        session.add(Audit(what=f"new post {obj.title}"))
                        obj.stamp = "stamped"

            post = Post(title="a")
            s.add(post)
            await s.flush()
            assert s.stats().flushes == 1 and not s.new  # one flush wrote both
            assert post.stamp == "stamped"
            await s.commit()
        async with AsyncSession(epool) as s:
            assert [a.what for a in await s.all(Audit)] == ["new post a"]
            assert (await s.get_one(Post, post.id)).stamp == "stamped"

    async def test_order_pool_first_then_session_sync_and_async(self, epool: aiouow.Pool) -> None:
        calls: list[str] = []

        async def pool_async(session: AsyncSession) -> None:
            await asyncio.sleep(0)
            calls.append("pool async")

        event.listen(epool, "before_commit", lambda session: calls.append("pool sync"))
        event.listen(epool, "before_commit", pool_async)
        async with AsyncSession(epool) as s:
            event.listen(s, "before_commit", lambda session: calls.append("session"))
            for name in ("before_flush", "after_flush", "after_commit"):
                event.listen(s, name, lambda session, name=name: calls.append(name))
            s.add(Post(title="a"))
            await s.commit()
        assert calls == ["pool sync", "pool async", "session", "before_flush", "after_flush", "after_commit"]

    async def test_a_pool_listener_applies_to_sessions_opened_before_and_after(self, epool: aiouow.Pool) -> None:
        seen: list[AsyncSession] = []
        early = AsyncSession(epool)
        event.listen(epool, "after_commit", seen.append)
        late = AsyncSession(epool)
        for s in (early, late):
            s.add(Post(title="x"))
            await s.commit()
            await s.close()
        assert seen == [early, late]
        event.remove(epool, "after_commit", seen.append)
        async with AsyncSession(epool) as s:
            await s.commit()
        assert seen == [early, late]

    async def test_after_flush_runs_once_for_a_flush_of_several_rounds(self, epool: aiouow.Pool) -> None:
        from .relmodels import REL_ALL, Hero, Team

        await epool.create_all(*REL_ALL)
        try:
            async with AsyncSession(epool) as s:
                flushes: list[int] = []
                event.listen(s, "after_flush", lambda session: flushes.append(1))
                s.add(Team(name="t", heroes=[Hero(name="h")]))  # two rounds: the team's key first
                await s.flush()
                assert flushes == [1]
        finally:
            await epool.drop_all(*REL_ALL)

    async def test_after_rollback(self, epool: aiouow.Pool) -> None:
        async with AsyncSession(epool) as s:
            states: list[SessionState] = []
            event.listen(s, "after_rollback", lambda session: states.append(session.session_state))
            post = Post(title="a")
            s.add(post)
            await s.flush()
            await s.rollback()
            assert states == [SessionState.IDLE] and s.state(post) is ObjectState.TRANSIENT


class TestExceptions:
    async def test_an_exception_in_before_flush_writes_nothing(self, epool: aiouow.Pool) -> None:
        async with AsyncSession(epool) as s:

            def refuse(session: AsyncSession) -> None:
                raise ValueError("no")

            event.listen(s, "before_flush", refuse)
            post = Post(title="a")
            s.add(post)
            with pytest.raises(ValueError, match="no"):
                await s.flush()
            assert s.state(post) is ObjectState.PENDING and s.session_state is SessionState.IDLE
            assert s.stats().total_statements == 0
            event.remove(s, "before_flush", refuse)
            await s.commit()
        assert await titles(epool) == ["a"]

    async def test_an_exception_in_before_commit_commits_nothing(self, epool: aiouow.Pool) -> None:
        async with AsyncSession(epool) as s:
            s.add(Post(title="flushed"))
            await s.flush()
            event.listen(s, "before_commit", lambda session: 1 / 0)
            s.add(Post(title="pending"))
            with pytest.raises(ZeroDivisionError):
                await s.commit()
            assert s.session_state is SessionState.ACTIVE and len(s.new) == 1  # as it was: roll back or fix
        assert await titles(epool) == []

    async def test_an_exception_in_before_insert_writes_nothing(self, epool: aiouow.Pool, on_post: list[Any]) -> None:
        def refuse(session: AsyncSession, post: Post) -> None:
            if post.title == "bad":
                raise ValueError(f"refused {post.title}")

        event.listen(Post, "before_insert", refuse)
        on_post.append(("before_insert", refuse))
        async with AsyncSession(epool) as s:
            s.add_all([Post(title="good"), Post(title="bad")])
            with pytest.raises(ValueError, match="refused bad"):
                await s.commit()
            assert s.stats().total_statements == 0
        assert await titles(epool) == []

    async def test_after_commit_failure_leaves_the_commit_durable(self, epool: aiouow.Pool) -> None:
        async with AsyncSession(epool) as s:

            async def fails(session: AsyncSession) -> None:
                assert await titles(epool) == ["a"]  # durable: another session sees it
                raise RuntimeError("notification failed")

            event.listen(s, "after_commit", fails)
            s.add(Post(title="a"))
            with pytest.raises(RuntimeError, match="notification failed") as info:
                await s.commit()
            assert any("the transaction was committed" in note for note in info.value.__notes__)
            assert s.session_state is SessionState.IDLE
        assert await titles(epool) == ["a"]


class TestEntityEvents:
    async def test_insert_update_delete(self, epool: aiouow.Pool, on_post: list[Any]) -> None:
        seen: list[tuple[str, str]] = []

        def inserting(session: AsyncSession, post: Post) -> None:
            post.stamp = "created"
            seen.append(("insert", post.title))

        async def updating(session: AsyncSession, post: Post) -> None:
            post.stamp = "updated"
            seen.append(("update", post.title))

        def deleting(session: AsyncSession, post: Post) -> None:
            seen.append(("delete", post.title))

        for name, fn in (("before_insert", inserting), ("before_update", updating), ("before_delete", deleting)):
            event.listen(Post, name, fn)
            on_post.append((name, fn))
        async with AsyncSession(epool) as s:
            a, b = Post(title="a"), Post(title="b")
            s.add_all([a, b])
            s.add(Audit(what="not a post"))
            await s.commit()
            a.title = "a2"
            s.delete(b)
            await s.commit()
        assert seen == [("insert", "a"), ("insert", "b"), ("update", "a2"), ("delete", "b")]
        async with AsyncSession(epool) as s:
            assert [(p.title, p.stamp) for p in await s.all(Post)] == [("a2", "updated")]

    async def test_entity_events_on_a_session_apply_to_every_entity(self, epool: aiouow.Pool) -> None:
        async with AsyncSession(epool) as s:
            kinds: list[str] = []
            event.listen(s, "before_insert", lambda session, obj: kinds.append(type(obj).__name__))
            s.add_all([Post(title="a"), Audit(what="b")])
            await s.flush()
            assert sorted(kinds) == ["Audit", "Post"]


class TestReentrancy:
    async def test_a_listener_that_flushes_is_told_why_not(self, epool: aiouow.Pool) -> None:
        async with AsyncSession(epool) as s:

            async def flushes(session: AsyncSession) -> None:
                await session.flush()

            event.listen(s, "before_flush", flushes)
            s.add(Post(title="a"))
            with pytest.raises(SessionError, match="inside a 'before_flush' listener"):
                await s.flush()
            assert len(s.new) == 1 and s.session_state is SessionState.IDLE

    async def test_a_listener_cannot_query_inside_the_flush(self, epool: aiouow.Pool, on_post: list[Any]) -> None:
        async def reads(session: AsyncSession, post: Post) -> None:
            await session.get(Audit, 1)

        event.listen(Post, "before_insert", reads)
        on_post.append(("before_insert", reads))
        async with AsyncSession(epool) as s:
            s.add(Post(title="a"))
            with pytest.raises(SessionError, match="inside a 'before_insert' listener"):
                await s.flush()

    async def test_after_commit_may_use_the_session(self, epool: aiouow.Pool) -> None:
        async with AsyncSession(epool) as s:

            async def follow_up(session: AsyncSession) -> None:
                if not await session.filter(Audit, what="done"):
                    session.add(Audit(what="done"))
                    await session.commit()  # (a listener that commits: it runs again, and finds the row)

            event.listen(s, "after_commit", follow_up)
            s.add(Post(title="a"))
            await s.commit()
            assert s.session_state is SessionState.ACTIVE  # (the listener's last read began a transaction)
        async with AsyncSession(epool) as s:
            assert [a.what for a in await s.all(Audit)] == ["done"]

    async def test_another_task_waits_for_the_lock_as_usual(self, epool: aiouow.Pool) -> None:
        async with AsyncSession(epool) as s:
            started = asyncio.Event()

            async def slow(session: AsyncSession) -> None:
                started.set()
                await asyncio.sleep(0.05)

            event.listen(s, "before_flush", slow)
            s.add(Post(title="a"))
            flushing = asyncio.ensure_future(s.flush())
            await started.wait()
            assert await s.count(aiouow.select(Post)) == 1  # waited for the flush, then read
            await flushing


class TestRegistration:
    def test_bad_names_and_targets(self, on_post: list[Any]) -> None:
        with pytest.raises(ConfigurationError, match="unknown event 'before_flsh'"):
            event.listen(Post, "before_flsh", print)
        with pytest.raises(ConfigurationError, match="an entity class has the entity events"):
            event.listen(Post, "after_commit", print)
        with pytest.raises(TypeError, match="the target is an AsyncSession, a Pool or an entity class"):
            event.listen(object(), "before_flush", print)
        with pytest.raises(TypeError, match="a listener is a function"):
            event.listen(Post, "before_insert", "print")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="does not listen"):
            event.remove(Post, "before_insert", print)
        event.listen(Post, "before_insert", print)
        on_post.append(("before_insert", print))
        assert event.contains(Post, "before_insert", print)


class TestCancellation:
    @pytest.mark.parametrize("how", ["task", "anyio"])
    async def test_cancelled_during_before_flush_writes_nothing(self, epool: aiouow.Pool, how: str) -> None:
        async with AsyncSession(epool) as s:
            s.add(Post(title="kept"))
            await s.flush()

            async def slow(session: AsyncSession) -> None:
                await asyncio.sleep(5)

            event.listen(s, "before_flush", slow)
            post = Post(title="a")
            s.add(post)
            assert await interrupt(how, s.flush, 0.1)
            assert s.state(post) is ObjectState.PENDING and s.session_state is SessionState.ACTIVE
            event.remove(s, "before_flush", slow)
            await s.commit()
        await assert_clean(epool)
        assert await titles(epool) == ["a", "kept"]

    async def test_cancelled_during_after_commit_the_commit_stands(self, epool: aiouow.Pool) -> None:
        async with AsyncSession(epool) as s:

            async def slow(session: AsyncSession) -> None:
                await asyncio.sleep(5)

            event.listen(s, "after_commit", slow)
            s.add(Post(title="a"))
            assert await interrupt("task", s.commit, 0.2)
            assert s.session_state is SessionState.IDLE
        await assert_clean(epool)
        assert await titles(epool) == ["a"]
