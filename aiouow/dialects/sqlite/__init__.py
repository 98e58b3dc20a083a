"""The SQLite dialect, on aiosqlite.

Every connection runs in WAL mode with foreign keys on. Readers share the database; writers
are serialized inside the pool by an asyncio lock taken at a transaction's first write, so
sessions of one pool never meet "database is locked". A transaction that has only read when it
first writes is restarted as ``BEGIN IMMEDIATE`` under the lock: its earlier reads behave as
under PostgreSQL's READ COMMITTED, and the write can never fail on a stale snapshot.
"""

from __future__ import annotations

from .connection import SQLiteConnection
from .dialect import VARIABLE_LIMIT, SQLiteDialect
from .errors import TRANSLATED, translate
from .pool import SQLitePool, open_pool

__all__ = ["TRANSLATED", "VARIABLE_LIMIT", "SQLiteConnection", "SQLiteDialect", "SQLitePool", "open_pool", "translate"]
