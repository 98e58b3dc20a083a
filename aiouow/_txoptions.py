"""How a session's transactions begin: their isolation level, and whether they are read-only."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import ConfigurationError, SessionError


class Isolation(enum.Enum):
    """A transaction isolation level (``AsyncSession(pool, isolation=...)`` takes these or their values)."""

    READ_COMMITTED = "read committed"
    REPEATABLE_READ = "repeatable read"
    SERIALIZABLE = "serializable"


@dataclass(frozen=True, slots=True)
class TransactionOptions:
    """What every transaction of a session begins with (``None``: the database's default level)."""

    isolation: Isolation | None = None
    read_only: bool = False

    @classmethod
    def of(cls, isolation: Isolation | str | None, read_only: bool, dialect: str) -> TransactionOptions:
        """Checked options for a dialect: a `ConfigurationError` says what is wrong."""
        if not isinstance(read_only, bool):
            raise ConfigurationError(f"read_only must be True or False, got {read_only!r}")
        if isolation is None or isinstance(isolation, Isolation):
            level = isolation
        else:
            try:
                level = Isolation(str(isolation).lower().replace("_", " "))
            except ValueError:
                known = ", ".join(repr(i.value) for i in Isolation)
                raise ConfigurationError(f"isolation must be one of {known} (or None), got {isolation!r}") from None
        if dialect == "sqlite" and level is Isolation.REPEATABLE_READ:
            raise ConfigurationError(
                "SQLite has no 'repeatable read' level: use isolation='serializable' (a write after a read whose "
                "snapshot went stale raises SerializationError), or None (the default, which behaves like "
                "'read committed')"
            )
        return cls(level, read_only)

    def check_raw(self, sql: str, may_write: bool) -> None:
        """Raw SQL in a read-only session: refused before it is sent when it may write (SQLite)."""
        if self.read_only and may_write:
            raise SessionError(
                f"cannot execute {sql[:40]!r}: the session is read-only, and on SQLite only SELECT, EXPLAIN, VALUES "
                "and reading PRAGMAs are sure not to write"
            )


#: The options of a session that gives none.
DEFAULT = TransactionOptions()
