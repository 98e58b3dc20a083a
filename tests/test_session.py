"""Session lifecycle: flush, commit, rollback, failure, close, begin, merge, expunge, refresh, concurrency."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

import aiouow
from aiouow import AsyncSession, ObjectState, SessionState, select

from .models import Doc, Order, Tag, User


async def count(pool: aiouow.Pool, entity: type) -> int:
    async with AsyncSession(pool) as s:
        return len(await s.all(entity))


class TestFlushAndCommit:
    async def test_flush_assigns_generated_key_inside_the_transaction(self, pool: aiouow.Pool) -> None:
        """flush() runs the INSERT and sets the key; other sessions do not see it before commit."""
        async with AsyncSession(pool) as s:
            alice = User(name="alice", email="a@x")
            s.add(alice)
            await s.flush()
            assert isinstance(alice.id, int)
            assert s.state(alice) is ObjectState.PERSISTENT
            assert s.session_state is SessionState.ACTIVE
            assert await count(pool, User) == 0
            s.add(Order(user_id=alice.id, total=Decimal("9.99")))
            await s.commit()
        assert await count(pool, User) == 1
        assert await count(pool, Order) == 1

    async def test_commit_keeps_values_and_session_usable(self, pool: aiouow.Pool) -> None:
        """After commit nothing is expired: objects keep their values and the session goes on."""
        async with AsyncSession(pool) as s:
            u = User(name="a", email="a@x")
            s.add(u)
            await s.commit()
            assert s.session_state is SessionState.IDLE
            assert pool.stats().in_use == 0  # the connection went back on commit
            assert u.name == "a" and u.id is not None
            assert s.state(u) is ObjectState.PERSISTENT
            u.name = "b"
            await s.commit()
        async with AsyncSession(pool) as s:
            got = await s.get_one(User, u.id)
            assert got.name == "b"

    async def test_add_twice_is_a_noop_and_delete_pending_unadds(self, session: AsyncSession) -> None:
        """add() of an object already in the session does nothing; delete() of a pending one un-adds it."""
        u = User(name="a", email="a@x")
        session.add(u)
        session.add(u)
        assert session.new == {u}
        session.delete(u)
        assert session.new == frozenset()
        assert session.state(u) is ObjectState.TRANSIENT
        await session.flush()
        assert await session.all(User) == []

    async def test_delete_then_commit_makes_object_transient(self, pool: aiouow.Pool) -> None:
        """A deleted row's object is DELETED until commit, then TRANSIENT (the row is gone)."""
        async with AsyncSession(pool) as s:
            t = Tag(code="py", label="Python")
            s.add(t)
            await s.commit()
            s.delete(t)
            assert s.state(t) is ObjectState.DELETED
            assert s.deleted == {t}
            assert await s.get(Tag, "py") is None
            await s.flush()
            assert s.state(t) is ObjectState.DELETED
            await s.commit()
            assert s.state(t) is ObjectState.TRANSIENT
            assert t not in s
        assert await count(pool, Tag) == 0

    async def test_delete_transient_raises(self, session: AsyncSession) -> None:
        """Deleting an object that was never persisted is an error."""
        with pytest.raises(aiouow.SessionError, match="cannot delete User: the object is not persisted"):
            session.delete(User(name="a", email="a@x"))

    async def test_versioned_update_and_stale_detection(self, pool: aiouow.Pool) -> None:
        """A version field starts at 1, grows with each UPDATE, and a stale version raises StaleDataError."""
        async with AsyncSession(pool) as s:
            d = Doc(title="v1")
            s.add(d)
            await s.commit()
            assert d.version == 1
            d.title = "v2"
            await s.commit()
            assert d.version == 2
        async with AsyncSession(pool) as a, AsyncSession(pool) as b:
            da = await a.get_one(Doc, d.id)
            db = await b.get_one(Doc, d.id)
            da.title = "from a"
            await a.commit()
            db.title = "from b"
            with pytest.raises(aiouow.StaleDataError, match="cannot update Doc: expected to match 1 row"):
                await b.commit()
            await b.rollback()
            assert db.title == "v2" and db.version == 2
        async with AsyncSession(pool) as s:
            assert (await s.get_one(Doc, d.id)).title == "from a"

    async def test_versioned_deletes_match_the_version(self, pool: aiouow.Pool) -> None:
        """Deletes of versioned objects match each row at its version: several at once go through,
        and one whose row was changed elsewhere since raises StaleDataError, deleting nothing."""
        async with AsyncSession(pool) as s:
            docs = [Doc(title=f"d{i}") for i in range(3)]
            s.add_all(docs)
            await s.commit()
        async with AsyncSession(pool) as s:
            first, second, _ = sorted(await s.all(Doc), key=lambda d: d.title)
            s.delete(first)
            s.delete(second)
            await s.commit()
            assert [d.title for d in await s.all(Doc)] == ["d2"]
        async with AsyncSession(pool) as a, AsyncSession(pool) as b:
            da = await a.get_one(Doc, docs[2].id)
            db = await b.get_one(Doc, docs[2].id)
            da.title = "changed"
            await a.commit()
            b.delete(db)
            with pytest.raises(aiouow.StaleDataError, match="cannot delete Doc: expected to match 1 row"):
                await b.commit()
            await b.rollback()
        async with AsyncSession(pool) as s:
            assert [d.title for d in await s.all(Doc)] == ["changed"]

    async def test_update_of_vanished_row_raises_stale(self, pool: aiouow.Pool) -> None:
        """An UPDATE that matches no row (deleted elsewhere) raises StaleDataError."""
        async with AsyncSession(pool) as s:
            t = Tag(code="x", label="x")
            s.add(t)
            await s.commit()
            await s.execute("DELETE FROM tags")
            await s.commit()
            t.label = "y"
            with pytest.raises(aiouow.StaleDataError, match="a row no longer exists"):
                await s.flush()
            await s.rollback()

    async def test_primary_key_change_is_refused(self, session: AsyncSession) -> None:
        """Primary keys are immutable: changing one fails the flush with DataError, nothing written."""
        t = Tag(code="a", label="A")
        session.add(t)
        await session.flush()
        t.code = "b"
        with pytest.raises(aiouow.DataError, match="primary key field 'code' changed from 'a' to 'b'"):
            await session.flush()
        t.code = "a"
        await session.flush()


