"""A dialect's SQL and values: how queries compile, how column types are stored and declared.

`Dialect` holds what the dialects share; `SQLiteDialect` and `PostgresDialect` override the hooks
(placeholders, value converters, comparisons of types stored as text, arrays for key lists).
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._aggregates import Aggregate
from .._aliases import AliasedColumn
from .._expressions import And, Column, Compare, Exists, Expression, InList, IsNull, Not, Or
from .._fields import ON_DELETE_SQL
from .._mapping import mapper_of
from .._types import MAX_IDENTIFIER, ColumnType, Kind, check
from ..errors import QueryError

if TYPE_CHECKING:
    from .._mapping import Mapper
    from .._query import Select

Converter = Callable[[Any], Any]


#: Inside an EXISTS of an entity on itself: entity -> the (quoted) alias that names its row.
Aliases = dict[type, str] | None


class Dialect(abc.ABC):
    """SQL generation and value conversion for one database."""

    name: str
    #: Insert steps that return keys carry their rows' values in one flat list
    #: (`InsertStep.flat`), as a multi-row VALUES list binds them.
    flat_inserts = False

    def may_write_in_read_only(self, sql: str) -> bool:
        """Whether raw SQL must be refused in a read-only session before it is sent (False: the
        database refuses what writes in a read-only transaction itself)."""
        return False

    def __init__(self) -> None:
        self._dumpers: dict[Column[Any], Converter | None] = {}
        self._pk_sql: dict[tuple[Mapper, bool], str] = {}

    # -- values ---------------------------------------------------------------------------
    @abc.abstractmethod
    def to_db(self, ctype: ColumnType) -> Converter | None:
        """How a checked Python value becomes a driver parameter (None: as it is)."""

    @abc.abstractmethod
    def from_db(self, ctype: ColumnType) -> Converter | None:
        """How a driver value becomes the Python value (None: as it is)."""

    def dumper(self, column: Column[Any]) -> Converter | None:
        try:
            return self._dumpers[column]
        except KeyError:
            conv = self._dumpers[column] = self.to_db(column.ctype)
            return conv

    def param(self, column: Column[Any] | Aggregate, value: Any) -> Any:
        """One Python value of ``column`` (or of an aggregate's result) as a driver parameter."""
        if value is None:
            return None
        conv = self.dumper(column) if isinstance(column, Column) else self.to_db(column.ctype)
        return value if conv is None else conv(value)

    def key_params(self, mapper: Mapper, key: Any) -> list[Any]:
        """An identity key as the driver parameters of a SELECT by primary key."""
        pk = mapper.pk
        values = (key,) if len(pk) == 1 else key
        return [self.param(c, v) for c, v in zip(pk, values, strict=True)]

    # -- SQL ------------------------------------------------------------------------------
    @staticmethod
    def quote(identifier: str) -> str:
        return f'"{identifier}"'

    @abc.abstractmethod
    def placeholder(self, index: int) -> str:
        """The parameter marker for the ``index``-th (1-based) parameter."""

    def compare_sql(self, column: Column[Any] | Aggregate, sql: str) -> str:
        """Wrap a column or parameter in a comparison (a hook for types stored as text)."""
        return sql

    def render_in(
        self, column: Column[Any], values: tuple[Any, ...], negate: bool, params: list[Any], aliases: Aliases = None
    ) -> str:
        """``column IN (...)`` of a query's condition."""
        return self.keys_in(self.column_ref(column, aliases), column, values, params, negate=negate)

    def keys_in(
        self,
        sql: str,
        column: Column[Any],
        values: tuple[Any, ...],
        params: list[Any],
        *,
        negate: bool = False,
        checked: bool = True,
    ) -> str:
        """``sql IN (...)``, ``sql`` being ``column`` (possibly qualified); dialects with arrays
        override this. ``checked=False``: the values are the column's already (keys from rows)."""
        if not values:
            return "1 = 1" if negate else "1 = 0"
        first = len(params) + 1
        params.extend(self._key_params(column, values, checked))
        marks = ", ".join(self.compare_sql(column, self.placeholder(i)) for i in range(first, len(params) + 1))
        return f"{self.compare_sql(column, sql)} {'NOT IN' if negate else 'IN'} ({marks})"

    def _key_params(self, column: Column[Any], values: tuple[Any, ...], checked: bool) -> list[Any]:
        if checked:
            values = tuple(checked_param(column, v, "in_") for v in values)
        conv = self.dumper(column)
        return list(values) if conv is None else [None if v is None else conv(v) for v in values]

    def select_by_pk_sql(self, mapper: Mapper, *, for_update: bool) -> str:
        """The SELECT of one row by primary key (cached: it runs for every ``get``)."""
        key = (mapper, for_update)
        sql = self._pk_sql.get(key)
        if sql is None:
            where = " AND ".join(
                f"{self.quote(c.column_name)} = {self.placeholder(i)}" for i, c in enumerate(mapper.pk, 1)
            )
            sql = f"SELECT {self.select_list(mapper)} FROM {self.quote(mapper.table)} WHERE {where}"
            if for_update:
                sql += self.for_update_clause()
            self._pk_sql[key] = sql
        return sql

    def select_list(self, mapper: Mapper) -> str:
        return ", ".join(self.quote(c.column_name) for c in mapper.columns)

    def compile_select(self, stmt: Select[Any]) -> tuple[str, list[Any]]:
        """Compile a `aiouow.Select` of an entity's objects to SQL and parameters."""
        if stmt.items:
            raise QueryError(f"cannot load objects from {stmt!r}: it selects values (read it with rows() or scalar())")
        params: list[Any] = []
        columns = ", ".join(self.column_ref(c) for c in stmt.mapper.columns)
        sql = f"SELECT {columns} FROM {self.quote(stmt.mapper.table)}{self._joins_sql(stmt)}"
        return sql + self._clauses(stmt, params), params

    def compile_rows(self, stmt: Select[Any]) -> tuple[str, list[Any], list[Converter | None]]:
        """Compile a selection of columns and aggregates: SQL, parameters, and each value's converter."""
        if not stmt.items:
            raise QueryError(
                f"cannot read rows of values from {stmt!r}: it selects objects (read it with scalars(), "
                "or select columns: select(User.name, ...))"
            )
        stmt.check_sources()
        stmt.check_grouping()
        for item in stmt.items:
            problem = self.aggregate_problem(item) if isinstance(item, Aggregate) else None
            if problem is None and not isinstance(item, Aggregate) and (stmt.is_distinct or item in stmt.grouping):
                problem = self.grouping_problem(item)
            if problem is not None:
                raise QueryError(f"cannot select {item!r} on {self.name}: {problem}")
        for column in stmt.grouping:
            problem = self.grouping_problem(column)
            if problem is not None:
                raise QueryError(f"cannot group by {column!r} on {self.name}: {problem}")
        params: list[Any] = []
        items = ", ".join(self.aggregate_sql(i) if isinstance(i, Aggregate) else self.column_ref(i) for i in stmt.items)
        distinct = "DISTINCT " if stmt.is_distinct else ""
        sql = f"SELECT {distinct}{items} FROM {self.quote(stmt.mapper.table)}{self._joins_sql(stmt)}"
        sql += self._clauses(stmt, params)
        converters = [
            self.aggregate_converter(i) if isinstance(i, Aggregate) else self.from_db(i.ctype) for i in stmt.items
        ]
        return sql, params, converters

    def compile_count(self, stmt: Select[Any]) -> tuple[str, list[Any]]:
        """``SELECT count(*)`` of what a statement returns (its limit and offset included)."""
        sql, params = self.compile_select(stmt) if not stmt.items else self.compile_rows(stmt)[:2]
        return f"SELECT count(*) FROM ({sql}) AS counted", params

    def compile_exists(self, stmt: Select[Any]) -> tuple[str, list[Any]]:
        """``SELECT EXISTS (...)`` of a statement."""
        sql, params = self.compile_select(stmt) if not stmt.items else self.compile_rows(stmt)[:2]
        return f"SELECT EXISTS ({sql}) AS found", params

    def _clauses(self, stmt: Select[Any], params: list[Any]) -> str:
        """WHERE, GROUP BY, HAVING, ORDER BY, LIMIT / OFFSET and FOR UPDATE of a statement."""
        sql = ""
        if stmt.conditions:
            sql += " WHERE " + " AND ".join(self.compile_condition(c, params) for c in stmt.conditions)
        if stmt.grouping:
            sql += " GROUP BY " + ", ".join(self.column_ref(c) for c in stmt.grouping)
        if stmt.group_conditions:
            sql += " HAVING " + " AND ".join(self.compile_condition(c, params) for c in stmt.group_conditions)
        if stmt.ordering:
            sql += " ORDER BY " + ", ".join(
                self.expression_sql(o.column) + (" DESC" if o.descending else "") for o in stmt.ordering
            )
        if stmt.row_limit is not None or stmt.row_offset is not None:
            sql += self.limit_offset(stmt.row_limit, stmt.row_offset, params)
        if stmt.locking:
            sql += self.for_update_clause()
        return sql

    def column_ref(self, column: Column[Any], aliases: Aliases = None) -> str:
        """A column as a query names it: qualified by its table, since a statement may join several
        (or by the alias its entity has in an EXISTS of an entity on itself: ``aliases``)."""
        if isinstance(column, AliasedColumn):  # (a field of an alias the program named: aiouow.aliased)
            return f"{self.quote(column.alias.name)}.{self.quote(column.column_name)}"
        table = aliases.get(column.entity) if aliases else None
        return f"{table or self.quote(mapper_of(column.entity).table)}.{self.quote(column.column_name)}"

    def _joins_sql(self, stmt: Select[Any]) -> str:
        """The JOIN clauses of a statement's joined relationships."""
        out = ""
        for rel, outer, alias in stmt.joins:
            kind = " LEFT OUTER JOIN " if outer else " JOIN "
            target = self.quote(mapper_of(rel.target).table)
            remote = self.column_ref(rel.remote if alias is None else getattr(alias, rel.remote.name))
            if alias is not None:
                target = f"{target} AS {self.quote(alias.name)}"
            if rel.link is not None:
                assert rel.link_local is not None
                assert rel.link_remote is not None
                link = self.quote(rel.link.table)
                out += f"{kind}{link} ON {self.column_ref(rel.link_local)} = {self.column_ref(rel.local)}"
                out += f"{kind}{target} ON {remote} = {self.column_ref(rel.link_remote)}"
            else:
                out += f"{kind}{target} ON {remote} = {self.column_ref(rel.local)}"
        return out

    def _exists_sql(self, expr: Exists, params: list[Any], aliases: Aliases) -> str:
        """``EXISTS (SELECT 1 FROM target WHERE target.key = owner.key AND condition)``, correlated
        with the outer statement's row (through the link table for a many-to-many). The condition's
        fields are the related row's. When the related table is the owner's own (a relationship of
        an entity to itself), the inner one gets an alias, so that the correlation still names the
        outer row."""
        rel = expr.relationship
        table = self.quote(mapper_of(rel.target).table)
        outer = self.column_ref(rel.local, aliases).rsplit(".", 1)[0]  # (how the owner's row is named here)
        inner = {k: v for k, v in (aliases or {}).items() if k is not rel.target}
        target = table
        if outer == table:
            alias = self.quote(f"{mapper_of(rel.target).table}_{len(aliases or ()) + 1}")
            inner[rel.target] = alias
            target = f"{table} AS {alias}"
        condition = "" if expr.condition is None else " AND " + self.compile_condition(expr.condition, params, inner)
        local = self.column_ref(rel.local, aliases)
        remote = self.column_ref(rel.remote, inner)
        if rel.link is not None:
            assert rel.link_local is not None
            assert rel.link_remote is not None
            link = self.quote(rel.link.table)
            return (
                f"EXISTS (SELECT 1 FROM {link} JOIN {target} ON {remote} = {self.column_ref(rel.link_remote)} "
                f"WHERE {self.column_ref(rel.link_local)} = {local}{condition})"
            )
        return f"EXISTS (SELECT 1 FROM {target} WHERE {remote} = {local}{condition})"

    def expression_sql(self, item: Column[Any] | Aggregate) -> str:
        """A column or an aggregate as comparisons and ordering use it."""
        if isinstance(item, Aggregate):
            return self.aggregate_sql(item)
        return self.compare_sql(item, self.column_ref(item))

    def aggregate_sql(self, agg: Aggregate) -> str:
        """``fn(column)``, over the column in its comparison form (on SQLite, aware datetimes as UTC)."""
        column = agg.column
        return f"{agg.fn}({self.compare_sql(column, self.column_ref(column))})"

    def aggregate_converter(self, agg: Aggregate) -> Converter | None:
        """How an aggregate's driver value becomes its Python value."""
        if agg.fn == "count":
            return None
        if agg.fn in ("sum", "avg"):
            return {Kind.INT: int, Kind.FLOAT: float, Kind.DECIMAL: None}[agg.ctype.kind]
        return self.from_db(agg.ctype)

    def aggregate_problem(self, agg: Aggregate) -> str | None:
        """Why this dialect cannot compute an aggregate exactly, or None."""
        return None

    def grouping_problem(self, column: Column[Any]) -> str | None:
        """Why this dialect cannot group (or DISTINCT) a column the way every dialect does, or None."""
        return None

    def limit_offset(self, limit: int | None, offset: int | None, params: list[Any]) -> str:
        out = ""
        params.append(-1 if limit is None else limit)
        out += f" LIMIT {self.placeholder(len(params))}"
        if offset is not None:
            params.append(offset)
            out += f" OFFSET {self.placeholder(len(params))}"
        return out

    def for_update_clause(self) -> str:
        return " FOR UPDATE"

    def compile_condition(self, expr: Expression, params: list[Any], aliases: Aliases = None) -> str:
        """A condition's SQL (``aliases``: inside an EXISTS of an entity on itself, what names its row)."""
        if isinstance(expr, Compare):
            column = expr.column
            if isinstance(column, Aggregate):
                lhs = self.aggregate_sql(column)
            elif expr.op == "LIKE":
                lhs = self.column_ref(column, aliases)
            else:
                lhs = self.compare_sql(column, self.column_ref(column, aliases))
            if isinstance(expr.value, Column):
                return f"{lhs} {expr.op} {self.compare_sql(expr.value, self.column_ref(expr.value, aliases))}"
            if expr.op == "LIKE":
                params.append(expr.value)
                return f"{lhs} LIKE {self.placeholder(len(params))}"
            params.append(self.param(column, checked_param(column, expr.value, expr.op)))
            return f"{lhs} {expr.op} {self.compare_sql(column, self.placeholder(len(params)))}"
        if isinstance(expr, Exists):
            return self._exists_sql(expr, params, aliases)
        if isinstance(expr, IsNull):
            return f"{self.column_ref(expr.column, aliases)} IS {'NOT ' if expr.negate else ''}NULL"
        if isinstance(expr, InList):
            return self.render_in(expr.column, expr.values, expr.negate, params, aliases)
        if isinstance(expr, And):
            return "(" + " AND ".join(self.compile_condition(p, params, aliases) for p in expr.parts) + ")"
        if isinstance(expr, Or):
            return "(" + " OR ".join(self.compile_condition(p, params, aliases) for p in expr.parts) + ")"
        if isinstance(expr, Not):
            return f"NOT ({self.compile_condition(expr.part, params, aliases)})"
        raise QueryError(f"cannot compile {expr!r}: not a condition")  # pragma: no cover

    # -- DDL ------------------------------------------------------------------------------
    @abc.abstractmethod
    def column_type_sql(self, column: Column[Any]) -> str:
        """The SQL type of a column."""

    @abc.abstractmethod
    def schema_query(self, tables: Sequence[str]) -> tuple[str, list[Any]]:
        """The query whose rows are (table, column, type, not null, in the primary key) for the live
        tables among ``tables`` (`aiouow.Pool.check_schema`)."""

    @abc.abstractmethod
    def live_type(self, declared: str) -> str:
        """A live column's type in the words of `column_type_sql`."""

    @abc.abstractmethod
    def generated_pk_sql(self, column: Column[Any]) -> str:
        """The full definition of a database-generated integer primary key column."""

    def create_table_sql(self, mapper: Mapper) -> list[str]:
        """CREATE TABLE IF NOT EXISTS (and its indexes) for one entity."""
        q = self.quote
        defs: list[str] = []
        for c in mapper.columns:
            if c is mapper.generated_pk:
                defs.append(self.generated_pk_sql(c))
                continue
            d = f"{q(c.column_name)} {self.column_type_sql(c)}"
            if not c.ctype.nullable:
                d += " NOT NULL"
            if c.primary_key and len(mapper.pk) == 1:
                d += " PRIMARY KEY"
            if c.unique and not c.primary_key:
                d += f" CONSTRAINT {q(derived_name('uq', mapper.table, c.column_name))} UNIQUE"
            defs.append(d)
        if len(mapper.pk) > 1:
            defs.append(f"PRIMARY KEY ({', '.join(q(c.column_name) for c in mapper.pk)})")
        for c, table, target in mapper.foreign_keys:
            defs.append(
                f"CONSTRAINT {q(derived_name('fk', mapper.table, c.column_name))} "
                f"FOREIGN KEY ({q(c.column_name)}) REFERENCES {q(table)} ({q(target)})"
                + (f" ON DELETE {ON_DELETE_SQL[c.on_delete]}" if c.on_delete else "")
            )
        out = [f"CREATE TABLE IF NOT EXISTS {q(mapper.table)} (\n  " + ",\n  ".join(defs) + "\n)"]
        for c in mapper.columns:
            if c.indexed and not c.unique and not c.primary_key:
                out.append(
                    f"CREATE INDEX IF NOT EXISTS {q(derived_name('ix', mapper.table, c.column_name))} "
                    f"ON {q(mapper.table)} ({q(c.column_name)})"
                )
        return out

    def drop_table_sql(self, mapper: Mapper) -> list[str]:
        return [f"DROP TABLE IF EXISTS {self.quote(mapper.table)}"]


def derived_name(prefix: str, table: str, column: str) -> str:
    """The name of a constraint or index aiouow declares (``uq_users_email``). One longer than
    PostgreSQL keeps (63) ends in a hash of the whole name instead, so that it is kept whole
    and stays distinct from the others (PostgreSQL would cut it, and two cut names could clash)."""
    name = f"{prefix}_{table}_{column}"
    if len(name) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:10]
    return f"{name[: MAX_IDENTIFIER - 11]}_{digest}"


def checked_param(column: Column[Any] | Aggregate, value: Any, op: str) -> Any:
    """A value compared with ``column``, checked against the column's type (QueryError when it does not fit)."""
    problem = check(column.ctype, value)
    if problem is not None:
        raise QueryError(f"cannot compare {column!r} {op} {value!r}: the field {problem}")
    return value
