"""Unit tests of the per-entity tracker, the transaction log with what a commit and a rollback
settle, and the generated loader: no database, the objects driven as a session drives them."""

from __future__ import annotations

from typing import Any

import pytest

from aiouow import ObjectState
from aiouow._loading import load_objects, object_loader
from aiouow._mapping import mapper_of
from aiouow._restore import after_commit, restore
from aiouow._tracking import NOT_HELD, DetachedState, EntityTracker
from aiouow._txlog import TransactionLog
from aiouow.dialects._base import Dialect
from aiouow.dialects.postgresql.dialect import PostgresDialect
from aiouow.dialects.sqlite.dialect import SQLiteDialect

from .models import OrderLine, Tag, User

SESSION = object()


def tracker_of(entity: type, *objs: Any) -> EntityTracker:
    """A tracker holding ``objs`` as persistent (loaded) objects."""
    tracker = EntityTracker(mapper_of(entity), SESSION)
    for obj in objs:
        tracker.adopt(obj, tracker.mapper.key_of_values(obj.__dict__), {}, None)
    return tracker


class TestEntityTracker:
    def test_states_through_a_lifecycle(self) -> None:
        tracker = tracker_of(Tag)
        tag = Tag(code="a", label="x")
        tracker.add_new(tag)
        assert tracker.state(tag) is ObjectState.PENDING
        assert tracker.state_for(tag, object()) is ObjectState.TRANSIENT  # another session's pending object
        tracker.log.record_inserts(tracker.settle_inserted([tag], None, every_new=True), [tag])
        assert tracker.state(tag) is ObjectState.PERSISTENT and tracker.identity == {"a": tag}
        assert tracker.state_for(tag, object()) is ObjectState.DETACHED
        tracker.mark_deleted(tag)
        assert tracker.state(tag) is ObjectState.DELETED and tracker.lookup("a") is None
        tracker.settle_deleted(["a"], [tag])
        assert tracker.state(tag) is ObjectState.DELETED and tracker.lookup("a") is NOT_HELD
        after_commit(tracker)
        assert tag._aiouow_state is None and not tracker.removed

    def test_assignments_keep_the_first_original(self) -> None:
        tag = Tag(code="a", label="x")
        tracker = tracker_of(Tag, tag)
        tag.label = "y"
        tag.label = "z"
        assert tracker.changes == {"a": {"label": "x"}}
        assert tracker.dirty_fields(tag) == ("label",) and tracker.original_value(tag, "label") == "x"
        tag.label = "x"  # set back: recorded, but no change
        assert tracker.dirty_fields(tag) == () and tracker.changes_to_flush() is None

    def test_a_pending_object_records_only_while_its_insert_is_in_flight(self) -> None:
        tracker = tracker_of(Tag)
        tag = Tag(code="a", label="x")
        tracker.add_new(tag)
        tag.label = "y"
        assert tracker.inflight is None and not tracker.changes
        changes = tracker.changes_to_flush()
        assert changes is not None and changes.new == [tag]
        tracker.take(changes)
        tag.label = "z"  # while the INSERT (of "y") is in flight
        tracker.settle_inserted([tag], None, every_new=True)
        assert tracker.changes == {"a": {"label": "y"}}

    def test_an_assigned_key_keeps_the_object_under_its_row_key(self) -> None:
        tag = Tag(code="a", label="x")
        tracker = tracker_of(Tag, tag)
        tag.code = "b"
        tag.label = "y"
        assert tracker.key_of(tag) == "a" and tracker.state(tag) is ObjectState.PERSISTENT
        assert tracker.changes == {"a": {"code": "a", "label": "x"}}

    def test_changes_are_grouped_by_the_fields_that_changed(self) -> None:
        tags = [Tag(code=f"t{i}", label="x") for i in range(4)]
        tracker = tracker_of(Tag, *tags)
        tags[0].label = "y"
        tags[2].label = "y"
        tracker.mark_deleted(tags[3])
        tags[3].label = "y"  # a deleted object's change is no update
        changes = tracker.changes_to_flush()
        assert changes is not None
        assert list(changes.updates) == [("label",)] and changes.updates[("label",)].keys == ["t0", "t2"]
        assert changes.deletes == {"t3": tags[3]}

    def test_untake_gives_back_the_changes_merged_with_later_ones(self) -> None:
        tag = Tag(code="a", label="x")
        tracker = tracker_of(Tag, tag)
        tag.label = "y"
        changes = tracker.changes_to_flush()
        assert changes is not None
        tracker.take(changes)
        assert tracker.changes == {}
        tag.label = "z"  # while the flush is in flight: its original is "y"
        tracker.untake(changes)
        assert tracker.changes == {"a": {"label": "x"}}

    def test_forget_detaches_with_the_changes_and_adopt_takes_them_back(self) -> None:
        tag = Tag(code="a", label="x")
        tracker = tracker_of(Tag, tag)
        tag.label = "y"
        tracker.forget(tag)
        detached = tag._aiouow_state
        assert isinstance(detached, DetachedState) and tracker.identity == {} and tracker.changes == {}
        tag.label = "z"
        assert detached.changes == {"label": "x"} and detached.dirty_fields(tag) == ("label",)
        other = tracker_of(Tag)
        other.adopt(tag, *detached.detached_parts(tag))
        assert other.changes == {"a": {"label": "x"}} and other.state(tag) is ObjectState.PERSISTENT

    def test_a_closed_tracker_leaves_its_objects_detached(self) -> None:
        tag = Tag(code="a", label="x")
        user = User(name="u", email="e", profile={"a": 1})
        user.__dict__["id"] = 1
        tracker = tracker_of(Tag, tag)
        users = tracker_of(User, user)
        tracker.close()
        users.close()
        assert tag._aiouow_state is tracker and tracker.state(tag) is ObjectState.DETACHED
        tag.label = "y"  # recorded in a state of its own from now on
        assert isinstance(tag._aiouow_state, DetachedState) and tag._aiouow_state.changes == {"label": "x"}
        held = user._aiouow_state
        assert isinstance(held, DetachedState) and held.json_text == {"profile": '{"a":1}'}
        user.profile["a"] = 2  # type: ignore[index]  # in place, while detached: still a change
        assert held.dirty_fields(user) == ("profile",)

    def test_composite_keys(self) -> None:
        line = OrderLine(order_id=1, line=2, sku="x")
        tracker = tracker_of(OrderLine, line)
        assert tracker.key_type is None and tracker.identity == {(1, 2): line}
        line.qty = 5
        assert tracker.changes == {(1, 2): {"qty": 1}}


