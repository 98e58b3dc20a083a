"""The error tree, and translation of driver errors at the dialect boundary."""

from __future__ import annotations

import inspect
import sqlite3

import pytest

import aiouow
from aiouow import errors
from aiouow.dialects import sqlite as sqlite_dialect


class TestTree:
    def test_every_error_derives_from_the_root(self) -> None:
        """All public errors derive from AiouowError."""
        classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, Exception)]
        warns = [c for c in classes if issubclass(c, Warning)]
        assert warns == [errors.NPlusOneWarning] and issubclass(errors.NPlusOneWarning, UserWarning)
        assert all(issubclass(c, errors.AiouowError) for c in classes if c not in warns)
        assert set(errors.__all__) == {c.__name__ for c in classes}

    def test_documented_shape(self) -> None:
        """The tree is the one API.md draws."""
        e = errors
        assert issubclass(e.SessionClosedError, e.SessionError)
        assert issubclass(e.DetachedInstanceError, e.SessionError)
        assert issubclass(e.ConcurrentUseError, e.SessionError)
        assert issubclass(e.NotFoundError, LookupError)
        for sub in (e.UniqueViolationError, e.ForeignKeyViolationError, e.NotNullViolationError, e.CheckViolationError):
            assert issubclass(sub, e.IntegrityError)
        for sub in (
            e.IntegrityError,
            e.DataError,
            e.OperationalError,
            e.SerializationError,
            e.StaleDataError,
            e.CommitOutcomeUnknownError,
        ):
            assert issubclass(sub, e.DatabaseError)
        assert issubclass(e.ConnectionLostError, e.OperationalError)
        assert issubclass(e.PoolTimeoutError, e.OperationalError)

    def test_top_level_reexports(self) -> None:
        """Every error is importable from aiouow too."""
        for name in errors.__all__:
            assert getattr(aiouow, name) is getattr(errors, name)


def _sqlite_error(cls: type[sqlite3.Error], name: str, msg: str) -> sqlite3.Error:
    exc = cls(msg)
    exc.sqlite_errorname = name  # type: ignore[attr-defined]
    return exc


class TestSQLiteTranslation:
    @pytest.mark.parametrize(
        ("exc", "expected"),
        [
            (
                _sqlite_error(sqlite3.IntegrityError, "SQLITE_CONSTRAINT_UNIQUE", "UNIQUE constraint failed: t.c"),
                errors.UniqueViolationError,
            ),
            (
                _sqlite_error(sqlite3.IntegrityError, "SQLITE_CONSTRAINT_PRIMARYKEY", "UNIQUE constraint failed: t.id"),
                errors.UniqueViolationError,
            ),
            (
                _sqlite_error(sqlite3.IntegrityError, "SQLITE_CONSTRAINT_FOREIGNKEY", "FOREIGN KEY constraint failed"),
                errors.ForeignKeyViolationError,
            ),
            (
                _sqlite_error(sqlite3.IntegrityError, "SQLITE_CONSTRAINT_NOTNULL", "NOT NULL constraint failed: t.c"),
                errors.NotNullViolationError,
            ),
            (
                _sqlite_error(sqlite3.IntegrityError, "SQLITE_CONSTRAINT_CHECK", "CHECK constraint failed: c"),
                errors.CheckViolationError,
            ),
            (_sqlite_error(sqlite3.IntegrityError, "SQLITE_CONSTRAINT", "constraint failed"), errors.IntegrityError),
            (_sqlite_error(sqlite3.OperationalError, "SQLITE_BUSY", "database is locked"), errors.OperationalError),
            (
                _sqlite_error(sqlite3.OperationalError, "SQLITE_BUSY_SNAPSHOT", "database is locked"),
                errors.SerializationError,
            ),
            (_sqlite_error(sqlite3.OperationalError, "SQLITE_INTERRUPT", "interrupted"), errors.OperationalError),
            (sqlite3.DataError("bad"), errors.DataError),
            (OverflowError("Python int too large"), errors.DataError),
            (sqlite3.ProgrammingError("Cannot operate on a closed database."), errors.ConnectionLostError),
            (ValueError("Connection closed"), errors.ConnectionLostError),
        ],
    )
    def test_driver_errors_map_to_the_tree(self, exc: BaseException, expected: type[errors.AiouowError]) -> None:
        """Each sqlite3 failure becomes the specific aiouow error, reading "cannot X: reason"."""
        out = sqlite_dialect.translate(exc, "insert User into users")
        assert type(out) is expected
        assert str(out).startswith("cannot insert User into users: ")

    def test_no_sqlite_exception_class_is_left_untranslated(self) -> None:
        """Every exception class the sqlite3 module defines maps to an aiouow DatabaseError."""
        classes = {c for _, c in inspect.getmembers(sqlite3, inspect.isclass) if issubclass(c, BaseException)}
        assert classes <= set(sqlite_dialect.TRANSLATED)
        for cls in classes:
            assert isinstance(sqlite_dialect.translate(cls("x"), "do it"), errors.DatabaseError)

    def test_unique_violation_names_the_constraint(self) -> None:
        """IntegrityError.constraint holds what the database named."""
        exc = _sqlite_error(sqlite3.IntegrityError, "SQLITE_CONSTRAINT_UNIQUE", "UNIQUE constraint failed: users.email")
        out = sqlite_dialect.translate(exc, "insert User into users")
        assert isinstance(out, errors.IntegrityError)
        assert out.constraint == "users.email"
        assert "unique constraint on users.email violated" in str(out)
