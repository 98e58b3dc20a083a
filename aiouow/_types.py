"""Column types: how a field's annotation maps to a kind of column, and the value check run at flush."""

from __future__ import annotations

import datetime as dt
import enum
import json
import types
import typing
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1


class Kind(enum.Enum):
    """The kind of a column, independent of dialect."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STR = "str"
    BYTES = "bytes"
    DECIMAL = "decimal"
    DATETIME = "datetime"
    DATE = "date"
    TIME = "time"
    UUID = "uuid"
    ENUM = "enum"
    JSON = "json"


_SIMPLE: Final[dict[Any, Kind]] = {
    int: Kind.INT,
    float: Kind.FLOAT,
    bool: Kind.BOOL,
    str: Kind.STR,
    bytes: Kind.BYTES,
    Decimal: Kind.DECIMAL,
    dt.datetime: Kind.DATETIME,
    dt.date: Kind.DATE,
    dt.time: Kind.TIME,
    uuid.UUID: Kind.UUID,
}


@dataclass(frozen=True, slots=True)
class ColumnType:
    """What a field's annotation says about its column."""

    kind: Kind
    nullable: bool
    python_type: Any  # the class for scalar kinds, the enum class for ENUM, None for JSON
    timezone: bool = False  # DATETIME only: aware (True) or naive (False) values
    enum_values_are_int: bool = False  # ENUM only

    def describe(self) -> str:
        """A short human name of the expected values, for error messages."""
        if self.kind is Kind.JSON:
            name = "a JSON value"
        elif self.kind is Kind.DATETIME:
            name = "an aware datetime" if self.timezone else "a naive datetime"
        else:
            name = self.python_type.__name__
        return f"{name} or None" if self.nullable else name


def resolve(annotation: Any, *, json_field: bool, timezone: bool | None) -> ColumnType | str:
    """Map an annotation to a column type; on failure return the reason as a string."""
    args = typing.get_args(annotation)
    is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    nullable = is_union and type(None) in args
    if json_field:
        # Any JSON value; `Any` and unions with None admit None (stored as SQL NULL).
        return ColumnType(Kind.JSON, nullable or annotation is Any, None)
    if is_union:
        rest = [a for a in args if a is not type(None)]
        if not nullable or len(rest) != 1:
            return f"union {annotation!r} is not supported (only `T | None`)"
        annotation = rest[0]
    origin = typing.get_origin(annotation)
    if annotation is dt.datetime:
        return ColumnType(Kind.DATETIME, nullable, dt.datetime, timezone=True if timezone is None else timezone)
    if timezone is not None:
        return "timezone= applies to datetime fields only"
    kind = _SIMPLE.get(annotation)
    if kind is not None:
        return ColumnType(kind, nullable, annotation)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = [m.value for m in annotation]
        if values and all(isinstance(v, str) for v in values):
            return ColumnType(Kind.ENUM, nullable, annotation)
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return ColumnType(Kind.ENUM, nullable, annotation, enum_values_are_int=True)
        return f"enum {annotation.__name__} must have all-str or all-int values to be stored by value"
    if origin in (dict, list) or annotation in (dict, list):
        return f"{annotation!r} needs field(json=True) to be stored as JSON"
    return f"annotation {annotation!r} is not a supported column type"


