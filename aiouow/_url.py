"""Database URLs and pool options."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    """A parsed database URL: the dialect's name and where the database is."""

    dialect: str
    raw: str
    path: str = ""  # SQLite: the file path, or ":memory:"

    @classmethod
    def parse(cls, url: str | None) -> DatabaseURL:
        if url is None:
            return cls("sqlite", "sqlite://:memory:", ":memory:")
        if not isinstance(url, str):
            raise ConfigurationError(f"cannot open a pool: the URL must be a str, got {type(url).__name__}")
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise ConfigurationError(
                f"cannot open a pool: {url!r} is not a database URL "
                "(expected sqlite:///file.db, sqlite://:memory: or postgresql://user@host/db)"
            )
        scheme = scheme.lower()
        if scheme == "sqlite":
            if rest in ("", ":memory:", "/:memory:"):
                return cls("sqlite", url, ":memory:")
            if not rest.startswith("/"):
                raise ConfigurationError(
                    f"cannot open a pool: {url!r} has no path (use sqlite:///relative.db or sqlite:////absolute.db)"
                )
            path = unquote(rest[1:])
            if not path:
                raise ConfigurationError(f"cannot open a pool: {url!r} names no file")
            return cls("sqlite", url, path)
        if scheme in ("postgresql", "postgres"):
            parts = urlsplit(url)
            if not parts.hostname and not parts.path.strip("/"):
                raise ConfigurationError(f"cannot open a pool: {url!r} names neither a host nor a database")
            return cls("postgresql", "postgresql://" + rest)
        raise ConfigurationError(
            f"cannot open a pool: unknown database scheme {scheme!r} in {url!r} (supported: sqlite, postgresql)"
        )


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """Pool settings (see `aiouow.create_pool`)."""

    min_size: int = 1
    max_size: int = 10
    acquire_timeout: float = 30.0
    statement_cache_size: int = 100
    echo: bool = False
    busy_timeout: float = 5.0
    cleanup_timeout: float = 5.0

    def __post_init__(self) -> None:
        for name in ("min_size", "max_size", "statement_cache_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigurationError(f"cannot open a pool: {name} must be a non-negative int, got {value!r}")
        if self.max_size < 1:
            raise ConfigurationError(f"cannot open a pool: max_size must be at least 1, got {self.max_size}")
        if self.min_size > self.max_size:
            raise ConfigurationError(
                f"cannot open a pool: min_size ({self.min_size}) is larger than max_size ({self.max_size})"
            )
        for name in ("acquire_timeout", "busy_timeout", "cleanup_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigurationError(
                    f"cannot open a pool: {name} must be a positive number of seconds, got {value!r}"
                )