class TestTransactionLog:
    def test_updated_keeps_the_first_before_of_each_row(self) -> None:
        log = TransactionLog()
        log.record_updates(["a"], [{"label": "x"}])
        log.record_updates(["a", "b"], [{"label": "y"}, {"label": "p"}])
        assert log.updated() == {"a": {"label": "x"}, "b": {"label": "p"}}

    def test_rows_inserted_in_the_transaction_have_nothing_to_restore(self) -> None:
        log = TransactionLog()
        obj = object()
        log.record_inserts(["a"], [obj])
        log.record_updates(["a"], [{"label": "x"}])
        log.record_deletes(["a"], [obj])
        assert log.updated() == {} and list(log.deleted()) == [("a", obj, True)]
        log.clear()
        assert not log

    def test_a_row_deleted_before_it_was_inserted_again_comes_back(self) -> None:
        log = TransactionLog()
        old, new = object(), object()
        log.record_deletes(["a"], [old])
        log.record_inserts(["a"], [new])
        assert list(log.deleted()) == [("a", old, False)]

    def test_since_a_mark_only_what_came_after_it_is_undone(self) -> None:
        """A savepoint's mark: a row inserted before it is a row to restore, not to remove."""
        log = TransactionLog()
        before, inside = object(), object()
        log.record_inserts(["a"], [before])
        log.record_updates(["a"], [{"label": "at insert"}])
        mark = log.mark()
        log.record_updates(["a"], [{"label": "at mark"}])
        log.record_inserts(["b"], [inside])
        log.record_updates(["b"], [{"label": "new"}])
        log.record_deletes(["a", "b"], [before, inside])
        assert list(log.inserted(mark)) == [("b", inside)]
        assert log.updated(mark) == {"a": {"label": "at mark"}}
        assert list(log.deleted(mark)) == [("a", before, False), ("b", inside, True)]
        log.truncate(mark)
        assert log.mark() == mark and list(log.inserted()) == [("a", before)]
        assert log.updated() == {} and list(log.deleted()) == []