class TestRowSwitch:
    @pytest.mark.parametrize("changed_first", [False, True])
    async def test_delete_and_add_of_one_key_in_one_flush(self, pool: aiouow.Pool, changed_first: bool) -> None:
        """An object deleted and a new one with its key added in one flush: the new one takes over the row."""
        async with AsyncSession(pool) as s:
            s.add(Tag(code="k", label="old"), Tag(code="other", label="o"))
            await s.commit()
        async with AsyncSession(pool) as s:
            old = await s.get_one(Tag, "k")
            if changed_first:  # (the deleted object then has unflushed changes of its own)
                old.label = "edited"
            s.delete(old)
            new = Tag(code="k", label="new")
            s.add(new)
            await s.commit()
            assert s.state(new) is ObjectState.PERSISTENT
            assert s.state(old) is ObjectState.TRANSIENT
            assert await s.get(Tag, "k") is new
        async with AsyncSession(pool) as check:
            assert sorted((t.code, t.label) for t in await check.all(Tag)) == [("k", "new"), ("other", "o")]

    async def test_row_switch_rolled_back_restores_both_objects(self, pool: aiouow.Pool) -> None:
        """A flushed row switch rolled back: the deleted object is back, the new one transient."""
        async with AsyncSession(pool) as s:
            s.add(Tag(code="k", label="old"))
            await s.commit()
            old = await s.get_one(Tag, "k")
            s.delete(old)
            new = Tag(code="k", label="new")
            s.add(new)
            await s.flush()
            await s.rollback()
            assert s.state(old) is ObjectState.PERSISTENT and old.label == "old"
            assert s.state(new) is ObjectState.TRANSIENT
            assert await s.get(Tag, "k") is old
        async with AsyncSession(pool) as check:
            assert [(t.code, t.label) for t in await check.all(Tag)] == [("k", "old")]

    async def test_versioned_row_switch_checks_and_continues_the_version(self, pool: aiouow.Pool) -> None:
        """A versioned row switch expects the deleted object's version and gives the new one the next."""
        async with AsyncSession(pool) as s:
            d = Doc(title="v1")
            s.add(d)
            await s.commit()
            d.title = "v2"
            await s.commit()
            assert d.version == 2
            s.delete(d)
            new = Doc(title="replaced")
            new.id = d.id
            s.add(new)
            await s.commit()
            assert new.version == 3
        async with AsyncSession(pool) as check:
            row = await check.get_one(Doc, d.id)
            assert (row.title, row.version) == ("replaced", 3)

    async def test_versioned_row_switch_of_a_stale_row_is_stale_data(self, pool: aiouow.Pool) -> None:
        """Another transaction changed the row since it was loaded: the switch fails with StaleDataError."""
        async with AsyncSession(pool) as s:
            d = Doc(title="v1")
            s.add(d)
            await s.commit()
        async with AsyncSession(pool) as s:
            mine = await s.get_one(Doc, d.id)
            async with AsyncSession(pool) as other:
                theirs = await other.get_one(Doc, d.id)
                theirs.title = "theirs"
                await other.commit()
            s.delete(mine)
            new = Doc(title="mine")
            new.id = d.id
            s.add(new)
            with pytest.raises(aiouow.StaleDataError):
                await s.commit()

    async def test_merge_onto_an_object_marked_for_deletion_switches_the_row(self, pool: aiouow.Pool) -> None:
        """merge() of a detached copy whose row's object is marked for deletion: one UPDATE, no UniqueViolation."""
        async with AsyncSession(pool) as s:
            t = Tag(code="k", label="old")
            s.add(t)
            await s.commit()
        copy = Tag(code="k", label="merged")
        async with AsyncSession(pool) as s:
            s.delete(await s.get_one(Tag, "k"))
            merged = await s.merge(copy)
            assert merged is not copy
            await s.commit()
            assert s.stats().statements.get("update", 0) == 1
        async with AsyncSession(pool) as check:
            assert [(t.code, t.label) for t in await check.all(Tag)] == [("k", "merged")]


