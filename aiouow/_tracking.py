"""Change tracking: which fields of an object differ from what the database holds.

Assignments are recorded as they happen (``Entity.__setattr__`` keeps the first original of
each assigned field), so finding what changed costs nothing for untouched objects. A field set
back to its original is not a change. JSON values can change in place without an assignment,
so they are compared with the JSON text taken at the last load or flush.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ._state import InstanceState
from ._types import dump_json, same_value

if TYPE_CHECKING:
    from ._mapping import Mapper


def dirty_fields(st: InstanceState) -> tuple[str, ...]:
    """The changed fields of a persistent object, in column order."""
    changed = st.changed
    snap = st.json_snap
    if not changed and not snap:
        return ()
    mapper = st.mapper
    d = st.obj.__dict__
    if not mapper.json_columns:  # only the assigned fields can differ
        return changed_fields(mapper, d, changed)
    out: list[str] = []
    for c in mapper.columns:
        name = c.name
        if c.json:
            if snap is not None and _json_text(d[name]) != snap.get(name):
                out.append(name)
        elif name in changed and not same_value(changed[name], d[name]):
            out.append(name)
    return tuple(out)


def changed_fields(mapper: Mapper, d: dict[str, Any], changed: dict[str, Any]) -> tuple[str, ...]:
    """Of the fields recorded in ``changed`` (name -> original), those whose value in ``d`` differs
    from the original, in column order (for an entity without JSON fields)."""
    if len(changed) == 1:  # the common case, without building a list
        ((name, old),) = changed.items()
        # The mapper's shared ``(name,)``: flush planning groups runs of it by identity.
        return () if same_value(old, d[name]) else mapper.single_names[name]
    names = [n for n, old in changed.items() if not same_value(old, d[n])]
    if len(names) > 1:
        position = mapper.column_names
        names.sort(key=lambda n: position[n].position)
    return tuple(names)


def _json_text(value: Any) -> str | None:
    try:
        return dump_json(value)
    except (TypeError, ValueError):
        return None  # not JSON-able: counts as a change, and the flush's value check names it


def take_json_snapshot(st: InstanceState) -> None:
    """Remember the JSON text of the object's JSON fields (after a load or a flush)."""
    cols = st.mapper.json_columns
    if cols:
        d = st.obj.__dict__
        st.json_snap = {c.name: dump_json(d[c.name]) for c in cols}


def original_value(st: InstanceState, name: str) -> Any:
    """The value of ``name`` at the last load or flush."""
    column = st.mapper.column_names[name]
    if column.json and st.json_snap is not None:
        return json.loads(st.json_snap[name])
    if name in st.changed:
        return st.changed[name]
    return st.obj.__dict__[name]


def originals(st: InstanceState) -> dict[str, Any]:
    """The values at the last load or flush of every field that may have changed since."""
    out = dict(st.changed)
    if st.json_snap is not None:
        for name, text in st.json_snap.items():
            out[name] = json.loads(text)
    return out


def reset(st: InstanceState) -> None:
    """The object now matches the database: forget recorded originals and re-snapshot JSON."""
    st.changed = {}
    take_json_snapshot(st)
