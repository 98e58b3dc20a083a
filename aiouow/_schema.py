"""`Pool.check_schema`: the entities compared with the live tables, every difference listed.

The live tables are read in one query (`Dialect.schema_query`: table, column, type, NOT NULL, part
of the primary key) and compared with what `create_all` would create: the tables, their columns,
each column's type (`Dialect.column_type_sql`, or the generated key's type) and nullability, and
the primary key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._mapping import Mapper, mapper_of
from .errors import SchemaError

if TYPE_CHECKING:
    from ._expressions import Column
    from .dialects._base import DriverPool
    from .dialects._dialect import Dialect

#: The type of a generated key's column, per dialect (`generated_pk_sql` writes it with the key).
_GENERATED_KEY_TYPE = {"postgresql": "bigint", "sqlite": "INTEGER"}


async def check_schema(driver: DriverPool, entities: Iterable[type]) -> None:
    """Raise `SchemaError` listing every difference between the entities and the live tables."""
    mappers = [mapper_of(e) for e in entities]
    if not mappers:
        return
    dialect = driver.dialect
    sql, params = dialect.schema_query([m.table for m in mappers])
    conn = await driver.acquire()
    try:
        rows = await conn.fetch(sql, params)
        await conn.rollback()
    finally:
        await driver.release(conn)
    live: dict[str, dict[str, tuple[str, bool, bool]]] = {}
    for table, column, declared, not_null, in_key in rows:
        live.setdefault(table, {})[column] = (dialect.live_type(declared), bool(not_null), bool(in_key))
    differences = [d for m in mappers for d in _differences(m, live.get(m.table), dialect)]
    if differences:
        listed = "\n".join(f"- {d}" for d in differences)
        raise SchemaError(
            f"the database's tables differ from the entities in {len(differences)} way(s):\n{listed}\n"
            "(create_all() creates missing tables only; change existing ones with a migration: see "
            '"Schema and migrations" in the documentation)',
            differences,
        )


def _differences(mapper: Mapper, live: dict[str, tuple[str, bool, bool]] | None, dialect: Dialect) -> list[str]:
    entity, table = mapper.name, mapper.table
    if live is None:
        return [f"table {table!r} of {entity} does not exist"]
    out: list[str] = []
    for column in mapper.columns:
        where = f"{table}.{column.column_name} ({entity}.{column.name})"
        found = live.get(column.column_name)
        if found is None:
            out.append(f"column {where} does not exist")
            continue
        live_type, not_null, _ = found
        expected = _expected_type(mapper, column, dialect)
        if _type_key(live_type, dialect) != _type_key(expected, dialect):
            out.append(f"column {where} is {live_type}, the entity needs {expected}")
        nullable = column.ctype.nullable
        sqlite_rowid = dialect.name == "sqlite" and column.primary_key  # (a rowid key reports NULL allowed)
        if not sqlite_rowid and not_null == nullable:
            out.append(
                f"column {where} {'is NOT NULL' if not_null else 'allows NULL'}, the entity "
                f"{'allows None' if nullable else 'needs NOT NULL'}"
            )
    names = {c.column_name for c in mapper.columns}
    out.extend(
        f"column {table}.{name} exists in the table, but {entity} has no field for it"
        for name in live
        if name not in names
    )
    expected_key = [c.column_name for c in mapper.pk]
    live_key = [name for name, (_, _, in_key) in live.items() if in_key]
    if sorted(expected_key) != sorted(live_key):
        out.append(
            f"the primary key of {table} is ({', '.join(live_key)}), {entity} declares ({', '.join(expected_key)})"
        )
    return out


def _expected_type(mapper: Mapper, column: Column[Any], dialect: Dialect) -> str:
    declared = dialect.column_type_sql(column)
    if column is mapper.generated_pk:
        return _GENERATED_KEY_TYPE.get(dialect.name, declared)
    return declared


def _type_key(sql_type: str, dialect: Dialect) -> str:
    return sql_type.upper() if dialect.name == "sqlite" else sql_type
