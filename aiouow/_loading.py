"""Rows to objects: the hot path of every query, compiled once per entity and dialect.

A loader turns driver rows into entity objects through the session's identity map: a row whose
object is already in the map returns that object (its unflushed changes kept); a new row
becomes an object whose ``__dict__`` is built in one dict display, with the session's shared
``Loaded`` stand-in as its state. The source is generated, as ``dataclasses`` does for
``__init__``, because a loop over columns would cost several times more per row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._mapping import Mapper
from ._state import STATE_ATTR

#: ``load(rows, table, mark, on_new) -> objects``; ``on_new(obj)`` runs for each new object when given.
Loader = Callable[[Sequence[Sequence[Any]], dict[Any, Any], Any, Callable[[Any], None] | None], list[Any]]


def compile_loader(mapper: Mapper, converters: Sequence[Callable[[Any], Any] | None]) -> Loader:
    """Generate the loader of ``mapper`` for rows whose values need ``converters`` (None: as they are)."""
    env: dict[str, Any] = {
        "_cls": mapper.entity,
        "_new": object.__new__,
        "_set": object.__setattr__,  # not Entity.__setattr__: a new object has nothing to track
        "_STATE": STATE_ATTR,
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
    src = "\n".join(
        [
            "def load(rows, table, mark, on_new):",
            "    out = []",
            "    append = out.append",
            "    get = table.get",
            "    for r in rows:",
            *(f"        {line}" for line in key_lines),
            f"        key = {key}",
            "        obj = get(key)",
            "        if obj is None:",
            "            obj = _new(_cls)",
            f"            _set(obj, '__dict__', {{{items}}})",
            "            _set(obj, _STATE, mark)",
            "            table[key] = obj",
            "            if on_new is not None:",
            "                on_new(obj)",
            "        append(obj)",
            "    return out",
        ]
    )
    exec(src, env)  # noqa: S102 - generated from validated identifiers only
    loader: Loader = env["load"]
    return loader
