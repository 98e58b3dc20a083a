"""The statements of a flush step: batched INSERTs (multi-row VALUES, RETURNING the generated
key), UPDATEs (executemany) and DELETEs (``IN`` lists), within SQLite's parameter limit."""

from __future__ import annotations

from typing import Any

from ..._expressions import Column
from ..._unitofwork import DeleteStep, InsertStep, UpdateStep
from .batch import KEYS, MANY, ONE, Statement
from .dialect import MAX_ROWS_PER_STATEMENT, VARIABLE_LIMIT, SQLiteDialect


def insert_statements(dialect: SQLiteDialect, step: InsertStep) -> list[Statement]:
    q = dialect.quote
    mapper = step.mapper
    action = f"insert {mapper.name} into {mapper.table}"
    cols = ", ".join(q(c.column_name) for c in step.columns)
    rows = step.rows  # driver parameters already (planned for this dialect)
    if step.returning is None:
        sql = f"INSERT INTO {q(mapper.table)} ({cols}) VALUES ({', '.join('?' * len(step.columns))})"
        return [Statement(sql, rows, MANY, action, written=len(rows))]
    ret = q(step.returning.column_name)
    if not step.columns:
        sql = f"INSERT INTO {q(mapper.table)} DEFAULT VALUES RETURNING {ret}"
        return [Statement(sql, (), KEYS, action, written=1) for _ in rows]
    ncols = len(step.columns)
    per = max(1, min(MAX_ROWS_PER_STATEMENT, VARIABLE_LIMIT // ncols))
    group = "(" + ", ".join("?" * ncols) + ")"
    head = f"INSERT INTO {q(mapper.table)} ({cols}) VALUES "
    tail = f" RETURNING {ret}"
    n = len(step.objs)
    full = head + ", ".join([group] * per) + tail if n >= per else ""
    assert step.flat  # (`flat_inserts`): every row's values in turn
    out = []
    for start in range(0, n, per):
        count = min(per, n - start)
        sql = full if count == per else head + ", ".join([group] * count) + tail
        chunk = rows[start * ncols : (start + count) * ncols]
        out.append(Statement(sql, chunk, KEYS, action, written=count))
    return out


def update_statement(dialect: SQLiteDialect, step: UpdateStep) -> Statement:
    q = dialect.quote
    mapper = step.mapper
    sets = [f"{q(c.column_name)} = ?" for c in step.columns]
    where = [f"{q(c.column_name)} = ?" for c in mapper.pk]
    param_cols: list[Column[Any]] = [*step.columns, *mapper.pk]
    if step.version is not None:
        v = q(step.version.column_name)
        sets.append(f"{v} = {v} + 1")
        where.append(f"{v} = ?")
        param_cols.append(step.version)
    sql = f"UPDATE {q(mapper.table)} SET {', '.join(sets)} WHERE {' AND '.join(where)}"
    return Statement(sql, step.rows, MANY, f"update {mapper.name} in {mapper.table}")


def delete_statements(dialect: SQLiteDialect, step: DeleteStep) -> list[Statement]:
    q = dialect.quote
    mapper = step.mapper
    action = f"delete {mapper.name} from {mapper.table}"
    if not step.single:
        param_cols: list[Column[Any]] = list(mapper.pk)
        if step.version is not None:
            param_cols.append(step.version)
        where = " AND ".join(f"{q(c.column_name)} = ?" for c in param_cols)
        return [Statement(f"DELETE FROM {q(mapper.table)} WHERE {where}", step.keys, MANY, action)]
    # A single-column key: the keys (driver values already) in chunks of ``IN (...)``.
    ids = step.keys
    pk = q(mapper.pk[0].column_name)
    out = []
    for start in range(0, len(ids), VARIABLE_LIMIT):
        chunk = ids[start : start + VARIABLE_LIMIT]
        sql = f"DELETE FROM {q(mapper.table)} WHERE {pk} IN ({', '.join('?' * len(chunk))})"
        out.append(Statement(sql, chunk, ONE, action))
    return out
