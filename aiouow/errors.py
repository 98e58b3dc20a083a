"""The aiouow error tree.

Every error aiouow raises derives from `AiouowError`. Driver exceptions never reach
the caller untranslated: the dialect translates them at its boundary and keeps the driver's
exception as ``__cause__``. Messages read "cannot X: reason" and name the entity, field or
constraint involved.

```
AiouowError
├── ConfigurationError           a bad database URL or pool option
├── MappingError                 an entity class cannot be mapped
├── QueryError                   a query is malformed (unknown field, bad operand)
├── SessionError                 the session cannot do what was asked in its state
│   ├── SessionClosedError
│   ├── DetachedInstanceError
│   └── ConcurrentUseError
├── SchemaError                  the live tables differ from the entities (check_schema)
├── NotLoadedError               a relationship was read before it was loaded (aiouow never loads by itself)
├── NotFoundError (LookupError)
├── MultipleResultsError
├── NPlusOneError                one call site read rows one key at a time, over and over
└── DatabaseError                the database refused or failed
    ├── IntegrityError
    │   ├── UniqueViolationError
    │   ├── ForeignKeyViolationError
    │   ├── NotNullViolationError
    │   └── CheckViolationError
    ├── DataError                a value does not fit its column
    ├── OperationalError
    │   ├── ConnectionLostError
    │   └── PoolTimeoutError
    ├── SerializationError       retryable (40001 / 40P01 / SQLite busy snapshot)
    ├── StaleDataError           a versioned or updated row was not where we left it
    └── CommitOutcomeUnknownError
```
"""

from __future__ import annotations

from typing import TypeVar

__all__ = [
    "AiouowError",
    "CheckViolationError",
    "CommitOutcomeUnknownError",
    "ConcurrentUseError",
    "ConfigurationError",
    "ConnectionLostError",
    "DataError",
    "DatabaseError",
    "DetachedInstanceError",
    "ForeignKeyViolationError",
    "IntegrityError",
    "MappingError",
    "MultipleResultsError",
    "NPlusOneError",
    "NPlusOneWarning",
    "NotFoundError",
    "NotLoadedError",
    "NotNullViolationError",
    "OperationalError",
    "PoolTimeoutError",
    "QueryError",
    "SchemaError",
    "SerializationError",
    "SessionClosedError",
    "SessionError",
    "StaleDataError",
    "UniqueViolationError",
]


E = TypeVar("E", bound=BaseException)


def with_details(err: E, **details: object) -> E:
    """``err`` with structured details set (``entity``, ``field``, ``reason``, ``constraint``): what
    the web integrations put in an error response, where the message may say more (``stored``)."""
    for name, value in details.items():
        setattr(err, name, value)
    return err


class AiouowError(Exception):
    """The root of every error raised by aiouow."""


class ConfigurationError(AiouowError, ValueError):
    """A database URL or a pool option is not valid."""


class MappingError(AiouowError):
    """An entity class cannot be mapped to a table (bad annotation, bad field options)."""


class QueryError(AiouowError):
    """A query is malformed: an unknown field, an operand that is not a column expression."""


class SessionError(AiouowError):
    """The session cannot do what was asked in its current state."""


class SessionClosedError(SessionError):
    """The session was closed; a closed session cannot be used again."""


class DetachedInstanceError(SessionError):
    """The operation needs an object that belongs to this session."""


class ConcurrentUseError(SessionError):
    """The session was used in a way that cannot be serialized safely (another thread or loop)."""


class SchemaError(AiouowError):
    """The live tables differ from the entities (`aiouow.Pool.check_schema`)."""

    differences: list[str]
    """Every difference found, one sentence each."""

    def __init__(self, message: str, differences: list[str] | None = None) -> None:
        super().__init__(message)
        self.differences = list(differences or [])


class NotLoadedError(AiouowError):
    """A relationship of an object was read before it was loaded; the message says how to load it.

    Deliberately not an ``AttributeError``: ``hasattr``, ``getattr(obj, name, default)`` and
    pydantic's ``from_attributes`` must not mistake an unloaded relationship for an absent one.
    """


class NotFoundError(AiouowError, LookupError):
    """A row that was required does not exist."""

    entity: str | None = None
    """The entity whose row it is."""


class MultipleResultsError(AiouowError):
    """Exactly one row was required and several matched."""


class NPlusOneError(AiouowError):
    """One line of the program sent the same single-row statement more than ten times in a session
    (``AsyncSession(pool, n_plus_one="raise")``): read the rows in one statement instead."""


class NPlusOneWarning(UserWarning):
    """What `NPlusOneError` says, as a warning (``n_plus_one="warn"``, the default)."""


class DatabaseError(AiouowError):
    """The database refused a statement or failed while running it."""


class IntegrityError(DatabaseError):
    """A constraint was violated."""

    constraint: str | None = None
    """The name of the violated constraint (``table.column`` on SQLite), when the database names it."""


class UniqueViolationError(IntegrityError):
    """A unique or primary-key constraint was violated."""


class ForeignKeyViolationError(IntegrityError):
    """A foreign-key constraint was violated."""


class NotNullViolationError(IntegrityError):
    """A NOT NULL constraint was violated."""


class CheckViolationError(IntegrityError):
    """A CHECK constraint was violated."""


class DataError(DatabaseError):
    """A value does not fit its column (wrong type, out of range, bad encoding)."""

    entity: str | None = None
    """The entity whose value it is, when aiouow knows it."""
    field: str | None = None
    """The field whose value it is, when aiouow knows it."""
    reason: str | None = None
    """What is wrong with the value, in aiouow's words (no SQL, no other row's data), when known."""
    stored: bool = False
    """True when the value is one the database holds and a load could not read (not one being written)."""


class OperationalError(DatabaseError):
    """The database or the pool could not run the operation (locked, gone, timed out)."""


class ConnectionLostError(OperationalError):
    """The connection to the database was lost."""


class PoolTimeoutError(OperationalError):
    """No connection could be acquired from the pool within ``acquire_timeout``."""


class SerializationError(DatabaseError):
    """The transaction conflicted with another one; running the whole unit of work again may succeed."""


class StaleDataError(DatabaseError):
    """An UPDATE or versioned DELETE matched fewer rows than expected: the row changed or vanished."""

    entity: str | None = None
    """The entity of the row."""


class CommitOutcomeUnknownError(DatabaseError):
    """The connection was lost while COMMIT was in flight: the transaction may or may not be committed."""
