"""Flush planning: a function from change sets (`EntityChanges`, values) to an ordered list of batched steps.

The plan is made, and every value checked, before any SQL is sent: a value that does not fit
its column fails the flush with nothing written. Steps run INSERTs, then UPDATEs, then
DELETEs; tables in foreign-key order (parents first for inserts and updates, children first
for deletes); one step per table and kind (per set of changed columns for updates).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

from . import _types
from ._codegen import compile_function
from ._expressions import Column
from ._mapping import Mapper
from .errors import DataError, with_details

if TYPE_CHECKING:
    from .dialects._base import Dialect


@dataclass(slots=True)
class InsertStep:
    """INSERT rows of one table; ``returning`` is the generated key to read back, if any.

    Planned for a dialect, rows hold driver parameters (each value converted by the dialect's
    dumper): the driver only lays them out. ``rows`` holds a tuple per object, or with ``flat``
    (a dialect with `Dialect.flat_inserts`, for a step returning keys) the values of every
    row one after another, as a multi-row VALUES list binds them.
    """

    mapper: Mapper
    columns: tuple[Column[Any], ...]
    rows: list[Any]
    objs: list[Any]
    returning: Column[Any] | None
    flat: bool = False


@dataclass(slots=True)
class UpdateStep:
    """UPDATE rows of one table that changed the same columns.

    Each row holds the new values of ``columns``, then the primary key, then (with a
    version column) the version the row is expected to have; as driver parameters when
    planned for a dialect.
    """

    mapper: Mapper
    columns: tuple[Column[Any], ...]
    rows: list[tuple[Any, ...]]
    objs: list[Any]
    keys: list[Any]  # each object's identity key
    originals: list[dict[str, Any]]  # for each object, what its changed fields held before (and maybe more)
    version: Column[Any] | None
    #: A row switch: ``objs`` are new objects that take over, with every field, the rows of the
    #: objects this delete step holds (deleted in the same flush, with the same keys). The
    #: statement is an UPDATE; the flush settles ``objs`` as inserted and these as deleted.
    replaced: DeleteStep | None = None


@dataclass(slots=True)
class DeleteStep:
    """DELETE rows of one table, by identity key.

    ``keys`` holds what the statement matches, per row: the key itself for a single-column key
    without a version column (``single``), else a tuple of the key's values then the version
    the row is expected to have. As driver parameters when planned for a dialect.
    """

    mapper: Mapper
    keys: list[Any]
    ids: list[Any]  # each object's identity key
    objs: list[Any]
    version: Column[Any] | None

    @property
    def single(self) -> bool:
        return self.version is None and len(self.mapper.pk) == 1


Step = InsertStep | UpdateStep | DeleteStep


@dataclass(slots=True)
class FlushPlan:
    """What a flush will send."""

    steps: list[Step] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.steps


def expected_rows(steps: Iterable[Step]) -> list[int | None]:
    """For each step, the rows it must match, or None: every update must find its rows, and a
    versioned delete its rows at the expected version (else `StaleDataError`)."""
    return [expected_count(step) for step in steps]


def expected_count(step: Step) -> int | None:
    """The rows one step must match, or None (see `expected_rows`)."""
    if isinstance(step, UpdateStep):
        return len(step.rows)
    if isinstance(step, DeleteStep) and step.version is not None:
        return len(step.ids)
    return None


@dataclass(slots=True)
class ChangedRows:
    """Changed objects of one entity that changed the same fields: parallel lists."""

    objs: list[Any] = field(default_factory=list)
    keys: list[Any] = field(default_factory=list)  # each object's identity key
    originals: list[dict[str, Any]] = field(default_factory=list)  # what its assigned fields held before


@dataclass(slots=True)
class EntityChanges:
    """One entity's part of a flush, as its tracker found it: the planner's input."""

    mapper: Mapper
    new: list[Any]  # objects to insert, in the order they were added
    updates: dict[tuple[str, ...], ChangedRows]  # changed objects, by the fields that changed
    deletes: dict[Any, Any]  # identity key -> object to delete


def plan_flush(changes: Sequence[EntityChanges], dialect: Dialect) -> FlushPlan:
    """Plan a flush: every entity's changes in, the steps to send out, each row's values checked
    (`DataError` names the entity and field) and converted to the ``dialect``'s driver parameters.

    UPDATEs that only set unique columns to NULL first, then INSERTs, then UPDATEs, then row
    switches, then DELETEs; tables parents first by their
    foreign keys (children first for deletes); one step per table and kind, and per set of
    changed fields for updates.
    """
    by_mapper = {c.mapper: c for c in changes}
    order = table_order(by_mapper) if len(by_mapper) > 1 else list(by_mapper)  # (one table: nothing to order)
    releases: list[Step] = []
    inserts: list[Step] = []
    updates: list[Step] = []
    switches: list[Step] = []
    deletes: list[Step] = []
    for mapper in order:
        entity = by_mapper[mapper]
        delete_keys, delete_objs = list(entity.deletes), list(entity.deletes.values())
        if entity.new:
            single = _all_generated_step(mapper, entity.new, dialect)
            if single is not None:
                inserts.append(single)
            else:
                generated, explicit = _split_new(mapper, entity.new)
                if explicit and delete_keys:
                    switches.extend(_row_switches(mapper, explicit, delete_keys, delete_objs, dialect))
                if generated:
                    inserts.append(_insert_step(mapper, generated, dialect, with_key=False))
                if explicit:
                    inserts.append(_insert_step(mapper, explicit, dialect, with_key=True))
        for names, group in entity.updates.items():
            if not mapper.immutable.isdisjoint(names):
                _refuse_immutable(mapper, names, group)
            released, group = _releases(mapper, names, group)
            if released is not None:  # (before the inserts, which may take the values they free)
                releases.append(_update_step(mapper, names, released, dialect))
            if group.objs:
                updates.append(_update_step(mapper, names, group, dialect))
        if delete_keys:
            deletes.append(_delete_step(mapper, (delete_keys, delete_objs), dialect))
    deletes.reverse()
    return FlushPlan([*releases, *inserts, *updates, *switches, *deletes])


def _releases(mapper: Mapper, names: tuple[str, ...], group: ChangedRows) -> tuple[ChangedRows | None, ChangedRows]:
    """Updates that only set unique columns to NULL (a one-to-one let go) run before the
    inserts, which may take the values they free: (those rows, the others)."""
    if not all(mapper.column_names[n].unique for n in names):
        return None, group
    released, kept = ChangedRows(), ChangedRows()
    for obj, key, original in zip(group.objs, group.keys, group.originals, strict=True):
        d = obj.__dict__
        part = released if all(d[n] is None for n in names) else kept
        part.objs.append(obj)
        part.keys.append(key)
        part.originals.append(original)
    return (released if released.objs else None), kept


def _all_generated_step(mapper: Mapper, new: list[Any], dialect: Dialect) -> InsertStep | None:
    """The usual insert: every object's key to be generated. Then one step takes them all, its
    rows built in the pass that checks this; else None (the caller splits the objects)."""
    if mapper.generated_pk is None:
        return None
    columns, returning, flat = _insert_layout(mapper, dialect, with_key=False)
    rows = _builder(mapper, "insert", columns, dialect, flat=flat, only_generated=True)(new)
    if rows is None:
        return None
    return InsertStep(mapper, columns, rows, new, returning, flat)


def _split_new(mapper: Mapper, new: list[Any]) -> tuple[list[Any], list[Any]]:
    """The new objects whose key the database generates, and those that carry their key."""
    gen = mapper.generated_pk
    if gen is None:
        return [], new
    name = gen.name
    generated = [obj for obj in new if obj.__dict__[name] is None]
    explicit = [obj for obj in new if obj.__dict__[name] is not None]
    return generated, explicit


def _row_switches(
    mapper: Mapper, explicit: list[Any], delete_keys: list[Any], delete_objs: list[Any], dialect: Dialect
) -> list[UpdateStep]:
    """New objects whose key is that of an object deleted in the same flush take over its row.

    An INSERT of the key would run before the DELETE (and a DELETE first could break the
    foreign keys of rows that still reference the key), so the new object's fields go out as one
    UPDATE of the row instead, as SQLAlchemy does; the pairs are taken out of ``explicit`` and
    the deletes. With a version column the UPDATE expects the deleted object's version.
    """
    position = {key: i for i, key in enumerate(delete_keys)}
    switched = [(obj, mapper.key_of_values(obj.__dict__)) for obj in explicit]
    switched = [(obj, key) for obj, key in switched if key in position]
    if not switched:
        return []
    taken = {position[key] for _, key in switched}
    switching = {id(obj) for obj, _ in switched}
    explicit[:] = [obj for obj in explicit if id(obj) not in switching]
    replaced_objs = [delete_objs[position[key]] for _, key in switched]
    keys = [key for _, key in switched]
    delete_keys[:], delete_objs[:] = (
        [k for i, k in enumerate(delete_keys) if i not in taken],
        [o for i, o in enumerate(delete_objs) if i not in taken],
    )
    names = tuple(c.name for c in mapper.columns if not c.primary_key and not c.version)
    group = ChangedRows([obj for obj, _ in switched], keys, [{} for _ in switched])
    step = _update_step(mapper, names or tuple(c.name for c in mapper.pk), group, dialect)
    version = mapper.version
    if version is not None:  # the WHERE expects the version of the row being taken over, as a driver parameter
        expected = [dialect.param(version, old.__dict__[version.name]) for old in replaced_objs]
        step.rows = [(*row[:-1], v) for row, v in zip(step.rows, expected, strict=True)]
    step.replaced = _delete_step(mapper, (keys, replaced_objs), dialect)
    return [step]


def _refuse_immutable(mapper: Mapper, names: tuple[str, ...], group: ChangedRows) -> None:
    obj, original = group.objs[0], group.originals[0]
    for name in names:
        column = mapper.column_names[name]
        if column.primary_key:
            raise with_details(
                DataError(
                    f"cannot flush {mapper.name}: primary key field {name!r} changed from {original.get(name)!r} "
                    f"to {obj.__dict__[name]!r}; primary keys are immutable (delete and add a new object instead)"
                ),
                entity=mapper.name,
                field=name,
                reason="a primary key cannot change",
            )
        if column.version:
            raise with_details(
                DataError(f"cannot flush {mapper.name}: version field {name!r} is managed by aiouow and cannot be set"),
                entity=mapper.name,
                field=name,
                reason="a version field is managed by aiouow",
            )


def _insert_layout(
    mapper: Mapper, dialect: Dialect, *, with_key: bool
) -> tuple[tuple[Column[Any], ...], Column[Any] | None, bool]:
    """An insert step's columns, the generated key it returns (None ``with_key``, or when the
    database generates none), and whether its rows are flat (`InsertStep.flat`)."""
    gen = mapper.generated_pk
    columns = mapper.columns if with_key or gen is None else mapper.insert_columns
    returning = None if with_key else gen
    flat = returning is not None and bool(columns) and dialect.flat_inserts
    return columns, returning, flat


def _insert_step(mapper: Mapper, objs: list[Any], dialect: Dialect, *, with_key: bool) -> InsertStep:
    columns, returning, flat = _insert_layout(mapper, dialect, with_key=with_key)
    rows = _builder(mapper, "insert", columns, dialect, flat=flat)(objs)
    return InsertStep(mapper, columns, rows, objs, returning, flat)


def _update_step(mapper: Mapper, names: tuple[str, ...], group: ChangedRows, dialect: Dialect) -> UpdateStep:
    # The columns and the row builder of a set of changed fields, found by the field names.
    key = ("update-fields", names, dialect.name)
    found: tuple[tuple[Column[Any], ...], RowBuilder] | None = mapper.compiled.get(key)
    if found is None:
        columns = tuple(mapper.column_names[n] for n in names)
        found = mapper.compiled[key] = (columns, _builder(mapper, "update", columns, dialect))
    columns, build = found
    return UpdateStep(mapper, columns, build(group.objs), group.objs, group.keys, group.originals, mapper.version)


def _delete_step(mapper: Mapper, deleted: tuple[list[Any], list[Any]], dialect: Dialect) -> DeleteStep:
    """Delete by identity key (the key the row had when loaded, whatever the fields say now),
    each value converted by the ``dialect``'s dumper of its column (if any)."""
    version = mapper.version
    ids, objs = deleted
    columns = [*mapper.pk] if version is None else [*mapper.pk, version]
    convs = [dialect.dumper(c) for c in columns]
    keys: list[Any]
    if len(columns) == 1:  # a single-column key: the keys themselves
        conv = convs[0]
        keys = ids if conv is None else [conv(key) for key in ids]
    else:  # a tuple per row: the key's values, then the expected version
        rows: list[tuple[Any, ...]] = ids if len(mapper.pk) > 1 else [(key,) for key in ids]
        if version is not None:
            rows = [(*key, obj.__dict__[version.name]) for key, obj in zip(rows, objs, strict=True)]
        if any(conv is not None for conv in convs):
            rows = [
                tuple(v if conv is None or v is None else conv(v) for v, conv in zip(row, convs, strict=True))
                for row in rows
            ]
        keys = rows
    return DeleteStep(mapper, keys, ids, objs, version)