class TestRollback:
    async def test_rollback_restores_memory(self, pool: aiouow.Pool) -> None:
        """After rollback: inserted objects are transient with keys cleared, deleted ones persistent again,
        changed ones back to their committed values."""
        async with AsyncSession(pool) as s:
            keep = User(name="keep", email="k@x")
            gone = User(name="gone", email="g@x")
            s.add(keep, gone)
            await s.commit()

            new = User(name="new", email="n@x")
            s.add(new)
            keep.name = "changed"
            keep.profile = {"a": 1}
            s.delete(gone)
            await s.flush()
            keep.name = "changed again"  # unflushed change on top of a flushed one
            pending = User(name="pending", email="p@x")
            s.add(pending)
            assert new.id is not None

            await s.rollback()
            assert new.id is None and s.state(new) is ObjectState.TRANSIENT
            assert s.state(pending) is ObjectState.TRANSIENT
            assert keep.name == "keep" and keep.profile is None
            assert s.dirty_fields(keep) == []
            assert s.state(gone) is ObjectState.PERSISTENT
            assert await s.get(User, gone.id) is gone
            assert len(s) == 2
            assert s.session_state is SessionState.IDLE
            # the session is usable again, and the restored objects flush normally
            new.email = "n2@x"
            s.add(new)
            await s.commit()
            assert new.id is not None
        assert await count(pool, User) == 3

    async def test_rollback_of_a_flushed_delete_evicts_the_object_loaded_for_a_new_row(self, pool: aiouow.Pool) -> None:
        """A flushed delete, a row of the same key inserted by raw SQL and loaded as another
        object, then rollback: the deleted object is back, the other one leaves the session
        (its changes can never be silently lost)."""
        async with AsyncSession(pool) as s:
            a = Tag(code="k", label="A")
            s.add(a)
            await s.commit()
            s.delete(a)
            await s.flush()
            mark = "?" if pool.dialect == "sqlite" else "$1"
            await s.execute(f"INSERT INTO tags (code, label) VALUES ({mark}, 'raw')", "k")
            b = await s.get_one(Tag, "k")
            assert b is not a
            await s.rollback()
            assert await s.get(Tag, "k") is a
            assert s.state(a) is ObjectState.PERSISTENT
            assert b not in s
            assert s.state(b) is ObjectState.DETACHED
            a.label = "changed"
            await s.commit()
        async with AsyncSession(pool) as check:
            assert (await check.get_one(Tag, "k")).label == "changed"

    async def test_rollback_restores_in_place_json_change(self, session: AsyncSession) -> None:
        """A JSON value changed in place and flushed is restored by rollback."""
        u = User(name="a", email="a@x", profile={"n": 1})
        session.add(u)
        await session.commit()
        assert u.profile is not None
        u.profile["n"] = 2
        await session.flush()
        await session.rollback()
        assert u.profile == {"n": 1}

    async def test_versions_restored_by_rollback(self, session: AsyncSession) -> None:
        """A version incremented by a flushed UPDATE goes back on rollback."""
        d = Doc(title="a")
        session.add(d)
        await session.commit()
        d.title = "b"
        await session.flush()
        assert d.version == 2
        await session.rollback()
        assert (d.title, d.version) == ("a", 1)

    async def test_rollback_after_a_deleted_key_was_inserted_again_and_updated(self, pool: aiouow.Pool) -> None:
        """Delete a row, insert a new row with its key, update that, roll back: the first object gets
        its committed values back (the update of the new row is not the old row's history)."""
        async with AsyncSession(pool) as s:
            s.add(Tag(code="k", label="committed"))
            await s.commit()
            old = await s.get_one(Tag, "k")
            s.delete(old)
            await s.flush()
            new = Tag(code="k", label="second")
            s.add(new)
            await s.flush()
            new.label = "third"
            await s.flush()
            await s.rollback()
            assert s.state(new) is ObjectState.TRANSIENT
            assert s.state(old) is ObjectState.PERSISTENT
            assert old.label == "committed"
            assert await s.get_one(Tag, "k") is old
            assert (await s.execute("SELECT label FROM tags"))[0]["label"] == "committed"