def check(ctype: ColumnType, value: Any) -> str | None:
    """Check a value against its column type; return why it does not fit, or None."""
    if value is None:
        return None if ctype.nullable else "is not nullable"
    kind = ctype.kind
    cls = type(value)
    if kind is Kind.INT:
        if cls is bool or not isinstance(value, int):
            return _wrong(ctype, value)
        if not INT64_MIN <= value <= INT64_MAX:
            return f"is out of the 64-bit integer range ({value})"
        return None
    if kind is Kind.FLOAT:
        if cls is bool or not isinstance(value, (int, float)):
            return _wrong(ctype, value)
        return None
    if kind is Kind.BOOL:
        return None if cls is bool else _wrong(ctype, value)
    if kind is Kind.DECIMAL:
        if isinstance(value, Decimal) or (isinstance(value, int) and cls is not bool):
            return None
        return _wrong(ctype, value)
    if kind is Kind.DATETIME:
        if not isinstance(value, dt.datetime):
            return _wrong(ctype, value)
        offset = value.utcoffset()
        aware = offset is not None
        if offset is not None and offset % dt.timedelta(minutes=1):
            return f"has a UTC offset with seconds ({offset}); only whole-minute offsets can be stored"
        if aware and not ctype.timezone:
            return "holds an aware datetime but the field stores naive ones (timezone=False)"
        if not aware and ctype.timezone:
            return (
                "holds a naive datetime but the field stores aware ones; "
                "pass an aware datetime or declare field(timezone=False)"
            )
        return None
    if kind is Kind.DATE:
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            return _wrong(ctype, value)
        return None
    if kind is Kind.TIME:
        if not isinstance(value, dt.time):
            return _wrong(ctype, value)
        if value.tzinfo is not None:
            return "holds an aware time; only naive times are supported"
        return None
    if kind is Kind.JSON:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            return f"is not JSON-serializable ({exc})"
        return None
    if kind is Kind.ENUM:
        return None if isinstance(value, ctype.python_type) else _wrong(ctype, value)
    # STR, BYTES, UUID: the exact class (or a subclass)
    return None if isinstance(value, ctype.python_type) else _wrong(ctype, value)


def _wrong(ctype: ColumnType, value: Any) -> str:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"expects {ctype.describe()}, got {type(value).__name__} {shown}"


def dump_json(value: Any) -> str:
    """The canonical JSON text of a value (also the snapshot used to detect in-place changes)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


#: Types whose equality is exactly "the database stores the same value" (`same_value` needs
#: nothing more than ``==`` for them).
PLAIN_TYPES = frozenset({str, int, bytes})


def same_value(a: Any, b: Any) -> bool:
    """Whether setting a field from ``a`` to ``b`` leaves what the database stores unchanged."""
    if a is b:
        return True
    kind = type(a)
    if kind is not type(b):
        return False
    if kind in PLAIN_TYPES:
        return bool(a == b)
    if isinstance(a, (dt.datetime, dt.time)) and a.utcoffset() != b.utcoffset():
        return False
    if isinstance(a, Decimal):
        return bool(a.as_tuple() == b.as_tuple())
    try:
        return bool(a == b)
    except Exception:
        return False


def fast_check(ctype: ColumnType, var: str, env: dict[str, Any], tag: str) -> str | None:
    """A Python expression over ``var`` that is true when the value surely fits (generated code).

    It covers the common exact types only; when it is false, or None is returned, the caller
    runs :func:`check`, which also accepts the less common cases (an int for a float, ...).
    Names the expression needs are put in ``env`` under ``tag``.
    """
    kind = ctype.kind
    expr: str | None
    if kind is Kind.INT:
        expr = f"(type({var}) is int and {INT64_MIN} <= {var} <= {INT64_MAX})"
    elif kind in (Kind.FLOAT, Kind.BOOL, Kind.STR, Kind.BYTES):
        expr = f"type({var}) is {ctype.python_type.__name__}"
    elif kind is Kind.DATETIME:
        env["_datetime"], env["_UTC"] = dt.datetime, dt.UTC
        tz = "is _UTC" if ctype.timezone else "is None"
        expr = f"(type({var}) is _datetime and {var}.tzinfo {tz})"
    elif kind is Kind.TIME:
        env["_time"] = dt.time
        expr = f"(type({var}) is _time and {var}.tzinfo is None)"
    elif kind in (Kind.DECIMAL, Kind.DATE, Kind.UUID, Kind.ENUM):
        env[tag] = ctype.python_type
        expr = f"type({var}) is {tag}"
    else:
        expr = None  # JSON: only serializing tells
    if expr is not None and ctype.nullable:
        expr = f"({var} is None or {expr})"
    return expr
