"""One way to generate code: functions compiled from source that tracebacks can show.

aiouow generates a few hot functions as source, as ``dataclasses`` does for ``__init__``:
an entity's ``__init__``, its rows-to-objects loader and its flush row builders (a loop over
columns costs several times more per object). Every such function goes through
`compile_function`, which registers its source with `linecache` under a name that says what
it is, so a traceback through generated code shows the line that failed instead of
``<string>``. Only checked identifiers reach the source (see `aiouow._mapping`).
"""

from __future__ import annotations

import itertools
import linecache
from collections.abc import Callable
from typing import Any

_serial = itertools.count(1)


def compile_function(name: str, source: str, env: dict[str, Any], *, what: str) -> Callable[..., Any]:
    """Compile ``source`` (which defines the function ``name``) in ``env`` and return it.

    ``what`` names the function in tracebacks: ``<aiouow: User.__init__ #3>``.
    """
    filename = f"<aiouow: {what} #{next(_serial)}>"
    code = compile(source, filename, "exec")
    exec(code, env)  # noqa: S102 - the source is built from checked identifiers only
    lines = source.splitlines(keepends=True)
    # (size, mtime None: never checked against a file, lines, name): how linecache keeps
    # sources that no file holds; it keeps them until linecache.clearcache().
    linecache.cache[filename] = (len(source), None, lines, filename)
    fn: Callable[..., Any] = env[name]
    return fn
