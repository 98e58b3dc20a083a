"""Aggregates: ``func.count(User.id)``, ``func.sum``, ``func.min``, ``func.max``, ``func.avg``.

An aggregate is a selectable item (``select(User.name, func.count(User.id))``) and compares like a
column, for ``having()``. To type checkers it is the value it computes (``func.count(...)`` is an
``int``), as a column is its field's value, so that ``select(...)`` infers the row's tuple type.

What each aggregate accepts and gives back is the same on every dialect; what a dialect cannot do
exactly (SQLite adds and averages decimals as floats) is a `QueryError` when the query is built.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._expressions import Column, Compare, Expression, Ordering
from ._types import ColumnType, Kind
from .errors import QueryError

T = TypeVar("T")

#: The kinds each aggregate takes (the rest have no such aggregate on PostgreSQL, or none that
#: means the same on SQLite).
_ORDERED = frozenset({Kind.INT, Kind.FLOAT, Kind.STR, Kind.DECIMAL, Kind.DATETIME, Kind.DATE, Kind.TIME, Kind.ENUM})
_NUMERIC = frozenset({Kind.INT, Kind.FLOAT, Kind.DECIMAL})


class Aggregate:
    """``fn(column)``: what `func` builds."""

    __slots__ = ("column", "ctype", "fn")

    def __init__(self, fn: str, column: Column[Any], ctype: ColumnType) -> None:
        self.fn = fn
        self.column = column
        #: The type of the value it computes (count: int; avg of ints: float; min/max: the column's).
        self.ctype = ctype

    @property
    def entity(self) -> type:
        return self.column.entity

    @property
    def name(self) -> str:
        return f"{self.fn}({self.column.name})"

    def __repr__(self) -> str:
        return f"func.{self.fn}({self.column!r})"

    def __eq__(self, other: object) -> Expression:  # type: ignore[override]
        return Compare(self, "=", _value(self, other, "=="))

    def __ne__(self, other: object) -> Expression:  # type: ignore[override]
        return Compare(self, "<>", _value(self, other, "!="))

    def __lt__(self, other: Any) -> Expression:
        return Compare(self, "<", _value(self, other, "<"))

    def __le__(self, other: Any) -> Expression:
        return Compare(self, "<=", _value(self, other, "<="))

    def __gt__(self, other: Any) -> Expression:
        return Compare(self, ">", _value(self, other, ">"))

    def __ge__(self, other: Any) -> Expression:
        return Compare(self, ">=", _value(self, other, ">="))

    __hash__ = object.__hash__

    def asc(self) -> Ordering:
        return Ordering(self, descending=False)

    def desc(self) -> Ordering:
        return Ordering(self, descending=True)


def _value(agg: Aggregate, value: Any, op: str) -> Any:
    if value is None or isinstance(value, (Column, Aggregate)):
        raise QueryError(f"cannot compare {agg!r} {op} {value!r}: compare an aggregate with a plain value")
    return value


def _column(fn: str, column: Any) -> Column[Any]:
    if not isinstance(column, Column):
        raise QueryError(f"cannot build func.{fn}({column!r}): expected a column such as User.id")
    return column


def _refuse(fn: str, column: Column[Any], why: str) -> QueryError:
    return QueryError(f"cannot build func.{fn}({column!r}): {why}")


class _Func:
    """The aggregates, as ``aiouow.func.count(...)`` and so on."""

    if TYPE_CHECKING:  # to type checkers, an aggregate is the value it computes

        def count(self, column: Any) -> int: ...
        def sum(self, column: T) -> T | None: ...
        def min(self, column: T) -> T | None: ...
        def max(self, column: T) -> T | None: ...
        @overload
        def avg(self, column: Decimal) -> Decimal | None: ...
        @overload
        def avg(self, column: int | float) -> float | None: ...
        @overload
        def avg(self, column: Column[Any]) -> Any: ...  # (the mypy plugin, aiouow.mypy, gives the type)
        def avg(self, column: Any) -> Any: ...

    else:

        def count(self, column):
            """``count(column)``: the rows where ``column`` is not NULL (an int; 0 for none)."""
            column = _column("count", column)
            return Aggregate("count", column, ColumnType(Kind.INT, False, int))

        def sum(self, column):
            """``sum(column)`` of an int, float or Decimal column: that type, or None for no rows."""
            column = _column("sum", column)
            if column.ctype.kind not in _NUMERIC:
                raise _refuse("sum", column, f"{column.name!r} holds {column.ctype.describe()}, not numbers")
            return Aggregate("sum", column, ColumnType(column.ctype.kind, True, column.ctype.python_type))

        def min(self, column):
            """``min(column)``: the column's type, or None for no rows."""
            return _ordered("min", column)

        def max(self, column):
            """``max(column)``: the column's type, or None for no rows."""
            return _ordered("max", column)

        def avg(self, column):
            """``avg(column)`` of an int or float column (a float), or a Decimal one (a Decimal)."""
            column = _column("avg", column)
            kind = column.ctype.kind
            if kind not in _NUMERIC:
                raise _refuse("avg", column, f"{column.name!r} holds {column.ctype.describe()}, not numbers")
            if kind is Kind.DECIMAL:
                return Aggregate("avg", column, ColumnType(Kind.DECIMAL, True, Decimal))
            return Aggregate("avg", column, ColumnType(Kind.FLOAT, True, float))


def _ordered(fn: str, column: Any) -> Aggregate:
    column = _column(fn, column)
    ctype = column.ctype
    if ctype.kind not in _ORDERED:
        raise _refuse(fn, column, f"{column.name!r} holds {ctype.describe()}, which has no {fn} on every database")
    return Aggregate(
        fn,
        column,
        ColumnType(
            ctype.kind, True, ctype.python_type, timezone=ctype.timezone, enum_values_are_int=ctype.enum_values_are_int
        ),
    )


func = _Func()

__all__ = ["Aggregate", "func"]
