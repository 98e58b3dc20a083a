"""Column types: how a field's annotation maps to a kind of column, and the value check run at flush."""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import re
import types
import typing
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
#: PostgreSQL's longest identifier, in bytes (longer ones are cut, silently: two names sharing
#: their first 63 bytes would name one table). aiouow's identifiers are ASCII: bytes are characters.
MAX_IDENTIFIER: Final = 63
#: PostgreSQL's ``numeric``: at most this many digits before the decimal point, and after it.
NUMERIC_MAX_INTEGER_DIGITS: Final = 131072
NUMERIC_MAX_SCALE: Final = 16383
#: JSON floats from this magnitude up come back from PostgreSQL's ``jsonb`` as ints (it stores
#: numbers as decimals: ``1e16`` is read back as ``10000000000000000``).
JSON_FLOAT_LIMIT: Final = 1e16
#: JSON values nested deeper than this are refused (Python's own JSON reader recurses per level).
JSON_MAX_DEPTH: Final = 500
#: JSON ints of more bits than this are refused: Python writes no int of more than 4,300 digits.
JSON_MAX_INT_BITS: Final = 14_000
#: Text that no database stores: NUL (PostgreSQL refuses it in text) and lone surrogates (not UTF-8).
_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]").search


def _small_decimal_digits() -> tuple[int, int]:
    """The size of a Decimal whose digits fit its object's own storage, and how many digits
    that is (76 on 64-bit CPython): any Decimal of that size has at most that many digits."""
    size = Decimal(0).__sizeof__()
    digits = 1
    while digits < 1000 and Decimal("1" * (digits + 1)).__sizeof__() == size:
        digits += 1
    return size, digits


_SMALL_DECIMAL_SIZE, _SMALL_DECIMAL_DIGITS = _small_decimal_digits()
_UTC_MIN = dt.datetime.min.replace(tzinfo=dt.UTC)
_UTC_MAX = dt.datetime.max.replace(tzinfo=dt.UTC)


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
            return f"is out of the 64-bit integer range ({short_repr(value)})"
        return None
    if kind is Kind.FLOAT:
        if cls is bool or not isinstance(value, (int, float)):
            return _wrong(ctype, value)
        return _float_problem(value)
    if kind is Kind.BOOL:
        return None if cls is bool else _wrong(ctype, value)
    if kind is Kind.DECIMAL:
        if isinstance(value, Decimal):
            return _decimal_problem(value)
        if isinstance(value, int) and cls is not bool:
            return _decimal_problem(Decimal(value))
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
        if aware and not _UTC_MIN <= value <= _UTC_MAX:
            return f"holds {value.isoformat()}, whose instant is outside the years 1-9999 in UTC"
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
        problem = _json_problem(value)
        return None if problem is None else f"holds a JSON value that cannot be stored: {problem}"
    if kind is Kind.ENUM:
        return None if isinstance(value, ctype.python_type) else _wrong(ctype, value)
    if kind is Kind.STR:
        if not isinstance(value, str):
            return _wrong(ctype, value)
        return text_problem(value)
    # BYTES, UUID: the exact class (or a subclass)
    return None if isinstance(value, ctype.python_type) else _wrong(ctype, value)


def _float_problem(value: float) -> str | None:
    if value != value:
        return "holds NaN, which aiouow refuses on every database (SQLite would store it as NULL)"
    if type(value) is not float:  # an int: only one that a float holds exactly
        try:
            exact = float(value) == value
        except OverflowError:
            return f"holds the int {short_repr(value)}, which is out of the float range"
        if not exact:
            return f"holds the int {short_repr(value)}, which a float cannot hold exactly (use int or Decimal)"
    return None


def _decimal_problem(value: Decimal) -> str | None:
    if not value.is_finite():
        return f"holds Decimal({str(value)!r}); only finite decimals can be stored"
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if len(digits) + exponent > NUMERIC_MAX_INTEGER_DIGITS:
        return f"holds a Decimal with more than {NUMERIC_MAX_INTEGER_DIGITS} digits before the decimal point"
    if -exponent > NUMERIC_MAX_SCALE:
        return f"holds a Decimal with more than {NUMERIC_MAX_SCALE} digits after the decimal point"
    return None


