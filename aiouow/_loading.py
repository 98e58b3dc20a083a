"""Rows to objects: the hot path of every query, compiled once per entity and dialect.

A loader turns driver rows into entity objects through the session's identity map: a row whose
object is already in the map returns that object (its unflushed changes kept); a new row
becomes an object whose ``__dict__`` is built in one dict display, held by the session's
`EntityTracker` of the entity. The source is generated, as ``dataclasses`` does for
``__init__``, because a loop over columns would cost several times more per row. Loaders are
built here, from a dialect's value converters (`Dialect.from_db`), and cached on the mapper.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

from ._codegen import compile_function
from ._expire import take_expired
from ._mapping import Mapper, set_state_slot
from ._types import Kind, short_repr
from .errors import DataError, with_details

if TYPE_CHECKING:
    from ._tracking import EntityTracker
    from .dialects._base import Dialect, Row

#: ``load(rows, tracker, on_new) -> objects``, through the identity map of the `EntityTracker`;
#: ``on_new(obj)`` runs for each new object when given.
Loader = Callable[[Sequence[Sequence[Any]], Any, Callable[[Any], None] | None], list[Any]]
#: ``values(row) -> the row's Python values`` (columns in mapper order).
RowValues = Callable[[Sequence[Any]], Sequence[Any]]


def load_objects(tracker: EntityTracker, dialect: Dialect, rows: Sequence[Row], *, refresh: bool) -> list[Any]:
    """Rows of the tracker's entity to objects, through its identity map (one object per row);
    with ``refresh`` (a locking read), held objects take the row's values too."""
    mapper = tracker.mapper
    on_new = tracker.loaded if mapper.json_columns else None
    try:
        objs = object_loader(mapper, dialect)(rows, tracker, on_new)
        if tracker.expired and not refresh:  # (held objects whose expired fields take the rows' values)
            take_expired(tracker, dialect, objs, rows)
        if refresh:
            values = row_values(mapper, dialect)
            for obj, row in zip(objs, rows, strict=True):
                tracker.refreshed(obj, mapper.names, values(row))
        if mapper.relationships:  # peers for batched relationship loads
            tracker.loaded_batch(objs)
    except Exception as exc:  # a value the database holds that its field cannot take?
        named = unloadable(mapper, dialect, rows)
        if named is None:
            raise
        raise named from exc
    return objs


def unloadable(mapper: Mapper, dialect: Dialect, rows: Sequence[Row]) -> DataError | None:
    """After a loader failed: the `DataError` naming the entity, field and value it failed on
    (found again value by value; the loaders themselves do not look, to stay fast), or None
    when no value is at fault."""
    converters = [(c, dialect.from_db(c.ctype)) for c in mapper.columns]
    for row in rows:
        for i, (column, conv) in enumerate(converters):
            value = row[i]
            if conv is None or value is None:
                continue
            try:
                conv(value)
            except Exception as err:
                shown = short_repr(value)
                if column.ctype.kind is Kind.ENUM:
                    why = f"which is not a value of {column.ctype.python_type.__name__}"
                elif column.ctype.kind is Kind.JSON:
                    why = f"which cannot be read as JSON ({type(err).__name__}: {str(err)[:80]})"
                else:
                    why = f"which cannot be read as {column.ctype.describe()} ({type(err).__name__}: {str(err)[:80]})"
                return with_details(
                    DataError(f"cannot load {mapper.name}: field {column.name!r} holds {shown} in the database, {why}"),
                    entity=mapper.name,
                    field=column.name,
                    stored=True,
                )
    return None


def object_loader(mapper: Mapper, dialect: Dialect) -> Loader:
    """The rows-to-objects loader of ``mapper`` for the values of ``dialect`` (compiled once)."""
    key = ("object-loader", dialect.name)
    loader: Loader | None = mapper.compiled.get(key)
    if loader is None:
        converters = [dialect.from_db(c.ctype) for c in mapper.columns]
        loader = mapper.compiled[key] = compile_loader(mapper, converters)
    return loader


