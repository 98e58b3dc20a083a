"""Database URLs and pool options."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

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
            _check_postgresql(url)
            return cls("postgresql", "postgresql://" + rest)
        raise ConfigurationError(
            f"cannot open a pool: unknown database scheme {scheme!r} in {url!r} (supported: sqlite, postgresql)"
        )


#: The largest busy_timeout SQLite takes: 2**31 - 1 milliseconds (about 24.8 days).
BUSY_TIMEOUT_MAX = (2**31 - 1) / 1000
#: libpq's sslmode values (asyncpg takes the same).
SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})


def _check_postgresql(url: str) -> None:
    """Refuse a PostgreSQL URL whose host list, ports or sslmode asyncpg would refuse at connect
    time (or, with ``min_size=0``, at the first session), naming what is wrong."""
    shown = redact(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unclosed [IPv6 literal, ...
        raise ConfigurationError(f"cannot open a pool: {shown!r} is not a valid URL ({exc})") from None
    netloc = parts.netloc.rpartition("@")[2]
    hosts = [h for h in netloc.split(",") if h]
    query = parse_qs(parts.query, keep_blank_values=True)
    ports = [p for h in hosts if (p := _port_of(h))] + [p for v in query.get("port", []) for p in v.split(",")]
    for port in ports:
        if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
            raise ConfigurationError(f"cannot open a pool: port {port!r} in {shown!r} is not a number from 1 to 65535")
    for mode in query.get("sslmode", []):
        if mode not in SSL_MODES:
            raise ConfigurationError(
                f"cannot open a pool: sslmode {mode!r} in {shown!r} is not one of {', '.join(sorted(SSL_MODES))}"
            )
    if not hosts and not parts.path.strip("/") and "host" not in query:
        raise ConfigurationError(f"cannot open a pool: {shown!r} names neither a host nor a database")


def _port_of(host: str) -> str | None:
    if host.startswith("["):  # [IPv6]:port
        _, _, after = host.partition("]")
        return after[1:] if after.startswith(":") else None
    _, colon, port = host.rpartition(":")
    return port if colon else None


def redact(url: str) -> str:
    """The URL without its password (in the user part or the query string)."""
    scheme, _, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if at and ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    host = re.sub(r"(?i)(password=)[^&]*", r"\1***", host)
    return f"{scheme}://{creds}{at}{host}"


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
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ConfigurationError(
                    f"cannot open a pool: {name} must be a positive, finite number of seconds, got {value!r}"
                )
        if self.busy_timeout > BUSY_TIMEOUT_MAX:  # SQLite takes it as an int of milliseconds
            raise ConfigurationError(
                f"cannot open a pool: busy_timeout must be at most {BUSY_TIMEOUT_MAX} s, got {self.busy_timeout!r}"
            )