#: ``build(objs) -> rows`` (see `_builder`).
RowBuilder = Callable[[Sequence[Any]], list[Any]]
#: A builder that may refuse the objects (``only_generated``): None.
GuardedBuilder = Callable[[Sequence[Any]], list[Any] | None]


@overload
def _builder(
    mapper: Mapper,
    kind: str,
    columns: tuple[Column[Any], ...],
    dialect: Dialect,
    *,
    flat: bool = False,
    only_generated: Literal[False] = False,
) -> RowBuilder: ...


@overload
def _builder(
    mapper: Mapper,
    kind: str,
    columns: tuple[Column[Any], ...],
    dialect: Dialect,
    *,
    flat: bool = False,
    only_generated: Literal[True],
) -> GuardedBuilder: ...


def _builder(
    mapper: Mapper,
    kind: str,
    columns: tuple[Column[Any], ...],
    dialect: Dialect,
    *,
    flat: bool = False,
    only_generated: bool = False,
) -> RowBuilder | GuardedBuilder:
    """The compiled row builder of a step: checks each value and lays out the statement's row,
    each value converted by the ``dialect``'s dumper of its column (if any).

    Insert rows hold ``columns`` (the version as 1); update rows hold ``columns``, then the
    primary key, then the current version. Both are built from objects, as a tuple per object,
    or with ``flat`` as one list of every row's values in turn. With ``only_generated`` (an
    insert), the builder returns None as soon as an object is not of the mapper's class or
    has a value for its generated key. Generated once per entity, column set, layout and
    dialect, because a generic loop over columns costs several times more per object.
    """
    key = (kind, columns, dialect.name, flat, only_generated)
    fn: RowBuilder | None = mapper.compiled.get(key)
    if fn is not None:
        return fn

    def slow(i: int, value: Any) -> None:
        _check(mapper, columns[i], value)

    env: dict[str, Any] = {"_slow": slow, "_cls": mapper.entity}

    def dumped(column: Column[Any], expr: str) -> str:
        conv = dialect.dumper(column)
        if conv is None:
            return expr
        name = f"_c{len(env)}"
        env[name] = conv
        return f"(None if {expr} is None else {name}({expr}))" if column.ctype.nullable else f"{name}({expr})"

    body: list[str] = []
    out: list[str] = []
    if only_generated:
        assert mapper.generated_pk is not None
        body += [f"if type(obj) is not _cls or d[{mapper.generated_pk.name!r}] is not None: return None"]
    for i, c in enumerate(columns):
        if kind == "insert" and c.version:
            out.append("1")
            continue
        var = f"v{i}"
        body.append(f"{var} = d[{c.name!r}]")
        fast = _types.fast_check(c.ctype, var, env, f"_t{i}")
        body.append(f"if not {fast}: _slow({i}, {var})" if fast else f"_slow({i}, {var})")
        out.append(dumped(c, var))
    if kind == "update":
        out.extend(dumped(c, f"d[{c.name!r}]") for c in mapper.pk)
        if mapper.version is not None:
            out.append(dumped(mapper.version, f"d[{mapper.version.name!r}]"))
    if not out:
        add = "append(())"
    elif flat:
        add = f"extend(({', '.join(out)},))"
    else:
        add = f"append(({', '.join(out)},))"
    src = "\n".join(
        [
            "def build(objs):",
            "    rows = []",
            f"    {'extend = rows.extend' if flat and out else 'append = rows.append'}",
            "    for obj in objs:",
            "        d = obj.__dict__",
            *(f"        {line}" for line in body),
            f"        {add}",
            "    return rows",
        ]
    )
    fn = mapper.compiled[key] = compile_function("build", src, env, what=f"{mapper.name} {kind} rows")
    return fn


def _check(mapper: Mapper, column: Column[Any], value: Any) -> None:
    problem = _types.check(column.ctype, value)
    if problem is not None:
        raise with_details(
            DataError(f"cannot flush {mapper.name}: field {column.name!r} {problem}"),
            entity=mapper.name,
            field=column.name,
            reason=problem,
        )


def table_order(mappers: Iterable[Mapper]) -> list[Mapper]:
    """Order mappers parents first by their foreign keys; ties and cycles keep a stable order."""
    return list(_table_order(frozenset(mappers)))


@functools.lru_cache(maxsize=1024)
def _table_order(mappers: frozenset[Mapper]) -> tuple[Mapper, ...]:
    # Memoized: every flush orders the same few sets of tables.
    todo = sorted(mappers, key=lambda m: (m.table, m.name))
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
    return tuple(ordered)
