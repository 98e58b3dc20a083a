"""asyncpg exceptions translated into the aiouow error tree, by SQLSTATE."""

from __future__ import annotations

import asyncio

import asyncpg.exceptions as pgerr

from ...errors import (
    AiouowError,
    CheckViolationError,
    ConnectionLostError,
    DatabaseError,
    DataError,
    ForeignKeyViolationError,
    IntegrityError,
    NotNullViolationError,
    OperationalError,
    SerializationError,
    UniqueViolationError,
)

_BY_STATE: dict[str, type[DatabaseError]] = {
    "23505": UniqueViolationError,
    "23503": ForeignKeyViolationError,
    "23502": NotNullViolationError,
    "23514": CheckViolationError,
    "40001": SerializationError,  # serialization_failure
    "40P01": SerializationError,  # deadlock_detected
    "40002": IntegrityError,  # transaction_integrity_constraint_violation
    "40003": OperationalError,  # statement_completion_unknown
    "57P01": ConnectionLostError,  # admin_shutdown: pg_terminate_backend
    "57P02": ConnectionLostError,  # crash_shutdown
    "57P03": ConnectionLostError,  # cannot_connect_now
}
_BY_CLASS: dict[str, type[DatabaseError]] = {
    "23": IntegrityError,
    "22": DataError,
    "08": ConnectionLostError,
    "40": DatabaseError,  # transaction_rollback: only 40001 and 40P01 are retryable
    "53": OperationalError,  # insufficient resources
    "54": OperationalError,  # program limit exceeded
    "55": OperationalError,  # object not in prerequisite state (lock not available, ...)
    "57": OperationalError,  # operator intervention (query canceled, ...)
    "58": OperationalError,  # system error
    "XX": OperationalError,  # internal error
    "26": OperationalError,  # invalid SQL statement name (PgBouncer without statement_cache_size=0)
}

_REASONS: dict[type[DatabaseError], str] = {
    UniqueViolationError: "unique constraint {constraint} violated",
    ForeignKeyViolationError: "foreign key constraint {constraint} violated",
    NotNullViolationError: "column {column} may not be NULL",
    CheckViolationError: "check constraint {constraint} violated",
    SerializationError: "the transaction conflicted with another one and can be run again",
    ConnectionLostError: "the connection to the database was lost",
}

#: The asyncpg exception bases translate() understands (tests check that every class is covered).
TRANSLATED: tuple[type[BaseException], ...] = (
    pgerr.PostgresError,
    pgerr.InterfaceError,
    pgerr.InternalClientError,
    OSError,
    asyncio.TimeoutError,
)


def translate(exc: BaseException, action: str) -> AiouowError:
    """Translate an asyncpg exception into the aiouow tree (the caller sets ``__cause__``)."""
    if isinstance(exc, pgerr.PostgresError):
        state = exc.sqlstate or ""
        cls = _BY_STATE.get(state) or _BY_CLASS.get(state[:2], DatabaseError)
        message = exc.args[0] if exc.args else str(exc)
        constraint = getattr(exc, "constraint_name", None)
        column = getattr(exc, "column_name", None)
        template = _REASONS.get(cls)
        reason = template.format(constraint=constraint, column=column) if template else message
        detail = f" ({message})" if template else ""
        # The server's DETAIL and HINT say which key collided, or what depends on a table.
        for label, extra in (("DETAIL", getattr(exc, "detail", None)), ("HINT", getattr(exc, "hint", None))):
            if extra:
                detail += f" {label}: {extra}"
        err = cls(f"cannot {action}: {reason}{detail} [SQLSTATE {state}]")
        if isinstance(err, IntegrityError):
            err.constraint = constraint
        return err
    if isinstance(exc, (pgerr.ConnectionDoesNotExistError, pgerr.ConnectionFailureError, OSError)):
        return ConnectionLostError(f"cannot {action}: the connection to the database was lost ({exc})")
    if isinstance(exc, pgerr.InternalClientError) and "another operation" in str(exc):
        # asyncpg's protocol is still busy with an operation that will not finish: met on a
        # connection the server has just closed ("cannot switch to state 15; another operation
        # (2) is in progress"). The connection is unusable.
        return ConnectionLostError(f"cannot {action}: the connection is unusable ({exc})")
    if isinstance(exc, pgerr.InterfaceError) and ("closed" in str(exc) or "released back" in str(exc)):
        # asyncpg detaches a connection that closed under us ("released back to the pool").
        return ConnectionLostError(f"cannot {action}: the connection was lost ({exc})")
    if isinstance(exc, (pgerr.DataError, ValueError, TypeError, OverflowError)):
        return DataError(f"cannot {action}: a value does not fit its column ({exc})")
    return DatabaseError(f"cannot {action}: {type(exc).__name__}: {exc}")


DRIVER_ERRORS = (
    pgerr.PostgresError,
    pgerr.InterfaceError,
    pgerr.InternalClientError,
    OSError,
    ValueError,
    TypeError,
    OverflowError,
)
