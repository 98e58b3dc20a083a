"""Savepoints (``begin_nested``): memory restored exactly to the savepoint, to any depth, with
relationships; a database error inside rolls back the savepoint only; cancellation of the
savepoint's own statements."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import aiouow
from aiouow import AsyncSession, ObjectState, SessionError, SessionState, UniqueViolationError, select

from .faults import HOW, assert_clean, fault_url, interrupt
from .models import ALL, Tag, User
from .relmodels import REL_ALL, Hero, Team


@pytest.fixture
async def spool(url: str) -> AsyncIterator[aiouow.Pool]:
    async with aiouow.create_pool(fault_url(url), max_size=3, cleanup_timeout=2.0) as pool:
        await pool.drop_all(*REL_ALL, *ALL)
        await pool.create_all(*ALL, *REL_ALL)
        yield pool
        assert pool.stats().in_use == 0
        await pool.drop_all(*REL_ALL, *ALL)


async def seed_users(pool: aiouow.Pool, *names: str) -> None:
    async with AsyncSession(pool) as s:
        s.add_all(User(name=n, email=f"{n}@example.org") for n in names)
        await s.commit()


async def stored(pool: aiouow.Pool) -> dict[str, str]:
    async with AsyncSession(pool) as s:
        return {u.name: u.email for u in await s.all(User)}


def others(s: AsyncSession) -> int:
    return s.stats().statements.get("other", 0)


class TestReleaseAndRollback:
    async def test_leaving_normally_keeps_the_work_for_the_commit(self, spool: aiouow.Pool) -> None:
        await seed_users(spool, "ann")
        async with AsyncSession(spool) as s:
            ann = await s.get_one(User, 1)
            async with s.begin_nested() as sp:
                ann.email = "ann@new.example"
                s.add(User(name="bob", email="bob@example.org"))
            assert sp.state is aiouow.SavepointState.RELEASED
            assert not s.dirty and not s.new  # the block flushed before releasing
            await s.commit()
        assert await stored(spool) == {"ann": "ann@new.example", "bob": "bob@example.org"}

    async def test_an_exception_puts_memory_back_to_the_savepoint(self, spool: aiouow.Pool) -> None:
        await seed_users(spool, "ann", "cat", "dan")
        async with AsyncSession(spool) as s:
            ann, cat, dan = await s.scalars(select(User).order_by(User.id))
            ann.email = "ann@before.example"  # before the savepoint: flushed by begin_nested, kept
            with pytest.raises(RuntimeError, match="boom"):
                async with s.begin_nested():
                    ann.email = "ann@inside.example"
                    ann.profile = {"a": 1}
                    s.delete(cat)
                    bob = User(name="bob", email="bob@example.org")
                    s.add(bob)
                    await s.flush()
                    assert bob.id is not None
                    dan.name = "dan, unflushed"
                    late = User(name="late", email="late@example.org")
                    s.add(late)
                    raise RuntimeError("boom")
            assert (ann.email, ann.profile, dan.name) == ("ann@before.example", None, "dan")
            assert s.state(cat) is ObjectState.PERSISTENT and cat.name == "cat"
            assert s.state(bob) is ObjectState.TRANSIENT and bob.id is None
            assert s.state(late) is ObjectState.TRANSIENT
            assert not s.dirty and not s.new and not s.deleted
            assert await s.get(User, cat.id) is cat
            await s.commit()
        assert await stored(spool) == {"ann": "ann@before.example", "cat": "cat@example.org", "dan": "dan@example.org"}

    async def test_untouched_and_loaded_objects_keep_their_state(self, spool: aiouow.Pool) -> None:
        await seed_users(spool, "ann", "bob")
        async with AsyncSession(spool) as s:
            ann = await s.get_one(User, 1)
            async with s.begin_nested() as sp:
                bob = await s.get_one(User, 2)  # loaded inside: still the row's object afterwards
                ann.name = "x"
                await sp.rollback()
            assert sp.state is aiouow.SavepointState.ROLLED_BACK
            assert ann.name == "ann" and s.state(bob) is ObjectState.PERSISTENT
            assert await s.get(User, 2) is bob

    async def test_nesting_to_any_depth_rolls_back_only_the_inner_level(self, spool: aiouow.Pool) -> None:
        async with AsyncSession(spool) as s:
            s.add(Tag(code="t", label="0"))
            await s.flush()
            tag = await s.get_one(Tag, "t")
            async with s.begin_nested():
                tag.label = "1"
                async with s.begin_nested():
                    tag.label = "2"
                    with pytest.raises(RuntimeError):
                        async with s.begin_nested():
                            tag.label = "3"
                            s.add(Tag(code="u", label="inner"))
                            await s.flush()
                            raise RuntimeError
                    assert tag.label == "2"
                    with pytest.raises(RuntimeError):
                        async with s.begin_nested():
                            tag.label = "4"
                            raise RuntimeError
                    assert tag.label == "2"
                assert tag.label == "2"
                with pytest.raises(RuntimeError):
                    async with s.begin_nested():
                        async with s.begin_nested():
                            tag.label = "5"
                        raise RuntimeError  # the outer of the two: the released inner one goes too
                assert tag.label == "2"
            await s.commit()
        async with AsyncSession(spool) as s:
            assert {t.code: t.label for t in await s.all(Tag)} == {"t": "2"}

    async def test_statements_sent(self, spool: aiouow.Pool) -> None:
        """One SAVEPOINT, one RELEASE; an exception one ROLLBACK TO, even after a database error.
        (In a SQLite transaction that has only read, the first savepoint renews the snapshot
        first: see test_a_savepoint_after_reads_survives_another_writer.)"""
        await seed_users(spool, "ann")
        async with AsyncSession(spool) as s:
            (await s.get_one(User, 1)).name = "writing"
            await s.flush()
            before = others(s)
            async with s.begin_nested():
                pass
            assert others(s) == before + 2
            with pytest.raises(UniqueViolationError):
                async with s.begin_nested():
                    s.add(User(name="dup", email="ann@example.org"))
            # SAVEPOINT, the failed INSERT (an "insert"), ROLLBACK TO: no second one on the way out
            assert others(s) == before + 4


class TestDatabaseErrorsInside:
    async def test_a_constraint_error_rolls_back_the_savepoint_only(self, spool: aiouow.Pool) -> None:
        await seed_users(spool, "ann")
        async with AsyncSession(spool) as s:
            kept = User(name="kept", email="kept@example.org")
            s.add(kept)
            dup = User(name="dup", email="ann@example.org")
            with pytest.raises(UniqueViolationError):
                async with s.begin_nested():
                    s.add(dup)
            assert s.session_state is SessionState.ACTIVE
            assert s.state(dup) is ObjectState.TRANSIENT and s.state(kept) is ObjectState.PERSISTENT
            await s.commit()
        assert set(await stored(spool)) == {"ann", "kept"}

    async def test_caught_inside_the_block_the_savepoint_stays_open(self, spool: aiouow.Pool) -> None:
        await seed_users(spool, "ann")
        async with AsyncSession(spool) as s:
            async with s.begin_nested() as sp:
                first = User(name="first", email="first@example.org")
                s.add(first)
                await s.flush()
                s.add(User(name="dup", email="ann@example.org"))
                with pytest.raises(UniqueViolationError):
                    await s.flush()
                # Rolled back to the savepoint: `first` too (it was inside), and the block goes on.
                assert s.state(first) is ObjectState.TRANSIENT and sp.state is aiouow.SavepointState.OPEN
                s.add(User(name="second", email="second@example.org"))
            await s.commit()
        assert set(await stored(spool)) == {"ann", "second"}

    async def test_a_raw_query_error_rolls_back_and_the_transaction_goes_on(self, spool: aiouow.Pool) -> None:
        async with AsyncSession(spool) as s:
            s.add(Tag(code="a", label="a"))
            with pytest.raises(aiouow.DatabaseError):
                async with s.begin_nested():
                    s.add(Tag(code="b", label="b"))
                    await s.execute("SELECT * FROM no_such_table")
            assert await s.count(select(Tag)) == 1  # the transaction is usable (PostgreSQL: not aborted)
            await s.commit()

    async def test_an_error_flushing_on_the_way_out_rolls_back_and_raises(self, spool: aiouow.Pool) -> None:
        await seed_users(spool, "ann")
        async with AsyncSession(spool) as s:
            with pytest.raises(UniqueViolationError):
                async with s.begin_nested() as sp:
                    s.add(User(name="dup", email="ann@example.org"))  # flushed when the block ends
            assert sp.state is aiouow.SavepointState.ROLLED_BACK
            assert s.session_state is SessionState.ACTIVE and not s.new
            await s.commit()

    async def test_a_bad_value_refused_before_sending_rolls_back_too(self, spool: aiouow.Pool) -> None:
        async with AsyncSession(spool) as s:
            with pytest.raises(aiouow.DataError):
                async with s.begin_nested():
                    s.add(Tag(code="t", label="nul\x00"))
            assert not s.new and s.session_state is not SessionState.FAILED

    async def test_outside_a_savepoint_a_database_error_still_fails_the_session(self, spool: aiouow.Pool) -> None:
        await seed_users(spool, "ann")
        async with AsyncSession(spool) as s:
            s.add(User(name="dup", email="ann@example.org"))
            with pytest.raises(UniqueViolationError):
                await s.flush()
            assert s.session_state is SessionState.FAILED


class TestRelationshipsAndExpiry:
    async def test_relationships_come_back_as_they_were_at_the_savepoint(self, spool: aiouow.Pool) -> None:
        async with AsyncSession(spool) as s:
            red, blue = Team(name="red"), Team(name="blue")
            ann = Hero(name="ann", team=red)
            s.add_all([red, blue, ann])
            await s.flush()
            async with s.begin_nested():
                ann.team = blue  # before the savepoint's inner one: kept
            with pytest.raises(RuntimeError):
                async with s.begin_nested():
                    ann.team = red
                    red.heroes.append(Hero(name="new"))
                    blue.name = "renamed"
                    await s.flush()
                    raise RuntimeError
            assert ann.team is blue and blue.heroes == [ann] and red.heroes == []
            assert blue.name == "blue" and ann.team_id == blue.id
            await s.commit()
        async with AsyncSession(spool) as s:
            heroes = await s.scalars(select(Hero).load(Hero.team))
            assert [(h.name, h.team.name if h.team else None) for h in heroes] == [("ann", "blue")]

    async def test_a_load_inside_is_unloaded_again(self, spool: aiouow.Pool) -> None:
        async with AsyncSession(spool) as s:
            s.add(Team(name="red", heroes=[Hero(name="ann")]))
            await s.commit()
        async with AsyncSession(spool) as s:
            team = await s.get_one(Team, 1)
            with pytest.raises(RuntimeError):
                async with s.begin_nested():
                    await s.load(team, Team.heroes)
                    raise RuntimeError
            assert not s.is_loaded(team, Team.heroes)

    async def test_expiring_inside_is_undone(self, spool: aiouow.Pool) -> None:
        await seed_users(spool, "ann")
        async with AsyncSession(spool) as s:
            ann = await s.get_one(User, 1)
            with pytest.raises(RuntimeError):
                async with s.begin_nested():
                    ann.name = "changed"
                    s.expire(ann, "name")  # forgets the change
                    raise RuntimeError
            assert ann.name == "ann"
            before = s.stats().statements.get("select", 0)
            assert await s.get(User, 1) is ann  # not expired at the savepoint: no statement
            assert s.stats().statements.get("select", 0) == before
            s.expire(ann)
            async with s.begin_nested() as sp:
                await sp.rollback()
            assert await s.get(User, 1) is ann  # expired before the savepoint: still expired
            assert s.stats().statements.get("select", 0) == before + 1


class TestRefusals:
    async def test_commit_inside_the_block_is_refused(self, spool: aiouow.Pool) -> None:
        async with AsyncSession(spool) as s:
            with pytest.raises(SessionError, match="inside a begin_nested"):
                async with s.begin_nested():
                    s.add(Tag(code="a", label="a"))
                    await s.commit()
            assert not s.new  # the savepoint rolled back on the way out

    async def test_rollback_inside_ends_the_transaction_and_the_block_says_so(self, spool: aiouow.Pool) -> None:
        async with AsyncSession(spool) as s:
            tag = Tag(code="a", label="a")
            with pytest.raises(SessionError, match="ended inside the begin_nested"):
                async with s.begin_nested() as sp:
                    s.add(tag)
                    await s.rollback()
            assert sp.state is aiouow.SavepointState.ENDED and s.state(tag) is ObjectState.TRANSIENT
            async with s.begin_nested():  # the session goes on, in a new transaction
                s.add(Tag(code="b", label="b"))
            await s.commit()

    async def test_a_savepoint_rolled_back_cannot_be_rolled_back_again(self, spool: aiouow.Pool) -> None:
        async with AsyncSession(spool) as s:
            async with s.begin_nested() as sp:
                await sp.rollback()
                with pytest.raises(SessionError, match="rolled back"):
                    await sp.rollback()


class TestSQLite:
    async def test_a_savepoint_after_reads_survives_another_writer(self, tmp_path: Any) -> None:
        """The read snapshot is renewed before the SAVEPOINT, never by dropping it later."""
        async with aiouow.create_pool(f"sqlite:///{tmp_path}/sp.db") as pool:
            await pool.create_all(Tag)
            async with AsyncSession(pool) as s:
                assert await s.all(Tag) == []  # a read transaction
                async with AsyncSession(pool) as other:
                    other.add(Tag(code="o", label="other"))
                    await other.commit()  # the first session's snapshot is stale now
                async with s.begin_nested():
                    s.add(Tag(code="s", label="mine"))
                with pytest.raises(RuntimeError):
                    async with s.begin_nested():
                        s.add(Tag(code="x", label="rolled back"))
                        await s.flush()
                        raise RuntimeError
                await s.commit()
            async with AsyncSession(pool) as s:
                assert {t.code for t in await s.all(Tag)} == {"o", "s"}


def slow_savepoints(s: AsyncSession, delay: float) -> Any:
    """Make the session's savepoint statements take ``delay`` seconds longer; returns the connection."""
    conn: Any = s._tx.conn  # type: ignore[union-attr]
    real = conn.savepoint

    async def slow(verb: Any, name: str) -> None:
        await asyncio.sleep(delay)
        await real(verb, name)

    conn.savepoint = slow
    return conn


