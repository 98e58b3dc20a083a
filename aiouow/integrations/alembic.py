"""Migrations with Alembic: the entities' tables as SQLAlchemy ``MetaData``, for autogenerate.

```python
# migrations/env.py
from aiouow.integrations.alembic import metadata
from myapp.models import Hero, Team

target_metadata = metadata(Team, Hero)
```

``metadata(*entities)`` describes each table exactly as `aiouow.Pool.create_all` creates it on
either dialect (column types, NOT NULL, primary key, generated key, unique constraints, indexes
and foreign keys with their aiouow names, ``ON DELETE``), so that ``alembic revision
--autogenerate`` proposes only what changed in the entities. Needs SQLAlchemy and Alembic
(``pip install aiouow[alembic]``); aiouow itself never imports them.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .._expressions import Column
from .._fields import ON_DELETE_SQL
from .._mapping import Mapper, mapper_of
from .._types import Kind
from .._unitofwork import table_order
from ..dialects._dialect import derived_name

__all__ = ["context_options", "metadata"]


def metadata(*entities: type, into: sa.MetaData | None = None) -> sa.MetaData:
    """The SQLAlchemy ``MetaData`` of the entities' tables (added to ``into`` when given): what
    Alembic's autogenerate compares with the database (``target_metadata``)."""
    md = into if into is not None else sa.MetaData()
    for mapper in table_order(mapper_of(e) for e in entities):
        _table(md, mapper)
    return md


def context_options(connection: Any) -> dict[str, Any]:
    """Options for Alembic's ``context.configure(connection=connection, target_metadata=...,
    **context_options(connection))``: types compared; on SQLite, batch mode (SQLite's ALTER TABLE
    cannot change a column: Alembic rebuilds the table) and no comparison of foreign keys and
    unique constraints, whose names SQLAlchemy cannot read back from aiouow's SQLite tables (aiouow
    quotes names with brackets, so that SQLite never takes an unknown name for a string)."""
    options: dict[str, Any] = {"compare_type": True}
    if connection.dialect.name == "sqlite":
        options["render_as_batch"] = True
        options["include_object"] = _not_sqlite_constraints
    return options


def _not_sqlite_constraints(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return type_ not in ("foreign_key_constraint", "unique_constraint")


def _table(md: sa.MetaData, mapper: Mapper) -> sa.Table:
    columns: list[Any] = []
    for c in mapper.columns:
        args: list[Any] = []
        if c is mapper.generated_pk:
            args.append(sa.Identity(always=False))
        columns.append(
            sa.Column(
                c.column_name,
                _type(c),
                *args,
                primary_key=c.primary_key,
                nullable=c.ctype.nullable and not c.primary_key,
                autoincrement=c is mapper.generated_pk,
            )
        )
    constraints: list[Any] = []
    for c in mapper.columns:
        if c.unique and not c.primary_key:
            constraints.append(sa.UniqueConstraint(c.column_name, name=derived_name("uq", mapper.table, c.column_name)))
    for c, table, target in mapper.foreign_keys:
        constraints.append(
            sa.ForeignKeyConstraint(
                [c.column_name],
                [f"{table}.{target}"],
                name=derived_name("fk", mapper.table, c.column_name),
                ondelete=ON_DELETE_SQL[c.on_delete] if c.on_delete else None,
            )
        )
    for c in mapper.columns:
        if c.indexed and not c.unique and not c.primary_key:
            constraints.append(sa.Index(derived_name("ix", mapper.table, c.column_name), c.column_name))
    return sa.Table(mapper.table, md, *columns, *constraints, sqlite_autoincrement=mapper.generated_pk is not None)


def _type(c: Column[Any]) -> Any:
    """The column's type as `create_all` writes it: PostgreSQL's, with SQLite's as a variant."""
    ctype = c.ctype
    kind = ctype.kind
    text_on_sqlite = sqlite.TEXT()
    if kind is Kind.ENUM:
        pg: Any = sa.BigInteger() if ctype.enum_values_are_int else sa.Text()
        lite: Any = sqlite.INTEGER() if ctype.enum_values_are_int else text_on_sqlite
    elif kind is Kind.INT:
        pg, lite = sa.BigInteger(), sqlite.INTEGER()
    elif kind is Kind.FLOAT:
        pg, lite = postgresql.DOUBLE_PRECISION(), sqlite.REAL()
    elif kind is Kind.BOOL:
        pg, lite = sa.Boolean(), sqlite.INTEGER()
    elif kind is Kind.STR:
        pg, lite = sa.Text(), text_on_sqlite
    elif kind is Kind.BYTES:
        pg, lite = postgresql.BYTEA(), sqlite.BLOB()
    elif kind is Kind.DECIMAL:
        pg, lite = sa.Numeric(), text_on_sqlite
    elif kind is Kind.DATETIME:
        pg, lite = postgresql.TIMESTAMP(timezone=ctype.timezone), text_on_sqlite
    elif kind is Kind.DATE:
        pg, lite = sa.Date(), text_on_sqlite
    elif kind is Kind.TIME:
        pg, lite = postgresql.TIME(), text_on_sqlite
    elif kind is Kind.UUID:
        pg, lite = postgresql.UUID(as_uuid=True), text_on_sqlite
    else:  # JSON
        pg, lite = postgresql.JSONB(), text_on_sqlite
    return pg.with_variant(lite, "sqlite")
