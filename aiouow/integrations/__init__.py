"""Web-framework integrations: one session per request, committed before the response starts.

One module per framework, each imported on its own so that aiouow never imports a framework
you do not use:

- `aiouow.integrations.starlette`: a pure-ASGI ``SessionMiddleware`` and ``get_session(request)``
  for Starlette and FastAPI (``Depends(get_session)``). Install with ``pip install aiouow[starlette]``.
- `aiouow.integrations.aiohttp`: ``setup(app, pool)`` (or ``session_middleware(pool)``) and
  ``get_session(request)`` for aiohttp. Install with ``pip install aiouow[aiohttp]``.

Both follow the same rules:

- A request gets its session on the first ``get_session`` call; a request that never calls it
  takes no connection and runs no statement.
- When the response starts with a status below 400, the session is committed first; if that
  commit fails, the client gets 409 (a unique or foreign-key violation) or 500 instead, never a
  2xx. A response of 400 or more, or a handler that raises, gets a rollback.
- The session is closed and its connection released when the request ends, however it ends:
  after a streamed body, when the client disconnects, when the request task is cancelled.
- ``on_stats(stats, info)`` receives each request's `aiouow.SessionStats` and a `RequestInfo`;
  without a callback, one DEBUG line per request goes to the ``aiouow.integrations`` logger.
"""

from __future__ import annotations

from ._common import RequestInfo, StatsCallback

__all__ = ["RequestInfo", "StatsCallback"]
