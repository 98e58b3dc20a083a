"""sqlite3 and aiosqlite exceptions translated into the aiouow error tree."""

from __future__ import annotations

import sqlite3

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

_CONSTRAINT_ERRORS: dict[str, type[IntegrityError]] = {
    "SQLITE_CONSTRAINT_UNIQUE": UniqueViolationError,
    "SQLITE_CONSTRAINT_PRIMARYKEY": UniqueViolationError,
    "SQLITE_CONSTRAINT_ROWID": UniqueViolationError,
    "SQLITE_CONSTRAINT_FOREIGNKEY": ForeignKeyViolationError,
    "SQLITE_CONSTRAINT_NOTNULL": NotNullViolationError,
    "SQLITE_CONSTRAINT_CHECK": CheckViolationError,
}


def translate(exc: BaseException, action: str) -> AiouowError:
    """Translate an sqlite3/aiosqlite exception into the aiouow tree (the caller sets ``__cause__``)."""
    msg = str(exc)
    name = getattr(exc, "sqlite_errorname", "") or ""
    if isinstance(exc, sqlite3.IntegrityError):
        cls = _CONSTRAINT_ERRORS.get(name, IntegrityError)
        if cls is IntegrityError and "FOREIGN KEY constraint failed" in msg:
            cls = ForeignKeyViolationError  # (an ON DELETE RESTRICT reports SQLITE_CONSTRAINT_TRIGGER)
        err: IntegrityError = cls(f"cannot {action}: {_constraint_reason(cls, msg)} ({msg})")
        err.constraint = msg.split(": ", 1)[1] if ": " in msg else None
        return err
    if isinstance(exc, (sqlite3.DataError, OverflowError)):
        return DataError(f"cannot {action}: a value does not fit its column ({msg})")
    if name == "SQLITE_BUSY_SNAPSHOT":
        return SerializationError(f"cannot {action}: another connection wrote since this transaction read ({msg})")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return OperationalError(f"cannot {action}: the database is locked by another process ({msg})")
    if isinstance(exc, sqlite3.OperationalError):
        return OperationalError(f"cannot {action}: {msg}")
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in msg.lower():
        return ConnectionLostError(f"cannot {action}: the connection is closed ({msg})")
    if isinstance(exc, ValueError) and ("closed" in msg.lower() or "no active connection" in msg):
        # aiosqlite's words for a connection it closed (the pool was closed, or it was lost).
        return ConnectionLostError(f"cannot {action}: the connection is closed ({msg})")
    if isinstance(exc, UnicodeError):  # text that is not valid Unicode (a lone surrogate)
        return DataError(f"cannot {action}: a text value is not valid Unicode ({msg})")
    if isinstance(exc, (sqlite3.Error, ValueError)):
        return DatabaseError(f"cannot {action}: {msg}")
    return DatabaseError(f"cannot {action}: {type(exc).__name__}: {msg}")


def _constraint_reason(cls: type[IntegrityError], msg: str) -> str:
    where = msg.split(": ", 1)[1] if ": " in msg else ""
    if cls is UniqueViolationError:
        return f"unique constraint on {where} violated"
    if cls is ForeignKeyViolationError:
        return "foreign key constraint violated (a referenced row is missing, or a row still references this one)"
    if cls is NotNullViolationError:
        return f"{where} may not be NULL"
    if cls is CheckViolationError:
        return f"check constraint {where} violated"
    return "constraint violated"


#: What translate() maps each sqlite3 exception class to (tests check none is left out).
TRANSLATED: tuple[type[BaseException], ...] = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.OperationalError,
    sqlite3.ProgrammingError,
    sqlite3.NotSupportedError,
    sqlite3.InternalError,
    sqlite3.InterfaceError,
    sqlite3.DatabaseError,
    sqlite3.Error,
    sqlite3.Warning,
)

DRIVER_ERRORS = (sqlite3.Error, sqlite3.Warning, OverflowError, ValueError)