def text_problem(text: str) -> str | None:
    found = _UNSTORABLE_TEXT(text)
    if found is None:
        return None
    char = found.group()
    what = "a NUL character" if char == "\x00" else f"a lone surrogate ({char!r})"
    return f"holds {what} at position {found.start()}, which text columns cannot store"


def _json_problem(value: Any) -> str | None:
    """Why a JSON value would not come back as it went in, or None: only dicts with str keys,
    lists, str, int, finite floats below `JSON_FLOAT_LIMIT`, bool and None, nested at most
    `JSON_MAX_DEPTH` deep (a tuple would come back a list, an int key a str). A loop, not a
    recursion: the caller's own stack may be deep already."""
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        cls = type(item)
        if cls is str:
            problem = text_problem(item)
            if problem is not None:
                return problem
        elif item is None or cls is bool:
            continue
        elif cls is int:
            if item.bit_length() > JSON_MAX_INT_BITS:  # Python's JSON writer stops at 4300 digits
                return f"the int {short_repr(item)} is too large for JSON text"
        elif cls is float:
            if not math.isfinite(item):
                return f"{item!r} is not a JSON number"
            if abs(item) >= JSON_FLOAT_LIMIT:
                return f"the float {item!r} would come back as an int (PostgreSQL's jsonb); store it as a str"
        elif cls is list or cls is dict:
            if depth >= JSON_MAX_DEPTH:
                return f"it is nested more than {JSON_MAX_DEPTH} levels deep"
            if cls is list:
                todo.extend((element, depth + 1) for element in item)
                continue
            for key, element in item.items():
                if type(key) is not str:
                    return f"the dict key {short_repr(key)} is not a str (JSON would make it one)"
                problem = text_problem(key)
                if problem is not None:
                    return problem
                todo.append((element, depth + 1))
        else:
            return f"{cls.__name__} {short_repr(item)} is not a JSON type (dict, list, str, int, float, bool, None)"
    return None


def short_repr(value: Any) -> str:
    """A value as error messages show it: at most 60 characters (a huge int by its size)."""
    if isinstance(value, int) and value.bit_length() > 200:  # (repr of a huge int may raise, past 4300 digits)
        return f"of about {int(value.bit_length() * 0.30103) + 1} digits"
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _wrong(ctype: ColumnType, value: Any) -> str:
    return f"expects {ctype.describe()}, got {type(value).__name__} {short_repr(value)}"


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
    elif kind is Kind.FLOAT:
        expr = f"(type({var}) is float and {var} == {var})"  # (NaN is not equal to itself)
    elif kind is Kind.STR:
        # ASCII text without NUL (two scans in C, ~20 ns); other text goes through `check`.
        expr = f"(type({var}) is str and {var}.isascii() and '\\x00' not in {var})"
    elif kind in (Kind.BOOL, Kind.BYTES):
        expr = f"type({var}) is {ctype.python_type.__name__}"
    elif kind is Kind.DECIMAL:
        # Finite, of a magnitude `numeric` holds, and with few enough digits that the digits
        # after the point fit too (~55 ns; counting them through `as_tuple()` costs ~300 ns).
        env[tag] = Decimal
        expr = (
            f"(type({var}) is {tag} and {var}.is_finite() and {var}.__sizeof__() == {_SMALL_DECIMAL_SIZE} and "
            f"{-(NUMERIC_MAX_SCALE - _SMALL_DECIMAL_DIGITS)} < {var}.adjusted() < {NUMERIC_MAX_INTEGER_DIGITS})"
        )
    elif kind is Kind.DATETIME:
        env["_datetime"], env["_UTC"] = dt.datetime, dt.UTC
        tz = "is _UTC" if ctype.timezone else "is None"
        expr = f"(type({var}) is _datetime and {var}.tzinfo {tz})"
    elif kind is Kind.TIME:
        env["_time"] = dt.time
        expr = f"(type({var}) is _time and {var}.tzinfo is None)"
    elif kind in (Kind.DATE, Kind.UUID, Kind.ENUM):
        env[tag] = ctype.python_type
        expr = f"type({var}) is {tag}"
    else:
        expr = None  # JSON: only serializing tells
    if expr is not None and ctype.nullable:
        expr = f"({var} is None or {expr})"
    return expr
