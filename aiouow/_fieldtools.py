"""`fields`, `asdict` and `update`: an entity's fields as names and dicts, and partial updates
(a PATCH body from pydantic's ``model_dump(exclude_unset=True)``)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from ._mapping import describe, mapper_of
from .errors import DataError, with_details

E = TypeVar("E")


def fields(entity: Any) -> tuple[str, ...]:
    """The field names of an entity class (or of an entity object's class), in column order;
    relationships are not fields."""
    return mapper_of(entity).names


def asdict(obj: Any, *, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None) -> dict[str, Any]:
    """The object's fields as a dict, in column order (only ``include`` when given, without
    ``exclude``). JSON values are copies: changing the dict does not change the object. An unknown
    name in ``include`` or ``exclude`` is an `AttributeError` naming it."""
    mapper = mapper_of(obj)
    names = mapper.names
    wanted = _known(obj, names, include, "include") if include is not None else set(names)
    if exclude is not None:
        wanted -= _known(obj, names, exclude, "exclude")
    d = obj.__dict__
    json_names = {c.name for c in mapper.json_columns}
    return {n: copy.deepcopy(d[n]) if n in json_names else d[n] for n in names if n in wanted}


def update(obj: E, values: Mapping[str, Any]) -> E:
    """Set the fields named in ``values`` (a partial update; other fields keep theirs) and return
    the object. Nothing is set when a key is not a field (`AttributeError` naming every such key,
    relationships included: assign those directly), or when a key or version field would change
    (`DataError`). Values are checked as any assignment is, at the next flush."""
    mapper = mapper_of(obj)
    if not isinstance(values, Mapping):
        raise TypeError(f"cannot update {describe(obj)}: expected a mapping of field names to values, got {values!r}")
    columns = mapper.column_names
    unknown = [k for k in values if k not in columns]
    if unknown:
        relationships = [k for k in unknown if k in mapper.relationships]
        hint = f" ({', '.join(relationships)}: a relationship, assign it directly)" if relationships else ""
        raise AttributeError(
            f"cannot update {describe(obj)}: {', '.join(map(repr, unknown))} "
            f"{'is not a field' if len(unknown) == 1 else 'are not fields'} of {mapper.name}{hint}"
        )
    d = obj.__dict__
    for name, value in values.items():
        column = columns[name]
        current = d.get(name)
        if (column.primary_key and current is not None and value != current) or (column.version and value != current):
            what = "primary key" if column.primary_key else "version"
            raise with_details(
                DataError(
                    f"cannot update {describe(obj)}: {what} field {name!r} would change from {current!r} to "
                    f"{value!r}; {'primary keys are immutable' if column.primary_key else 'aiouow manages it'}"
                ),
                entity=mapper.name,
                field=name,
                reason=f"a {what} field cannot change",
            )
    for name, value in values.items():
        if d.get(name) is not value:
            setattr(obj, name, value)
    return obj


def _known(obj: Any, names: tuple[str, ...], given: Iterable[str], what: str) -> set[str]:
    chosen = set(given) if not isinstance(given, str) else {given}
    unknown = sorted(chosen.difference(names))
    if unknown:
        raise AttributeError(
            f"cannot make a dict of {type(obj).__name__}: {what} names {', '.join(map(repr, unknown))}, "
            f"not fields of {type(obj).__name__} (its fields: {', '.join(names)})"
        )
    return chosen
