"""Calling the listeners of `aiouow.event` at the points of a unit of work (the session calls these).

While a listener runs inside an operation that holds the session's lock (``before_flush``,
``after_flush``, ``before_commit`` and the entity events), `SessionLifecycle.listening` names the
task and the event, so that a listener awaiting the session's IO operations gets a `SessionError`
instead of waiting forever for the lock its own operation holds.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._session import AsyncSession

SESSION_EVENTS = ("before_flush", "after_flush", "before_commit", "after_commit", "after_rollback")
ENTITY_EVENTS = ("before_insert", "before_update", "before_delete")

#: One target's listeners: event name -> functions, in the order they were added.
Listeners = dict[str, list[Callable[..., Any]]]

#: How many entity-event listeners exist, on any target: while none do, a flush looks for none.
entity_listeners = 0


def listeners_of(session: AsyncSession, name: str, entity: Listeners | None = None) -> list[Callable[..., Any]]:
    """The listeners of an event for the session: the pool's first, then the session's own, then
    (entity events) the entity class's."""
    found: list[Callable[..., Any]] = []
    for listeners in (session._pool._listeners, session._listeners, entity):
        if listeners:
            found.extend(listeners.get(name, ()))
    return found


async def call(fn: Callable[..., Any], *args: Any) -> None:
    """Call a listener; await what a coroutine function returns."""
    result = fn(*args)
    if inspect.isawaitable(result):
        await result


async def fire(session: AsyncSession, name: str, *, locked: bool) -> None:
    """Call the listeners of session event ``name``; ``locked``: inside an operation holding the lock."""
    fns = listeners_of(session, name)
    if not fns:
        return
    life = session._life
    outer = life.listening
    if locked:
        life.listening = (asyncio.current_task(), name)
    try:
        for fn in fns:
            await call(fn, session)
    finally:
        life.listening = outer


async def before_flush(session: AsyncSession) -> None:
    """A flush is about to be taken (with changes to write): ``before_flush``, then the entity
    events of the objects it is about to write. What they change is written by the same flush."""
    await fire(session, "before_flush", locked=True)
    if not entity_listeners:
        return
    life = session._life
    outer = life.listening
    try:
        for tracker in list(session._objects):
            own = tracker.mapper.listeners
            for name, objs in (
                ("before_insert", list(tracker.new.values())),
                ("before_update", tracker.dirty_objects()),
                ("before_delete", list(tracker.deleting.values())),
            ):
                if not objs:
                    continue
                fns = listeners_of(session, name, own)
                if not fns:
                    continue
                life.listening = (asyncio.current_task(), name)
                for obj in objs:
                    for fn in fns:
                        await call(fn, session, obj)
    finally:
        life.listening = outer


async def after_commit(session: AsyncSession, flushed: bool) -> None:
    """The COMMIT went through and the session's lock is free: ``after_flush`` (when the commit sent
    a flush), then ``after_commit``. A listener's exception propagates from ``commit()`` with a note
    saying that the transaction stays committed."""
    try:
        if flushed:
            await fire(session, "after_flush", locked=False)
        await fire(session, "after_commit", locked=False)
    except BaseException as exc:
        exc.add_note("aiouow: raised by an after_commit (or after_flush) listener; the transaction was committed")
        raise
