"""Flush planning: a pure function from the tracked state to an ordered list of batched steps.

The plan is made, and every value checked, before any SQL is sent: a value that does not fit
its column fails the flush with nothing written. Steps run INSERTs, then UPDATEs, then
DELETEs; tables in foreign-key order (parents first for inserts and updates, children first
for deletes); one step per table and kind (per set of changed columns for updates).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _types
from ._expressions import Column
from ._mapping import Mapper
from ._state import InstanceState
from ._tracking import dirty_fields
from .errors import DataError


@dataclass(slots=True)
class InsertStep:
    """INSERT rows of one table; ``returning`` is the generated key to read back, if any."""

    mapper: Mapper
    columns: tuple[Column[Any], ...]
    rows: list[tuple[Any, ...]]
    states: list[InstanceState]
    returning: Column[Any] | None


@dataclass(slots=True)
class UpdateStep:
    """UPDATE rows of one table that changed the same columns.

    Each row holds the new values of ``columns``, then the primary key, then (with a
    version column) the version the row is expected to have.
    """

    mapper: Mapper
    columns: tuple[Column[Any], ...]
    rows: list[tuple[Any, ...]]
    states: list[InstanceState]
    version: Column[Any] | None


@dataclass(slots=True)
class DeleteStep:
    """DELETE rows of one table; each key is the primary key (then the expected version)."""

    mapper: Mapper
    keys: list[tuple[Any, ...]]
    states: list[InstanceState]
    version: Column[Any] | None


Step = InsertStep | UpdateStep | DeleteStep


@dataclass(slots=True)
class FlushPlan:
    """What a flush will send, and the changed fields of every updated object."""

    steps: list[Step] = field(default_factory=list)
    changes: dict[InstanceState, tuple[str, ...]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.steps


def plan_flush(
    new: Sequence[InstanceState],
    candidates: Iterable[InstanceState],
    deleted: Sequence[InstanceState],
) -> FlushPlan:
    """Plan a flush of pending inserts, changed objects (``candidates`` may hold unchanged ones) and deletes."""
    plan = FlushPlan()
    inserts: dict[Mapper, tuple[list[InstanceState], list[InstanceState]]] = {}
    for st in new:
        generated, explicit = inserts.setdefault(st.mapper, ([], []))
        gen = st.mapper.generated_pk
        (generated if gen is not None and st.obj.__dict__[gen.name] is None else explicit).append(st)

    updates: dict[tuple[Mapper, tuple[str, ...]], list[InstanceState]] = {}
    for st in candidates:
        names = dirty_fields(st)
        if not names:
            continue
        mapper = st.mapper
        for name in names:
            column = mapper.column_names[name]
            if column.primary_key:
                old = st.changed.get(name)
                raise DataError(
                    f"cannot flush {mapper.name}: primary key field {name!r} changed from {old!r} to "
                    f"{st.obj.__dict__[name]!r}; primary keys are immutable (delete and add a new object instead)"
                )
            if column.version:
                raise DataError(
                    f"cannot flush {mapper.name}: version field {name!r} is managed by aiouow and cannot be set"
                )
        plan.changes[st] = names
        updates.setdefault((mapper, names), []).append(st)

    deletes: dict[Mapper, list[InstanceState]] = {}
    for st in deleted:
        deletes.setdefault(st.mapper, []).append(st)

    order = table_order({*inserts, *(m for m, _ in updates), *deletes})
    rank = {m: i for i, m in enumerate(order)}

    for mapper in sorted(inserts, key=rank.__getitem__):
        generated, explicit = inserts[mapper]
        if generated:
            plan.steps.append(_insert_step(mapper, generated, with_key=False))
        if explicit:
            plan.steps.append(_insert_step(mapper, explicit, with_key=True))
    for (mapper, names), states in sorted(updates.items(), key=lambda kv: rank[kv[0][0]]):
        plan.steps.append(_update_step(mapper, names, states))
    for mapper in sorted(deletes, key=rank.__getitem__, reverse=True):
        plan.steps.append(_delete_step(mapper, deletes[mapper]))
    return plan


def _insert_step(mapper: Mapper, states: list[InstanceState], *, with_key: bool) -> InsertStep:
    gen = mapper.generated_pk
    columns = mapper.columns if with_key or gen is None else tuple(c for c in mapper.columns if c is not gen)
    version = mapper.version
    rows: list[tuple[Any, ...]] = []
    for st in states:
        d = st.obj.__dict__
        row = []
        for c in columns:
            if c is version:
                row.append(1)
                continue
            value = d[c.name]
            _check(mapper, c, value)
            row.append(value)
        rows.append(tuple(row))
    return InsertStep(mapper, columns, rows, list(states), None if with_key else gen)


def _update_step(mapper: Mapper, names: tuple[str, ...], states: list[InstanceState]) -> UpdateStep:
    columns = tuple(mapper.column_names[n] for n in names)
    version = mapper.version
    rows: list[tuple[Any, ...]] = []
    for st in states:
        d = st.obj.__dict__
        row = []
        for c in columns:
            value = d[c.name]
            _check(mapper, c, value)
            row.append(value)
        row.extend(d[c.name] for c in mapper.pk)
        if version is not None:
            row.append(d[version.name])
        rows.append(tuple(row))
    return UpdateStep(mapper, columns, rows, list(states), version)


def _delete_step(mapper: Mapper, states: list[InstanceState]) -> DeleteStep:
    version = mapper.version
    keys = []
    for st in states:
        d = st.obj.__dict__
        key = [st.changed.get(c.name, d[c.name]) for c in mapper.pk]
        if version is not None:
            key.append(d[version.name])
        keys.append(tuple(key))
    return DeleteStep(mapper, keys, list(states), version)


def _check(mapper: Mapper, column: Column[Any], value: Any) -> None:
    problem = _types.check(column.ctype, value)
    if problem is not None:
        raise DataError(f"cannot flush {mapper.name}: field {column.name!r} {problem}")


def table_order(mappers: Iterable[Mapper]) -> list[Mapper]:
    """Order mappers parents first by their foreign keys; ties and cycles keep a stable order."""
    todo = sorted(set(mappers), key=lambda m: (m.table, m.name))
    by_table = {m.table: m for m in todo}
    deps: dict[Mapper, set[Mapper]] = {
        m: {by_table[t] for _, t, _ in m.foreign_keys if t in by_table and by_table[t] is not m} for m in todo
    }
    ordered: list[Mapper] = []
    placed: set[Mapper] = set()
    while todo:
        ready = [m for m in todo if deps[m] <= placed]
        if not ready:  # a cycle: take the first remaining table and carry on
            ready = [todo[0]]
        for m in ready:
            ordered.append(m)
            placed.add(m)
        todo = [m for m in todo if m not in placed]
    return ordered