class TestFailure:
    async def test_failed_flush_requires_rollback_and_writes_nothing(self, pool: aiouow.Pool) -> None:
        """A constraint violation rolls the transaction back; only rollback()/close() are accepted, then it works."""
        async with AsyncSession(pool) as s:
            s.add(User(name="a", email="dup@x"))
            await s.commit()
            ok = Tag(code="ok", label="ok")
            s.add(ok)
            await s.flush()
            s.add(User(name="b", email="dup@x"))
            with pytest.raises(aiouow.UniqueViolationError) as info:
                await s.flush()
            assert "users" in str(info.value) and "email" in str(info.value)
            assert info.value.__cause__ is not None
            assert s.session_state is SessionState.FAILED
            assert pool.stats().in_use == 0
            with pytest.raises(aiouow.SessionError, match="call rollback\\(\\) or close\\(\\) first"):
                await s.get(User, 1)
            with pytest.raises(aiouow.SessionError, match="rollback"):
                s.add(Tag(code="z", label="z"))
            await s.rollback()
            assert s.state(ok) is ObjectState.TRANSIENT
            assert len(await s.all(User)) == 1
        assert await count(pool, Tag) == 0

    async def test_failed_commit_puts_session_in_failed_state(self, pool: aiouow.Pool) -> None:
        """A foreign key violation at commit: nothing written, FAILED until rollback."""
        async with AsyncSession(pool) as s:
            s.add(Order(user_id=12345, total=Decimal(1)))
            with pytest.raises(aiouow.ForeignKeyViolationError, match="cannot insert Order"):
                await s.commit()
            assert s.session_state is SessionState.FAILED
            await s.rollback()
            assert s.session_state is SessionState.IDLE
        assert await count(pool, Order) == 0

    async def test_value_check_error_leaves_session_usable(self, pool: aiouow.Pool) -> None:
        """DataError from the value check comes before any SQL: nothing written, the session stays usable."""
        async with AsyncSession(pool) as s:
            good = Tag(code="good", label="g")
            bad = User(name=123, email="a@x")  # type: ignore[arg-type]
            s.add(good, bad)
            with pytest.raises(aiouow.DataError, match="cannot flush User: field 'name' expects str, got int 123"):
                await s.flush()
            assert s.session_state is not SessionState.FAILED
            assert s.state(good) is ObjectState.PENDING
            bad.name = "fixed"
            await s.commit()
        assert await count(pool, User) == 1 and await count(pool, Tag) == 1

    async def test_not_null_violation_is_named(self, session: AsyncSession) -> None:
        """A None in a non-nullable field fails the value check, naming entity and field."""
        session.add(Tag(code="x", label=None))  # type: ignore[arg-type]
        with pytest.raises(aiouow.DataError, match="cannot flush Tag: field 'label' is not nullable"):
            await session.flush()

    async def test_raw_sql_error_fails_the_transaction(self, session: AsyncSession) -> None:
        """A database error from raw SQL is translated, its driver error kept as __cause__."""
        with pytest.raises(aiouow.DatabaseError) as info:
            await session.execute("SELECT * FROM no_such_table")
        assert info.value.__cause__ is not None
        assert session.session_state is SessionState.FAILED
        await session.rollback()