class TestRestore:
    def test_rollback_puts_back_updates_inserts_and_deletes(self) -> None:
        kept = Tag(code="k", label="x")
        gone = Tag(code="g", label="x")
        tracker = tracker_of(Tag, kept, gone)
        kept.label = "y"
        gone.label = "changed"
        tracker.mark_deleted(gone)
        new = Tag(code="n", label="x")
        tracker.add_new(new)
        changes = tracker.changes_to_flush()
        assert changes is not None
        tracker.take(changes)
        (group,) = changes.updates.values()
        tracker.log.record_inserts(tracker.settle_inserted([new], None, every_new=True), [new])
        tracker.log.record_updates(group.keys, group.originals)
        tracker.settle_deleted(["g"], [gone])
        tracker.log.record_deletes(["g"], [gone])
        pending = Tag(code="p", label="x")
        tracker.add_new(pending)
        restore(tracker)
        assert kept.label == "x" and gone.label == "x"
        assert tracker.identity == {"k": kept, "g": gone} and tracker.state(gone) is ObjectState.PERSISTENT
        assert new._aiouow_state is None and pending._aiouow_state is None
        assert not (tracker.changes or tracker.deleting or tracker.removed or tracker.new or tracker.log)

    def test_commit_makes_deleted_objects_transient(self) -> None:
        tag = Tag(code="a", label="x")
        tracker = tracker_of(Tag, tag)
        tracker.mark_deleted(tag)
        tracker.settle_deleted(["a"], [tag])
        tracker.log.record_deletes(["a"], [tag])
        after_commit(tracker)
        assert tag._aiouow_state is None and not tracker.log


@pytest.mark.parametrize("dialect", [SQLiteDialect(), PostgresDialect()], ids=lambda d: d.name)
class TestLoader:
    def test_one_object_per_row_through_the_identity_map(self, dialect: Dialect) -> None:
        tracker = tracker_of(Tag)
        first = load_objects(tracker, dialect, [("a", "A"), ("b", "B")], refresh=False)
        assert [t.code for t in first] == ["a", "b"] and all(t._aiouow_state is tracker for t in first)
        first[0].label = "changed"
        again = load_objects(tracker, dialect, [("b", "B2"), ("a", "A2"), ("c", "C")], refresh=False)
        assert again[0] is first[1] and again[1] is first[0] and first[0].label == "changed"
        assert again[1].label == "changed" and first[1].label == "B"  # a plain load keeps held values
        assert tracker.identity.keys() == {"a", "b", "c"}

    def test_a_key_twice_among_new_rows_gives_one_object(self, dialect: Dialect) -> None:
        tracker = tracker_of(Tag)
        objs = object_loader(tracker.mapper, dialect)([("a", "A"), ("a", "A")], tracker, None)
        assert objs[0] is objs[1] and len(tracker.identity) == 1

    def test_a_refresh_keeps_unflushed_changes_and_takes_the_rest(self, dialect: Dialect) -> None:
        tag = Tag(code="a", label="x")
        tracker = tracker_of(Tag, tag)
        tag.label = "mine"
        load_objects(tracker, dialect, [("a", "theirs")], refresh=True)
        assert tag.label == "mine" and tracker.changes == {"a": {"label": "theirs"}}

    def test_json_text_is_taken_for_new_objects(self, dialect: Dialect) -> None:
        tracker = tracker_of(User)
        raw = '{"a":1}' if dialect.name == "sqlite" else '{"a": 1}'
        created: Any = "2024-01-01 00:00:00" if dialect.name == "sqlite" else None
        if created is None:
            import datetime as dt

            created = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        (user,) = load_objects(tracker, dialect, [(1, "u", "e", True, created, raw)], refresh=False)
        assert user.profile == {"a": 1} and tracker.json_text == {1: {"profile": '{"a":1}'}}
