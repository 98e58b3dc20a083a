"""Flush planning: a pure function from the tracked state to an ordered list of batched steps.

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
from ._state import InstanceState, Loaded
from ._tracking import changed_fields, dirty_fields
from .errors import DataError

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


def plan_flush(
    new: Sequence[Any],
    candidates: Sequence[InstanceState],
    deleted: Sequence[InstanceState],
    marked: Iterable[Loaded] = (),
    dialect: Dialect | None = None,
) -> FlushPlan:
    """Plan a flush of pending inserts (the objects), changed objects and deletes.

    Changed objects are the ``candidates`` with their own state and the objects whose changes
    the ``marked`` stand-ins hold; either may hold objects whose fields were set back. Deleted
    objects are those of ``deleted`` and those the stand-ins hold as deleted. With a
    ``dialect``, the rows of insert and update steps are its driver parameters.
    """
    single = _single_insert_step(new, dialect) if new else None
    inserts = _group_inserts(new) if new and single is None else {}
    updates = _group_updates(candidates) if candidates else {}
    deletes = _group_deletes(deleted) if deleted else {}
    for mark in marked:
        if mark.changes:
            _group_marked(mark, updates)
        if mark.deleted:
            ids, objs = deletes.setdefault(mark.mapper, ([], []))
            ids.extend(mark.deleted)
            objs.extend(mark.deleted.values())

    switches = _row_switches(inserts, deletes, dialect) if inserts and deletes else []

    plan = FlushPlan()
    steps = plan.steps
    mappers = {*inserts, *deletes}
    if single is not None:
        mappers.add(single.mapper)
        steps.append(single)  # (the only insert step, so the first)
    for mapper, _ in updates:
        mappers.add(mapper)
    order = table_order(mappers) if len(mappers) > 1 else list(mappers)  # (one table: nothing to order)
    for mapper in order if inserts else ():
        pair = inserts.get(mapper)
        if pair is None:
            continue
        generated, explicit = pair
        if generated:
            steps.append(_insert_step(mapper, generated, dialect, with_key=False))
        if explicit:
            steps.append(_insert_step(mapper, explicit, dialect, with_key=True))
    groups = updates.items() if len(order) < 2 else sorted(updates.items(), key=lambda kv: order.index(kv[0][0]))
    for (mapper, names), group in groups:
        steps.append(_update_step(mapper, names, group, dialect))
    steps.extend(switches)
    for mapper in reversed(order) if deletes else ():
        pair = deletes.get(mapper)
        if pair is not None:
            steps.append(_delete_step(mapper, pair, dialect))
    return plan


def _single_insert_step(new: Sequence[Any], dialect: Dialect | None) -> InsertStep | None:
    """The usual insert: objects of one entity, every one's key to be generated. Then one step
    takes them all, its rows built in the pass that checks this; else None (the caller groups)."""
    mapper: Mapper | None = type(new[0]).__dict__.get("__aiouow_mapper__")
    if mapper is None or mapper.generated_pk is None:
        return None
    columns, returning, flat = _insert_layout(mapper, dialect, with_key=False)
    rows = _builder(mapper, "insert", columns, dialect, flat=flat, only_generated=True)(new)
    if rows is None:
        return None
    return InsertStep(mapper, columns, rows, list(new), returning, flat)


def _group_inserts(new: Iterable[Any]) -> dict[Mapper, tuple[list[Any], list[Any]]]:
    """Per mapper: the objects whose key the database generates, and those that carry their key."""
    inserts: dict[Mapper, tuple[list[Any], list[Any]]] = {}
    last: type | None = None  # the class of the previous object (objects come in runs)
    generated: list[Any] = []
    explicit: list[Any] = []
    gen_name: str | None = None
    for obj in new:
        if type(obj) is not last:
            last = type(obj)
            mapper: Mapper = last.__dict__["__aiouow_mapper__"]
            pair = inserts.get(mapper)
            if pair is None:
                pair = inserts[mapper] = ([], [])
            generated, explicit = pair
            gen_name = mapper.generated_pk.name if mapper.generated_pk is not None else None
        if gen_name is not None and obj.__dict__[gen_name] is None:
            generated.append(obj)
        else:
            explicit.append(obj)
    return inserts


class _Changed:
    """The objects of one update step as planning finds them: parallel lists."""

    __slots__ = ("keys", "objs", "originals")

    def __init__(self) -> None:
        self.objs: list[Any] = []
        self.keys: list[Any] = []
        self.originals: list[dict[str, Any]] = []


_Updates = dict[tuple[Mapper, tuple[str, ...]], _Changed]


def _group_updates(candidates: Iterable[InstanceState]) -> _Updates:
    """The changed objects by mapper and changed fields (unchanged candidates are left out)."""
    updates: _Updates = {}
    last: tuple[Mapper, tuple[str, ...]] | None = None  # the group of the previous changed object
    group = _Changed()
    for st in candidates:
        names = dirty_fields(st)  # one shared tuple per field for single-field changes
        if not names:
            continue
        mapper = st.mapper
        if last is None or last[1] is not names or last[0] is not mapper:  # else: the previous object's group
            if not mapper.immutable.isdisjoint(names):
                _refuse_immutable(st, names)
            last = (mapper, names)
            group = _group(updates, last)
        group.objs.append(st.obj)
        group.keys.append(st.key)
        group.originals.append(st.changed)
    return updates


def _group_marked(mark: Loaded, updates: _Updates) -> None:
    """Add the changed objects whose changes ``mark`` holds (their key and version fields never
    are among them: assigning those gives the object its own state)."""
    mapper = mark.mapper
    table = mark.table
    single = mapper.single_names
    plain = _types.PLAIN_TYPES
    same_value = _types.same_value
    last: tuple[str, ...] | None = None  # the changed fields of the previous changed object
    objs: list[Any] = []
    keys: list[Any] = []
    originals: list[dict[str, Any]] = []
    names: tuple[str, ...]
    for key, changed in mark.changes.items():
        obj = table[key]
        if len(changed) == 1:  # one field assigned: `changed_fields`, inline (the common case)
            ((name, old),) = changed.items()
            new = obj.__dict__[name]
            kind = type(old)
            if kind is type(new) and (old == new if kind in plain else same_value(old, new)):
                continue  # set back to its original
            names = single[name]
        else:
            names = changed_fields(mapper, obj.__dict__, changed)
            if not names:
                continue
        if names is not last:
            last = names
            group = _group(updates, (mapper, names))
            objs, keys, originals = group.objs, group.keys, group.originals
        objs.append(obj)
        keys.append(key)
        originals.append(changed)


def _row_switches(
    inserts: dict[Mapper, tuple[list[Any], list[Any]]],
    deletes: dict[Mapper, tuple[list[Any], list[Any]]],
    dialect: Dialect | None,
) -> list[UpdateStep]:
    """New objects whose key is that of an object deleted in the same flush take over its row.

    An INSERT of the key would run before the DELETE (and a DELETE first could break the
    foreign keys of rows that still reference the key), so the new object's fields go out as one
    UPDATE of the row instead, as SQLAlchemy does; the pair is taken out of ``inserts`` and
    ``deletes``. With a version column the UPDATE expects the deleted object's version.
    """
    steps: list[UpdateStep] = []
    for mapper, (ids, old_objs) in deletes.items():
        pair = inserts.get(mapper)
        if pair is None or not pair[1]:  # (only objects carrying their key can switch)
            continue
        explicit = pair[1]
        position = {key: i for i, key in enumerate(ids)}
        switched = [(obj, mapper.key_of_values(obj.__dict__)) for obj in explicit]
        switched = [(obj, key) for obj, key in switched if key in position]
        if not switched:
            continue
        taken = {position[key] for _, key in switched}
        switching = {id(obj) for obj, _ in switched}
        explicit[:] = [obj for obj in explicit if id(obj) not in switching]
        replaced_objs = [old_objs[position[key]] for _, key in switched]
        keys = [key for _, key in switched]
        ids[:], old_objs[:] = (
            [k for i, k in enumerate(ids) if i not in taken],
            [o for i, o in enumerate(old_objs) if i not in taken],
        )
        names = tuple(c.name for c in mapper.columns if not c.primary_key and not c.version)
        group = _Changed()
        group.objs = [obj for obj, _ in switched]
        group.keys = keys
        group.originals = [{} for _ in switched]
        step = _update_step(mapper, names or tuple(c.name for c in mapper.pk), group, dialect)
        version = mapper.version
        if version is not None:  # the WHERE expects the version of the row being taken over
            expected = [old.__dict__[version.name] for old in replaced_objs]
            if dialect is not None:  # (as a driver parameter, like the rest of the row)
                expected = [dialect.param(version, v) for v in expected]
            step.rows = [(*row[:-1], v) for row, v in zip(step.rows, expected, strict=True)]
        step.replaced = _delete_step(mapper, (keys, replaced_objs), dialect)
        steps.append(step)
    for mapper in [m for m, (ids, _) in deletes.items() if not ids]:
        del deletes[mapper]
    return steps


def _group(updates: _Updates, key: tuple[Mapper, tuple[str, ...]]) -> _Changed:
    group = updates.get(key)
    if group is None:
        group = updates[key] = _Changed()
    return group


def _group_deletes(deleted: Iterable[InstanceState]) -> dict[Mapper, tuple[list[Any], list[Any]]]:
    """Per mapper: the identity keys of the deleted objects, and the objects."""
    deletes: dict[Mapper, tuple[list[Any], list[Any]]] = {}
    last: Mapper | None = None  # the mapper of the previous object
    ids: list[Any] = []
    objs: list[Any] = []
    for st in deleted:
        if st.mapper is not last:
            last = st.mapper
            ids, objs = deletes.setdefault(last, ([], []))
        ids.append(st.key)
        objs.append(st.obj)
    return deletes


def _refuse_immutable(st: InstanceState, names: tuple[str, ...]) -> None:
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


def _insert_layout(
    mapper: Mapper, dialect: Dialect | None, *, with_key: bool
) -> tuple[tuple[Column[Any], ...], Column[Any] | None, bool]:
    """An insert step's columns, the generated key it returns (None ``with_key``, or when the
    database generates none), and whether its rows are flat (`InsertStep.flat`)."""
    gen = mapper.generated_pk
    columns = mapper.columns if with_key or gen is None else mapper.insert_columns
    returning = None if with_key else gen
    flat = returning is not None and bool(columns) and dialect is not None and dialect.flat_inserts
    return columns, returning, flat


def _insert_step(mapper: Mapper, objs: list[Any], dialect: Dialect | None, *, with_key: bool) -> InsertStep:
    columns, returning, flat = _insert_layout(mapper, dialect, with_key=with_key)
    rows = _builder(mapper, "insert", columns, dialect, flat=flat)(objs)
    return InsertStep(mapper, columns, rows, objs, returning, flat)


def _update_step(mapper: Mapper, names: tuple[str, ...], group: _Changed, dialect: Dialect | None) -> UpdateStep:
    # The columns and the row builder of a set of changed fields, found by the field names.
    key = ("update-fields", names, None if dialect is None else dialect.name)
    found: tuple[tuple[Column[Any], ...], RowBuilder] | None = mapper.compiled.get(key)
    if found is None:
        columns = tuple(mapper.column_names[n] for n in names)
        found = mapper.compiled[key] = (columns, _builder(mapper, "update", columns, dialect))
    columns, build = found
    return UpdateStep(mapper, columns, build(group.objs), group.objs, group.keys, group.originals, mapper.version)


def _delete_step(mapper: Mapper, deleted: tuple[list[Any], list[Any]], dialect: Dialect | None) -> DeleteStep:
    """Delete by identity key (the key the row had when loaded, whatever the fields say now),
    each value converted by the ``dialect``'s dumper of its column (if any)."""
    version = mapper.version
    ids, objs = deleted
    columns = [*mapper.pk] if version is None else [*mapper.pk, version]
    convs = [None if dialect is None else dialect.dumper(c) for c in columns]
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
    dialect: Dialect | None,
    *,
    flat: bool = False,
    only_generated: Literal[False] = False,
) -> RowBuilder: ...


@overload
def _builder(
    mapper: Mapper,
    kind: str,
    columns: tuple[Column[Any], ...],
    dialect: Dialect | None,
    *,
    flat: bool = False,
    only_generated: Literal[True],
) -> GuardedBuilder: ...


def _builder(
    mapper: Mapper,
    kind: str,
    columns: tuple[Column[Any], ...],
    dialect: Dialect | None,
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
    key = (kind, columns, None if dialect is None else dialect.name, flat, only_generated)
    fn: RowBuilder | None = mapper.compiled.get(key)
    if fn is not None:
        return fn

    def slow(i: int, value: Any) -> None:
        _check(mapper, columns[i], value)

    env: dict[str, Any] = {"_slow": slow, "_cls": mapper.entity}

    def dumped(column: Column[Any], expr: str) -> str:
        conv = None if dialect is None else dialect.dumper(column)
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
        raise DataError(f"cannot flush {mapper.name}: field {column.name!r} {problem}")


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
