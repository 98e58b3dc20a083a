"""aiouow: an asyncio-native unit of work.

```python
import aiouow
from aiouow import AsyncSession, Entity, field, select

class User(Entity, table="users"):
    id: int = field(primary_key=True)
    name: str

async with aiouow.create_pool("sqlite:///app.db") as pool:
    await pool.create_all(User)
    async with AsyncSession(pool) as s:
        s.add(User(name="alice"))
        await s.commit()
```
"""

from __future__ import annotations

from . import errors, event
from ._aggregates import Aggregate, func
from ._aliases import Alias, aliased
from ._expressions import Column, Expression, Ordering, col
from ._fields import field
from ._fieldtools import asdict, fields, update
from ._mapping import Entity
from ._pool import Pool, create_pool
from ._query import Select, select
from ._relations import Relationship, rel, relationship
from ._retry import run_transaction
from ._savepoint import Savepoint, SavepointState
from ._session import AsyncSession
from ._state import ObjectState, SessionState
from ._stats import SessionStats
from ._tasklocal import current_session, task_session
from ._txoptions import Isolation
from .dialects._base import PoolStats
from .errors import (
    AiouowError,
    CheckViolationError,
    CommitOutcomeUnknownError,
    ConcurrentUseError,
    ConfigurationError,
    ConnectionLostError,
    DatabaseError,
    DataError,
    DetachedInstanceError,
    ForeignKeyViolationError,
    IntegrityError,
    MappingError,
    MultipleResultsError,
    NotFoundError,
    NotLoadedError,
    NotNullViolationError,
    NPlusOneError,
    NPlusOneWarning,
    OperationalError,
    PoolTimeoutError,
    QueryError,
    SchemaError,
    SerializationError,
    SessionClosedError,
    SessionError,
    StaleDataError,
    UniqueViolationError,
)

__version__ = "0.1.0"

__all__ = [
    "Aggregate",
    "AiouowError",
    "Alias",
    "AsyncSession",
    "CheckViolationError",
    "Column",
    "CommitOutcomeUnknownError",
    "ConcurrentUseError",
    "ConfigurationError",
    "ConnectionLostError",
    "DataError",
    "DatabaseError",
    "DetachedInstanceError",
    "Entity",
    "Expression",
    "ForeignKeyViolationError",
    "IntegrityError",
    "Isolation",
    "MappingError",
    "MultipleResultsError",
    "NPlusOneError",
    "NPlusOneWarning",
    "NotFoundError",
    "NotLoadedError",
    "NotNullViolationError",
    "ObjectState",
    "OperationalError",
    "Ordering",
    "Pool",
    "PoolStats",
    "PoolTimeoutError",
    "QueryError",
    "Relationship",
    "Savepoint",
    "SavepointState",
    "SchemaError",
    "Select",
    "SerializationError",
    "SessionClosedError",
    "SessionError",
    "SessionState",
    "SessionStats",
    "StaleDataError",
    "UniqueViolationError",
    "aliased",
    "asdict",
    "col",
    "create_pool",
    "current_session",
    "errors",
    "event",
    "field",
    "fields",
    "func",
    "rel",
    "relationship",
    "run_transaction",
    "select",
    "task_session",
    "update",
]