class TestClose:
    async def test_closed_session_refuses_everything(self, pool: aiouow.Pool) -> None:
        """A closed session raises SessionClosedError; closing again is fine."""
        s = AsyncSession(pool)
        await s.close()
        await s.close()
        with pytest.raises(aiouow.SessionClosedError, match="cannot get: the session is closed"):
            await s.get(User, 1)
        with pytest.raises(aiouow.SessionClosedError):
            s.add(User(name="a", email="a@x"))
        with pytest.raises(aiouow.SessionClosedError):
            await s.commit()
        with pytest.raises(aiouow.SessionClosedError):
            await s.rollback()

    async def test_exit_rolls_back_uncommitted_work_and_detaches(self, pool: aiouow.Pool) -> None:
        """Leaving async with rolls back what was not committed; objects become detached and keep values."""
        with pytest.raises(RuntimeError, match="boom"):
            async with AsyncSession(pool) as s:
                t = Tag(code="a", label="A")
                s.add(t)
                await s.commit()
                t.label = "changed"
                s.add(Tag(code="b", label="B"))
                await s.flush()
                raise RuntimeError("boom")
        assert s.state(t) is ObjectState.DETACHED
        assert t.label == "A"
        assert await count(pool, Tag) == 1
        assert pool.stats().in_use == 0

    async def test_begin_commits_or_rolls_back(self, pool: aiouow.Pool) -> None:
        """async with s.begin() commits on success and rolls back on error."""
        async with AsyncSession(pool) as s:
            async with s.begin():
                s.add(Tag(code="a", label="A"))
            with pytest.raises(ValueError, match="no"):
                async with s.begin():
                    s.add(Tag(code="b", label="B"))
                    await s.flush()
                    raise ValueError("no")
            with pytest.raises(aiouow.SessionError, match="already open"):
                async with s.begin(), s.begin():
                    pass
        assert await count(pool, Tag) == 1

    async def test_begin_does_not_commit_work_done_after_a_commit_inside_it(self, pool: aiouow.Pool) -> None:
        """A commit() inside a begin() block ends its transaction: the block raises and commits nothing more."""
        async with AsyncSession(pool) as s:
            with pytest.raises(aiouow.SessionError, match="already ended inside it"):
                async with s.begin():
                    s.add(Tag(code="a", label="A"))
                    await s.commit()
                    s.add(Tag(code="b", label="B"))
            assert s.session_state is aiouow.SessionState.IDLE
            assert not s.new
        assert await count(pool, Tag) == 1

    async def test_begin_refuses_to_take_over_work_the_session_holds(self, pool: aiouow.Pool) -> None:
        """begin() over unflushed changes or an open transaction is a SessionError; nothing is committed."""
        async with AsyncSession(pool) as s:
            s.add(Tag(code="a", label="A"))
            with pytest.raises(aiouow.SessionError, match="already holds work"):
                async with s.begin():
                    pass
            await s.flush()
            with pytest.raises(aiouow.SessionError, match="already holds work"):
                async with s.begin():
                    pass
            await s.rollback()
            async with s.begin():  # nothing held: a block of its own
                s.add(Tag(code="b", label="B"))
        assert await count(pool, Tag) == 1


