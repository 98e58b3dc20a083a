"""SQLite SQL and values: how each column type is stored, compared and declared."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from ..._aggregates import Aggregate
from ..._expressions import Column
from ..._types import ColumnType, Kind, dump_json
from .._base import (
    Converter,
    Dialect,
)
from .batch import reads_only


def _variable_limit() -> int:
    probe = sqlite3.connect(":memory:")
    try:
        return int(probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    finally:
        probe.close()


VARIABLE_LIMIT = _variable_limit()
MAX_ROWS_PER_STATEMENT = 500  # measured: larger VALUES lists cost more CPU per row, not less


def _decimal_text(v: Any) -> str:
    # An int goes through Decimal: str() of an int stops at 4300 digits, a Decimal's does not.
    return str(v) if type(v) is Decimal else str(Decimal(v))


def _load_decimal(v: Any) -> Decimal:
    return Decimal(v) if isinstance(v, str) else Decimal(str(v))


_TO_DB: dict[Kind, Converter | None] = {
    Kind.INT: None,
    Kind.FLOAT: float,
    Kind.BOOL: int,
    Kind.STR: None,
    Kind.BYTES: None,
    Kind.DECIMAL: _decimal_text,
    # Fixed width (microseconds always written), so that text order is time order.
    Kind.DATETIME: lambda v: v.isoformat(sep=" ", timespec="microseconds"),
    Kind.DATE: lambda v: v.isoformat(),
    Kind.TIME: lambda v: v.isoformat(timespec="microseconds"),
    Kind.UUID: str,
    Kind.JSON: dump_json,
}

_FROM_DB: dict[Kind, Converter | None] = {
    Kind.INT: None,
    Kind.FLOAT: float,
    Kind.BOOL: bool,
    Kind.STR: None,
    Kind.BYTES: None,
    Kind.DECIMAL: _load_decimal,
    Kind.DATETIME: dt.datetime.fromisoformat,
    Kind.DATE: dt.date.fromisoformat,
    Kind.TIME: dt.time.fromisoformat,
    Kind.UUID: uuid.UUID,
    Kind.JSON: json.loads,
}

_SQL_TYPES: dict[Kind, str] = {
    Kind.INT: "INTEGER",
    Kind.FLOAT: "REAL",
    Kind.BOOL: "INTEGER",
    Kind.STR: "TEXT",
    Kind.BYTES: "BLOB",
    # Decimal and time values are stored as text so that they stay exact.
    Kind.DECIMAL: "TEXT",
    Kind.DATETIME: "TEXT",
    Kind.DATE: "TEXT",
    Kind.TIME: "TEXT",
    Kind.UUID: "TEXT",
    Kind.JSON: "TEXT",
}


class SQLiteDialect(Dialect):
    """SQL and values for SQLite."""

    name = "sqlite"
    flat_inserts = True  # keys come back from multi-row INSERT ... VALUES ... RETURNING

    def may_write_in_read_only(self, sql: str) -> bool:
        return not reads_only(sql)  # (SQLite has no read-only transactions)

    def to_db(self, ctype: ColumnType) -> Converter | None:
        if ctype.kind is Kind.ENUM:
            return enum_value
        return _TO_DB[ctype.kind]

    def from_db(self, ctype: ColumnType) -> Converter | None:
        if ctype.kind is Kind.ENUM:
            return ctype.python_type  # type: ignore[no-any-return]
        return _FROM_DB[ctype.kind]

    @staticmethod
    def quote(identifier: str) -> str:
        # Square brackets, not double quotes: SQLite reads a double-quoted name that matches no
        # column as a string literal (its "double-quoted string" misfeature), so a field whose
        # column is missing from the table would read back its own name, and compare equal to
        # it, with no error. A bracketed name can only be an identifier: "no such column".
        # (Identifiers are checked plain names, so nothing inside needs escaping.)
        return f"[{identifier}]"

    def placeholder(self, index: int) -> str:
        return f"?{index}"  # numbered, so that one parameter can appear twice in an expression

    def compare_sql(self, column: Column[Any] | Aggregate, sql: str) -> str:
        kind = column.ctype.kind
        if kind is Kind.DECIMAL:
            # Decimals are stored as exact text; compare and order them as numbers.
            return f"CAST({sql} AS NUMERIC)"
        if kind is Kind.DATETIME and column.ctype.timezone:
            # Aware datetimes keep their own offset in the text; compare them as UTC instants,
            # exact to the microsecond (strftime normalizes the seconds, the fraction is kept).
            return f"(strftime('%Y-%m-%d %H:%M:%S', {sql}) || substr({sql}, 20, 7))"
        return sql

    def aggregate_problem(self, agg: Aggregate) -> str | None:
        if agg.fn != "count" and agg.column.ctype.kind is Kind.DECIMAL:
            return (
                f"SQLite computes {agg.fn}() of decimals (stored as text) as floats, which is not exact; "
                "compute it in Python from the values, or use PostgreSQL"
            )
        return None

    def grouping_problem(self, column: Column[Any]) -> str | None:
        kind = column.ctype.kind
        if kind is Kind.DECIMAL:
            return "decimals are stored as text, so 1.0 and 1.00 would be two values (PostgreSQL: one)"
        if kind is Kind.DATETIME and column.ctype.timezone:
            return "aware datetimes keep their offset in the text, so one instant would be several values"
        return None

    def aggregate_converter(self, agg: Aggregate) -> Converter | None:
        if agg.fn in ("min", "max") and agg.ctype.kind is Kind.DATETIME and agg.ctype.timezone:
            return _utc_text  # the comparison form: the instant in UTC, as on PostgreSQL
        return super().aggregate_converter(agg)

    def for_update_clause(self) -> str:
        return ""  # the session takes the pool's write lock instead

    def column_type_sql(self, column: Column[Any]) -> str:
        if column.ctype.kind is Kind.ENUM:
            return "INTEGER" if column.ctype.enum_values_are_int else "TEXT"
        return _SQL_TYPES[column.ctype.kind]

    def schema_query(self, tables: Sequence[str]) -> tuple[str, list[Any]]:
        """Rows of (table, column, type, not null, in the primary key) for the live tables among
        ``tables`` (see `aiouow._schema`)."""
        marks = ", ".join("?" * len(tables))
        sql = (
            'SELECT m.name, p.name, p.type, p."notnull", p.pk > 0 FROM sqlite_master AS m '
            f"JOIN pragma_table_info(m.name) AS p WHERE m.type = 'table' AND m.name IN ({marks}) "
            "ORDER BY m.name, p.cid"
        )
        return sql, list(tables)

    def live_type(self, declared: str) -> str:
        """A live column's declared type in the words of `column_type_sql` (SQLite keeps the text given)."""
        return declared.upper()

    def generated_pk_sql(self, column: Column[Any]) -> str:
        return f"{self.quote(column.column_name)} INTEGER PRIMARY KEY AUTOINCREMENT"


def _utc_text(v: str) -> dt.datetime:
    return dt.datetime.fromisoformat(v).replace(tzinfo=dt.UTC)


def enum_value(v: Any) -> Any:
    return v.value
