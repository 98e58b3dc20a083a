"""The Markdown report page: one section per database (and one for the PostgreSQL write strategies).

A run rewrites only its own section and keeps the others, so that ``--db sqlite`` and
``--db postgresql://...`` (and ``benchmarks.pg_strategies``) build one page together. Each suite
section carries its chart data in an HTML comment, so that the chart can show every database.
"""

from __future__ import annotations

import json
import os
import re

from .chart import ChartPanel
from .machine import Environment
from .report import Table, results_table, verdicts
from .runner import RunResult

SECTION_ORDER = ("sqlite", "postgresql", "pg-strategies")
_SECTION = re.compile(r"<!-- section: (?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /section: (?P=name) -->\n?", re.S)
_CHART_DATA = re.compile(r"<!-- chart-data: (?P<json>.*?) -->")
_CHART_LINK = re.compile(r"^!\[[^\]]*\]\([^)]*\)$", re.M)

TITLE = "# Benchmarks"
INTRO = """\
aiouow against the floor, hand-written driver code (asyncpg or aiosqlite), and against
SQLAlchemy 2.x's `AsyncSession`, on the same table and data, in one run per database: medians
of several repetitions that interleave the systems, after a warm-up round. How to run the suite,
what each workload measures and the fairness rules are in `benchmarks/README.md`; each section
below names the command, machine and versions it came from."""


def read_sections(path: str) -> tuple[dict[str, str], str | None]:
    """The sections of an existing page by name, and its chart image line (None: no page or no chart)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return {}, None
    sections = {m["name"]: m["body"] for m in _SECTION.finditer(text)}
    first = _SECTION.search(text)
    header = text[: first.start()] if first else text
    link = _CHART_LINK.search(header)
    return sections, link.group(0) if link else None


def write_page(path: str, name: str, body: str, chart: str | None = None) -> None:
    """Write ``body`` as section ``name`` of the page at ``path``, keeping its other sections.

    ``chart``: the chart image to embed (linked relative to the page); None keeps the page's own.
    """
    sections, link = read_sections(path)
    sections[name] = body if body.endswith("\n") else body + "\n"
    if chart is not None:
        rel = os.path.relpath(os.path.abspath(chart), os.path.dirname(os.path.abspath(path)))
        link = f"![aiouow and SQLAlchemy, as multiples of hand-written driver code]({rel.replace(os.sep, '/')})"
    order = [n for n in SECTION_ORDER if n in sections] + sorted(n for n in sections if n not in SECTION_ORDER)
    parts = [TITLE, "", INTRO, ""]
    if link:
        parts += [link, ""]
    for n in order:
        parts.append(f"<!-- section: {n} -->\n{sections[n]}<!-- /section: {n} -->\n")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts).rstrip("\n") + "\n")


def chart_panels(path: str) -> list[ChartPanel]:
    """The chart data of every suite section of the page, in page order."""
    sections, _ = read_sections(path)
    panels: list[ChartPanel] = []
    for n in [n for n in SECTION_ORDER if n in sections] + sorted(n for n in sections if n not in SECTION_ORDER):
        m = _CHART_DATA.search(sections[n])
        if m:
            try:
                panel = ChartPanel.from_json(json.loads(m["json"]))
            except json.JSONDecodeError:
                panel = None
            if panel is not None:
                panels.append(panel)
    return panels


def environment_lines(env: Environment | None, command: str, extra: str = "") -> list[str]:
    lines = [f"- Command: `{command}`"]
    if env is not None:
        lines += env.lines()
    if extra:
        lines.append(extra)
    return lines


#: Why the request loop can come out below 1.0x (benchmarks/README.md, rule 8).
_ROUND_TRIPS = {
    "sqlite": "Request loop: aiouow makes two calls into aiosqlite's thread per request (BEGIN with the "
    "SELECT, the UPDATE with its COMMIT), the hand-written code four, one per statement, as code against "
    "aiosqlite's public API does.",
    "postgresql": "Request loop: four round trips per request for aiouow and SQLAlchemy (BEGIN, SELECT, "
    "UPDATE, COMMIT), five for the hand-written code, whose asyncpg pool resets each connection it takes "
    "back with one more query. aiouow's pool skips that reset after a session that ran only aiouow's "
    "statements ([giving a connection back](pools.md#giving-a-connection-back)); SQLAlchemy never runs it.",
}


def suite_section(result: RunResult, panel: ChartPanel, command: str) -> str:
    """The Markdown section of one suite run."""
    table: Table = results_table(result)
    lines = [
        f"## {panel.title}",
        "",
        f"<!-- chart-data: {json.dumps(panel.to_json(), ensure_ascii=False)} -->",
        "",
        *environment_lines(
            result.environment,
            command,
            f"- Medians of {result.repeat} repetitions after one warm-up round; {result.rows:,} rows; "
            f"database: {result.target.label}\n- {result.target.settings_note}",
        ),
        "",
        table.markdown(),
        "",
        "Statements: the data statements (SELECT, INSERT, UPDATE, DELETE; an executemany counts as one) each "
        "system sent in the measured part, BEGIN, COMMIT and ROLLBACK not counted; per flush for the flush "
        "workloads. aiouow's come from its own `s.stats()`, SQLAlchemy's from a `before_cursor_execute` "
        "listener, the hand-written code's from the code itself.",
        "",
        *((_ROUND_TRIPS[result.target.dialect], "") if any(m.key == "request_loop" for m in result.metrics) else ()),
        "### Targets",
        "",
        *(f"- **{v.status}** {v.text.split(' ', 1)[1]}" for v in verdicts(result)),
    ]
    if result.sqlalchemy_missing:
        lines += ["", f"SQLAlchemy was not importable ({result.sqlalchemy_missing}): its column shows n/a."]
    return "\n".join(lines) + "\n"