async def assert_clean_with(pool: aiouow.Pool, codes: set[str]) -> None:
    """No connection lent, no lock held, and the committed tags are ``codes``."""
    await assert_clean(pool)
    async with AsyncSession(pool) as check:
        assert {t.code for t in await check.all(Tag)} == codes


class TestCancellation:
    @pytest.mark.parametrize("how", HOW)
    async def test_cancel_during_rollback_to_savepoint(self, spool: aiouow.Pool, how: str) -> None:
        """anyio: the shielded ROLLBACK TO finishes, memory is back, the session goes on. Task.cancel():
        the statement's state is unknown, so the whole transaction fails; rollback() recovers."""
        async with AsyncSession(spool) as s:
            kept = Tag(code="kept", label="k")
            s.add(kept)
            await s.flush()
            inside = Tag(code="in", label="i")

            async def work() -> None:
                async with s.begin_nested() as sp:
                    s.add(inside)
                    await s.flush()
                    slow_savepoints(s, 0.4)
                    await sp.rollback()

            # (anyio: the shielded statement finishes, and nothing after it awaits to see the cancel)
            assert await interrupt(how, work, 0.2) or how == "anyio"
            assert s.state(inside) is ObjectState.TRANSIENT or s.session_state is SessionState.FAILED
            if how == "anyio":
                assert s.session_state is SessionState.ACTIVE and s.state(inside) is ObjectState.TRANSIENT
                await s.commit()
                expected = {"kept"}
            else:
                assert s.session_state is SessionState.FAILED
                await s.rollback()
                assert s.state(inside) is ObjectState.TRANSIENT and s.state(kept) is ObjectState.TRANSIENT
                expected = set()
        await assert_clean_with(spool, expected)

    @pytest.mark.parametrize("how", HOW)
    async def test_cancel_during_release(self, spool: aiouow.Pool, how: str) -> None:
        async with AsyncSession(spool) as s:
            tag = Tag(code="a", label="a")

            async def work() -> None:
                async with s.begin_nested():
                    s.add(tag)
                    await s.flush()
                    slow_savepoints(s, 0.4)

            assert await interrupt(how, work, 0.2) or how == "anyio"
            if how == "anyio":  # shielded: released, the work kept
                assert s.session_state is SessionState.ACTIVE and s.state(tag) is ObjectState.PERSISTENT
                await s.commit()
                expected = {"a"}
            else:
                assert s.session_state is SessionState.FAILED
                await s.rollback()
                assert s.state(tag) is ObjectState.TRANSIENT
                expected = set()
        await assert_clean_with(spool, expected)

    async def test_cancel_in_the_block_rolls_back_to_the_savepoint(self, spool: aiouow.Pool) -> None:
        """Task.cancel() while the block awaits something else: the exit's ROLLBACK TO runs (shielded)."""
        async with AsyncSession(spool) as s:
            s.add(Tag(code="kept", label="k"))

            async def work() -> None:
                async with s.begin_nested():
                    s.add(Tag(code="in", label="i"))
                    await s.flush()
                    await asyncio.sleep(5)

            assert await interrupt("task", work, 0.2)
            assert s.session_state is SessionState.ACTIVE and len(s.new) == 0
            await s.commit()
        async with AsyncSession(spool) as check:
            assert {t.code for t in await check.all(Tag)} == {"kept"}
