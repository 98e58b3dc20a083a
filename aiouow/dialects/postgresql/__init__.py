"""The PostgreSQL dialect, on asyncpg.

Every statement goes through asyncpg's prepared statements, cached per connection; a flush
sends one statement per table and kind whose text does not depend on the number of rows:
INSERTs select from ``unnest`` of one array per column ``WITH ORDINALITY`` (generated keys come
back with RETURNING and are matched to objects in input order), UPDATEs join ``unnest`` of the
keys and new values, DELETEs use ``= ANY($1)``. No parameter limit, no statement cache misses.
"""

from __future__ import annotations

from ..._url import redact
from .connection import PostgresConnection
from .dialect import PostgresDialect
from .errors import TRANSLATED, translate
from .pool import PooledConnection, PostgresPool, open_pool, wrap_pool

__all__ = [
    "TRANSLATED",
    "PooledConnection",
    "PostgresConnection",
    "PostgresDialect",
    "PostgresPool",
    "open_pool",
    "redact",
    "translate",
    "wrap_pool",
]
