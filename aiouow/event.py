"""Events: functions that the session calls at points of a unit of work.

```python
@aiouow.event.listens_for(pool, "before_flush")          # every session on the pool
def stamp(session: aiouow.AsyncSession) -> None:
    for obj in session.dirty:
        if isinstance(obj, Post):
            obj.updated = now()                              # written by this same flush

aiouow.event.listen(Post, "before_insert", lambda session, post: ...)   # the entity's objects
aiouow.event.listen(session, "after_commit", notify)                   # one session; a coroutine function is awaited
```

Targets: an `AsyncSession`, a `Pool` (every session on it, opened before or after), or an entity
class (its objects: the entity events only). Session events, ``fn(session)``: ``before_flush``,
``after_flush``, ``before_commit``, ``after_commit``, ``after_rollback``. Entity events,
``fn(session, obj)``: ``before_insert``, ``before_update``, ``before_delete``; on a session or a
pool they apply to the objects of every entity. See "Events" in the session guide for the order
and what a listener may do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from . import _dispatch
from ._dispatch import ENTITY_EVENTS, SESSION_EVENTS, Listeners
from .errors import ConfigurationError

__all__ = ["ENTITY_EVENTS", "SESSION_EVENTS", "contains", "listen", "listens_for", "remove"]

F = TypeVar("F", bound=Callable[..., Any])


def _listeners_of(target: Any, name: str) -> Listeners:
    """The listeners of a target, after checking that it can have the event ``name``."""
    from ._mapping import mapper_of
    from ._pool import Pool
    from ._session import AsyncSession

    if name not in SESSION_EVENTS and name not in ENTITY_EVENTS:
        raise ConfigurationError(
            f"unknown event {name!r}: session events are {', '.join(SESSION_EVENTS)}; "
            f"entity events are {', '.join(ENTITY_EVENTS)}"
        )
    if isinstance(target, (AsyncSession, Pool)):
        return target._listeners
    if isinstance(target, type):
        try:
            mapper = mapper_of(target)
        except Exception:
            mapper = None
        if mapper is not None:
            if name not in ENTITY_EVENTS:
                raise ConfigurationError(
                    f"cannot listen to {name!r} on {target.__name__}: an entity class has the entity events "
                    f"({', '.join(ENTITY_EVENTS)}); listen on a session or a pool for {name!r}"
                )
            return mapper.listeners
    raise TypeError(
        f"cannot listen to {name!r} on {target!r}: the target is an AsyncSession, a Pool or an entity class"
    )


def listen(target: Any, name: str, fn: Callable[..., Any]) -> None:
    """Call ``fn`` at event ``name`` of ``target``: ``fn(session)`` for a session event,
    ``fn(session, obj)`` for an entity event. A coroutine function's result is awaited. Adding the
    same function twice calls it twice."""
    if not callable(fn):
        raise TypeError(f"cannot listen to {name!r} with {fn!r}: a listener is a function")
    listeners = _listeners_of(target, name)
    listeners.setdefault(name, []).append(fn)
    if name in ENTITY_EVENTS:
        _dispatch.entity_listeners += 1


def listens_for(target: Any, name: str) -> Callable[[F], F]:
    """The decorator form of `listen`: ``@aiouow.event.listens_for(pool, "before_flush")``."""

    def decorate(fn: F) -> F:
        listen(target, name, fn)
        return fn

    return decorate


def remove(target: Any, name: str, fn: Callable[..., Any]) -> None:
    """Stop calling ``fn`` at event ``name`` of ``target`` (the last time it was added)."""
    listeners = _listeners_of(target, name)
    found = listeners.get(name, [])
    for i in range(len(found) - 1, -1, -1):
        if found[i] == fn:
            del found[i]
            if not found:
                del listeners[name]
            if name in ENTITY_EVENTS:
                _dispatch.entity_listeners -= 1
            return
    raise ConfigurationError(f"cannot remove {fn!r}: it does not listen to {name!r} on {target!r}")


def contains(target: Any, name: str, fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` listens to event ``name`` of ``target``."""
    return fn in _listeners_of(target, name).get(name, ())