class TestAttachment:
    async def test_detached_object_can_be_added_again(self, pool: aiouow.Pool) -> None:
        """A detached object added to a new session is persistent, and its changes made meanwhile are flushed."""
        async with AsyncSession(pool) as s:
            t = Tag(code="a", label="A")
            s.add(t)
            await s.commit()
        t.label = "offline edit"
        async with AsyncSession(pool) as s2:
            s2.add(t)
            assert s2.state(t) is ObjectState.PERSISTENT
            assert s2.dirty_fields(t) == ["label"]
            await s2.commit()
        async with AsyncSession(pool) as s3:
            assert (await s3.get_one(Tag, "a")).label == "offline edit"

    async def test_object_of_another_open_session_is_refused(self, pool: aiouow.Pool) -> None:
        """An object belongs to one open session at a time."""
        async with AsyncSession(pool) as a, AsyncSession(pool) as b:
            t = Tag(code="a", label="A")
            a.add(t)
            with pytest.raises(aiouow.SessionError, match="belongs to another open session"):
                b.add(t)

    async def test_second_object_for_same_row_is_refused(self, pool: aiouow.Pool) -> None:
        """Adding a detached object whose row is already in the map asks for merge()."""
        async with AsyncSession(pool) as s:
            s.add(Tag(code="a", label="A"))
            await s.commit()
        async with AsyncSession(pool) as s:
            detached = await s.get_one(Tag, "a")
        async with AsyncSession(pool) as s:
            await s.get_one(Tag, "a")
            with pytest.raises(aiouow.SessionError, match="use merge"):
                s.add(detached)

    async def test_merge_copies_state_onto_session_object(self, pool: aiouow.Pool) -> None:
        """merge() copies a detached object's fields onto the session's object and returns it."""
        async with AsyncSession(pool) as s:
            s.add(Tag(code="a", label="A"))
            await s.commit()
        outside = Tag(code="a", label="merged")
        fresh = Tag(code="n", label="new")
        async with AsyncSession(pool) as s:
            mine = await s.get_one(Tag, "a")
            merged = await s.merge(outside)
            assert merged is mine and merged is not outside
            assert s.dirty_fields(mine) == ["label"]
            created = await s.merge(fresh)
            assert created is not fresh and s.state(created) is ObjectState.PENDING
            assert s.state(fresh) is ObjectState.TRANSIENT
            await s.commit()
        async with AsyncSession(pool) as s:
            assert (await s.get_one(Tag, "a")).label == "merged"
            assert (await s.get_one(Tag, "n")).label == "new"

    async def test_expunge(self, session: AsyncSession) -> None:
        """expunge() removes one object: persistent becomes detached, pending becomes transient."""
        t = Tag(code="a", label="A")
        p = Tag(code="p", label="P")
        session.add(t)
        await session.flush()
        session.add(p)
        session.expunge(t)
        session.expunge(p)
        assert session.state(t) is ObjectState.DETACHED
        assert session.state(p) is ObjectState.TRANSIENT
        assert len(session) == 0
        again = await session.get_one(Tag, "a")
        assert again is not t
        session.expunge_all()
        assert len(session) == 0
        with pytest.raises(aiouow.DetachedInstanceError, match="not in this session"):
            session.expunge(t)

    async def test_refresh_discards_unflushed_changes(self, session: AsyncSession) -> None:
        """refresh() re-reads the row."""
        t = Tag(code="a", label="A")
        session.add(t)
        await session.flush()
        t.label = "unsaved"
        await session.refresh(t)
        assert t.label == "A" and session.dirty_fields(t) == []
        with pytest.raises(aiouow.DetachedInstanceError, match="refresh Tag"):
            await session.refresh(Tag(code="zz", label="z"))

    async def test_refresh_of_deleted_row_raises_not_found(self, pool: aiouow.Pool) -> None:
        """refresh() of an object whose row is gone raises NotFoundError."""
        async with AsyncSession(pool) as s:
            t = Tag(code="a", label="A")
            s.add(t)
            await s.commit()
            await s.execute("DELETE FROM tags")
            with pytest.raises(aiouow.NotFoundError, match="no longer exists"):
                await s.refresh(t)


class TestConcurrency:
    async def test_gather_on_one_session_is_serialized(self, pool: aiouow.Pool) -> None:
        """Several tasks awaiting one session are serialized; the identity map stays one object per row."""
        async with AsyncSession(pool, n_plus_one="ignore") as s:  # (20 gets from one line, on purpose)
            s.add_all(Tag(code=f"t{i}", label=str(i)) for i in range(20))
            await s.commit()
            s.expunge_all()
            results = await asyncio.gather(
                *(s.get(Tag, f"t{i % 5}") for i in range(40)),
                *(s.scalars(select(Tag).where(Tag.code == "t1")) for _ in range(5)),
                s.all(Tag),
            )
            gets = results[:40]
            for i, obj in enumerate(gets):
                assert obj is gets[i % 5]
            assert results[40][0] is gets[1]  # type: ignore[index]
            assert len(results[-1]) == 20  # type: ignore[arg-type]

    async def test_gather_writes_on_one_session(self, pool: aiouow.Pool) -> None:
        """Concurrent flushes and queries on one session never interleave on the connection."""
        async with AsyncSession(pool) as s:

            async def worker(n: int) -> None:
                for j in range(5):
                    s.add(Tag(code=f"w{n}-{j}", label="x"))
                    await s.flush()
                    await s.all(Tag)

            await asyncio.gather(*(worker(n) for n in range(5)))
            await s.commit()
        assert await count(pool, Tag) == 25

    async def test_session_in_other_loop_raises(self, pool: aiouow.Pool) -> None:
        """A session bound to one event loop refuses to run in another."""
        s = AsyncSession(pool)
        await s.all(Tag)
        await s.commit()

        def other_thread() -> BaseException | None:
            try:
                asyncio.run(s.all(Tag))
            except aiouow.ConcurrentUseError as exc:
                return exc
            return None

        err = await asyncio.to_thread(other_thread)
        assert isinstance(err, aiouow.ConcurrentUseError)
        await s.close()