def row_values(mapper: Mapper, dialect: Dialect) -> RowValues:
    """A function turning a row of ``mapper``'s columns into Python values (for a refresh)."""
    key = ("row-values", dialect.name)
    fn: RowValues | None = mapper.compiled.get(key)
    if fn is None:
        pairs = [(i, conv) for i, c in enumerate(mapper.columns) if (conv := dialect.from_db(c.ctype)) is not None]

        def values(row: Sequence[Any]) -> Sequence[Any]:
            out = list(row)
            for i, conv in pairs:
                if out[i] is not None:
                    out[i] = conv(out[i])
            return out

        fn = mapper.compiled[key] = values
    return fn


def _dict_setter(cls: type) -> Callable[[Any, dict[str, Any]], None]:
    """The ``__set__`` of the ``__dict__`` descriptor of ``cls`` (the class in its MRO that gave
    instances their dict): setting an object's dict through it skips an attribute lookup."""
    for klass in cls.__mro__:
        descriptor = klass.__dict__.get("__dict__")
        if descriptor is not None and hasattr(descriptor, "__set__"):
            setter: Callable[[Any, dict[str, Any]], None] = descriptor.__set__
            return setter
    raise TypeError(f"{cls.__name__} objects have no __dict__")  # entities always have one


def compile_loader(mapper: Mapper, converters: Sequence[Callable[[Any], Any] | None]) -> Loader:
    """Generate the loader of ``mapper`` for rows whose values need ``converters`` (None: as they are).

    Rows whose keys the identity map does not hold yet (the first load into a session, say)
    become objects in bulk, each step one pass in C over all of them (``map``, ``dict.update``);
    otherwise, and when ``on_new`` is given, row by row.
    """
    env: dict[str, Any] = {
        "_cls": mapper.entity,
        "_new": object.__new__,
        "_set_dict": _dict_setter(mapper.entity),  # not Entity.__setattr__: a new object has nothing to track
        "_set_state": set_state_slot,
        "_repeat": repeat,
        "_drain": deque(maxlen=0).extend,  # runs a map() to its end, keeping nothing
    }
    exprs: list[str] = []
    for i, conv in enumerate(converters):
        if conv is None:
            exprs.append(f"r[{i}]")
        else:
            env[f"_c{i}"] = conv
            exprs.append(f"(None if r[{i}] is None else _c{i}(r[{i}]))")
    pk = mapper.pk_positions
    key_lines = [f"p{i} = {exprs[i]}" for i in pk]
    key = f"p{pk[0]}" if len(pk) == 1 else "(" + ", ".join(f"p{i}" for i in pk) + ",)"
    items = ", ".join(f"{mapper.names[i]!r}: {f'p{i}' if i in pk else exprs[i]}" for i in range(len(mapper.names)))
    row_key = exprs[pk[0]] if len(pk) == 1 else "(" + ", ".join(exprs[i] for i in pk) + ",)"
    all_items = ", ".join(f"{mapper.names[i]!r}: {exprs[i]}" for i in range(len(mapper.names)))
    src = "\n".join(
        [
            "def load(rows, tracker, on_new):",
            "    table = tracker.identity",
            "    if on_new is None:",
            f"        keys = [{row_key} for r in rows]",
            "        if not table or table.keys().isdisjoint(keys):",
            "            out = list(map(_new, _repeat(_cls, len(keys))))",
            f"            _drain(map(_set_dict, out, [{{{all_items}}} for r in rows]))",
            "            _drain(map(_set_state, out, _repeat(tracker)))",
            "            held = len(table)",
            "            table.update(zip(keys, out))",
            "            if len(table) - held != len(out):  # a key twice among the rows: one object for both",
            "                out = [table[key] for key in keys]",
            "            return out",
            "    out = []",
            "    append = out.append",
            "    get = table.get",
            "    for r in rows:",
            *(f"        {line}" for line in key_lines),
            f"        key = {key}",
            "        obj = get(key)",
            "        if obj is None:",
            "            obj = _new(_cls)",
            f"            _set_dict(obj, {{{items}}})",
            "            _set_state(obj, tracker)",
            "            table[key] = obj",
            "            if on_new is not None:",
            "                on_new(obj)",
            "        append(obj)",
            "    return out",
        ]
    )
    loader: Loader = compile_function("load", src, env, what=f"{mapper.name} loader")
    return loader
