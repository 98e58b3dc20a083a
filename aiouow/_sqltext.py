"""Raw SQL with ``:name`` placeholders, rewritten into a dialect's own (``$1`` or ``?1``).

``await s.execute("SELECT * FROM users WHERE name = :name", name="alice")`` runs the same on every
dialect. The scan skips what is not SQL code: string literals, quoted identifiers, comments,
PostgreSQL dollar-quoted strings, and ``::`` casts, so ``':x'`` and ``col::text`` stay as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import QueryError

#: One token that is not SQL code (copied as it is), or a ``:name`` placeholder.
_TOKENS = re.compile(
    r"""
      (?P<skip>
          '(?:[^']|'')*'                        # a string literal ('' escapes a quote)
        | "(?:[^"]|"")*"                        # a quoted identifier
        | --[^\n]*                              # a line comment
        | /\*.*?\*/                             # a block comment
        | (?P<dollar>\$[A-Za-z_]?[A-Za-z0-9_]*\$).*?(?P=dollar)   # a dollar-quoted string
        | ::                                    # a cast, never a placeholder
        | \[[^\]]*\]                            # an SQLite bracketed identifier
      )
    | (?<![A-Za-z0-9_]):(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE | re.DOTALL,
)


def bind_named(sql: str, named: Mapping[str, Any], placeholder: Callable[[int], str]) -> tuple[str, list[Any]]:
    """``sql`` with each ``:name`` replaced by the dialect's numbered ``placeholder``, and the
    parameters in that order (a name used twice is one parameter). Every placeholder needs a
    value and every value a placeholder, else `QueryError`."""
    order: dict[str, int] = {}
    params: list[Any] = []

    def replace(m: re.Match[str]) -> str:
        name = m.group("name")
        if name is None:
            return m.group(0)
        if name not in named:
            raise QueryError(f"cannot execute: the SQL uses :{name} but no value was given for {name!r}")
        index = order.get(name)
        if index is None:
            params.append(named[name])
            index = order[name] = len(params)
        return placeholder(index)

    out = _TOKENS.sub(replace, sql)
    unused = [name for name in named if name not in order]
    if unused:
        raise QueryError(
            f"cannot execute: {', '.join(repr(n) for n in unused)} given but the SQL has no "
            f"{', '.join(':' + n for n in unused)} placeholder"
        )
    return out, params
