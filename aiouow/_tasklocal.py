"""Task-local sessions: ``aiouow.current_session()`` and ``aiouow.task_session(pool)``.

A session is bound to the task that binds it, in a context variable. Context variables are
copied into the tasks a task creates (``create_task``, ``TaskGroup``, ``gather``), so the binding
records its owning task: in another task ``current_session()`` refuses, naming the owner and the
two ways out, instead of letting two tasks share one session (and its transaction) without
knowing it. The web integrations bind the request's session (made lazily) to the request's task.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from .errors import SessionError

if TYPE_CHECKING:
    from ._pool import Pool
    from ._session import AsyncSession


class Binding:
    """The session bound to a task: how to get it (the web integrations make it on first use),
    and the task it belongs to."""

    __slots__ = ("get", "task")

    def __init__(self, get: Callable[[], AsyncSession], task: asyncio.Task[Any] | None) -> None:
        self.get = get
        self.task = weakref.ref(task) if task is not None else None

    def owner(self) -> asyncio.Task[Any] | None:
        return self.task() if self.task is not None else None


_bound: contextvars.ContextVar[Binding | None] = contextvars.ContextVar("aiouow_task_session", default=None)


def current_session() -> AsyncSession:
    """The session bound to the current task (by `task_session`, ``s.fork()``, or a web
    integration for the request's task). `SessionError` when none is bound, and in a task other
    than the one that bound it (a child task: use ``async with s.fork() as child:`` there, or pass
    the session explicitly)."""
    binding = _bound.get()
    if binding is None:
        raise SessionError(
            "no aiouow session is bound to this task: open one with `async with aiouow.task_session(pool) as s:` "
            "(or install a web integration's session middleware, which binds the request's session)"
        )
    task = asyncio.current_task()
    owner = binding.owner()
    if owner is not task:
        raise SessionError(
            f"the aiouow session bound here belongs to task {_name(owner)}, not to this one ({_name(task)}): a "
            "task created while a session was bound does not share it silently; give it its own with "
            "`async with session.fork() as child:`, or pass the session to it explicitly"
        )
    return binding.get()


def bind(get: Callable[[], AsyncSession]) -> contextvars.Token[Binding | None]:
    """Bind a session (or how to make it) to the current task; `unbind` with the token."""
    return _bound.set(Binding(get, asyncio.current_task()))


def unbind(token: contextvars.Token[Binding | None]) -> None:
    _bound.reset(token)


@asynccontextmanager
async def task_session(pool: Pool, **options: Any) -> AsyncIterator[AsyncSession]:
    """``async with aiouow.task_session(pool) as s:`` opens a session (``AsyncSession(pool,
    **options)``) bound to the current task for the block: `current_session()` returns it anywhere
    below. Leaving the block closes it, as ``async with AsyncSession(...)`` does (what was not
    committed is rolled back), and binds again what was bound before."""
    from ._session import AsyncSession

    session = AsyncSession(pool, **options)
    token = bind(lambda: session)
    try:
        async with session:
            yield session
    finally:
        unbind(token)


@asynccontextmanager
async def forked(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """What ``s.fork()`` runs: a new session on the same pool with the same options, bound to the
    current task for the block."""
    # (after=: the child reads what its parent committed, on a pool with replicas too)
    async with task_session(session.pool, **session._fork_options, after=session._after) as child:
        yield child


def _name(task: asyncio.Task[Any] | None) -> str:
    if task is None:
        return "(none, or one that has finished)"
    return repr(task.get_name())
