"""Deciding what changed: which fields of an object differ from their originals, and what those were.

The tracker (`aiouow._tracking`) records the original of each field at its first assignment
since the last load or flush, and the JSON text of JSON fields (which can change in place);
these functions read those records. `group_changes` is the one place that decides whether a
field changed: a flush and the inspection API (`dirty_fields`, `dirty`) both go through it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._types import PLAIN_TYPES, dump_json, same_value
from ._unitofwork import ChangedRows

if TYPE_CHECKING:
    from ._mapping import Mapper


def group_changes(
    mapper: Mapper,
    identity: dict[Any, Any],
    found: Iterable[tuple[Any, dict[str, Any]]],
    json_text: dict[Any, dict[str, str]] | None,
    deleting: dict[Any, Any] | None,
) -> dict[tuple[str, ...], ChangedRows]:
    """The one place that decides what changed. Of the objects ``found`` (identity key, the
    originals of the fields assigned since the last load or flush; the objects in ``identity``),
    those that differ from their originals, grouped by the fields that changed (in column order);
    JSON fields compare their JSON text with ``json_text`` (by key). A field set back to its
    original is no change; objects in ``deleting`` are left out.

    A single assigned field, the common case, is decided inline, plain values compared with ``==``
    (`same_value` gives the same answer): with a call per object instead, finding 1,000 changed
    objects measured 0.40 ms instead of 0.32 ms.
    """
    updates: dict[tuple[str, ...], ChangedRows] = {}
    single = mapper.single_names  # one shared ``(name,)`` per field: runs of it group by identity
    last: tuple[str, ...] | None = None  # the changed fields of the previous object
    group = ChangedRows()  # (the group of the previous object)
    names: tuple[str, ...]
    for key, changed in found:
        if deleting and key in deleting:
            continue
        obj = identity[key]
        d = obj.__dict__
        text = json_text.get(key) if json_text else None
        if text is None and len(changed) == 1:
            ((name, old),) = changed.items()
            new = d[name]
            kind = type(old)
            if kind is type(new) and (old == new if kind in PLAIN_TYPES else same_value(old, new)):
                continue
            names = single[name]
        else:
            names = _changed_names(mapper, d, changed, text)
            if not names:
                continue
        if names is not last:
            last = names
            held = updates.get(names)
            group = updates[names] = ChangedRows() if held is None else held
        group.objs.append(obj)
        group.keys.append(key)
        group.originals.append(changed)
    return updates


def names_of(
    mapper: Mapper, obj: Any, key: Any, changed: dict[str, Any], json_text: dict[str, str] | None
) -> tuple[str, ...]:
    """The changed fields of one object (`group_changes` for it alone)."""
    updates = group_changes(mapper, {key: obj}, [(key, changed)], {key: json_text} if json_text else None, None)
    return next(iter(updates), ())


def _changed_names(
    mapper: Mapper, d: dict[str, Any], changed: dict[str, Any], json_text: dict[str, str] | None
) -> tuple[str, ...]:
    """`group_changes` for an object that assigned several fields, or has JSON fields."""
    if json_text is None:
        names = [n for n, old in changed.items() if not same_value(old, d[n])]
        if len(names) > 1:
            position = mapper.column_names
            names.sort(key=lambda n: position[n].position)
        return tuple(names)
    out: list[str] = []
    for c in mapper.columns:
        name = c.name
        if c.json:
            if _json_text(d[name]) != json_text.get(name):
                out.append(name)
        elif name in changed and not same_value(changed[name], d[name]):
            out.append(name)
    return tuple(out)


def original_of(mapper: Mapper, obj: Any, name: str, changed: dict[str, Any], json_text: dict[str, str] | None) -> Any:
    """The value of ``name`` at the last load or flush, from the recorded originals."""
    if json_text is not None and mapper.column_names[name].json:
        return json.loads(json_text[name])
    if name in changed:
        return changed[name]
    return obj.__dict__[name]


def originals_of(changed: dict[str, Any], json_text: dict[str, str] | None) -> dict[str, Any]:
    """The values at the last load or flush of every field that may have changed since."""
    out = dict(changed)
    if json_text is not None:
        for name, text in json_text.items():
            out[name] = json.loads(text)
    return out


def _json_text(value: Any) -> str | None:
    try:
        return dump_json(value)
    except (TypeError, ValueError):
        return None  # not JSON-able: counts as a change, and the flush's value check names it
