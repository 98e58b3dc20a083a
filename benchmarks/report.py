"""Tables of medians and ratios, and the PASS/FAIL lines of the targets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .chart import ChartEntry, ChartPanel
from .runner import RunResult
from .workloads import GOALS, Goal, Unit

UNIT_SCALE: dict[Unit, tuple[float, str]] = {"ms": (1e3, "ms"), "us": (1e6, "µs"), "B": (1.0, "bytes")}


@dataclass(frozen=True, slots=True)
class Table:
    headers: list[str]
    rows: list[list[str]]
    #: Columns aligned left (the others right).
    left: int = 1

    def text(self) -> str:
        widths = [max(len(h), *(len(r[i]) for r in self.rows)) for i, h in enumerate(self.headers)]

        def line(cells: list[str]) -> str:
            return "  ".join(
                c.ljust(w) if i < self.left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        rule = "  ".join("-" * w for w in widths)
        return "\n".join([line(self.headers), rule, *(line(r) for r in self.rows)])

    def markdown(self) -> str:
        aligns = [":--" if i < self.left else "--:" for i in range(len(self.headers))]
        out = ["| " + " | ".join(self.headers) + " |", "| " + " | ".join(aligns) + " |"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in self.rows]
        return "\n".join(out)


def number(value: float | None, unit: Unit) -> str:
    """A value in its display unit, with about three significant digits."""
    if value is None:
        return "n/a"
    v = value * UNIT_SCALE[unit][0]
    if unit == "B":
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def times(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.2f}x"


def results_table(result: RunResult) -> Table:
    """One row per metric: the systems' medians, the ratios, and the statements each sent."""
    keys = [k for k, _ in result.systems]
    headers = ["workload", "unit", *(title for _, title in result.systems)]
    headers += ["aiouow ÷ hand", "SQLAlchemy ÷ hand", "aiouow ÷ SQLAlchemy", "statements (" + " / ".join(keys) + ")"]
    rows: list[list[str]] = []
    for m in result.metrics:
        med = {k: result.median(m.key, k) for k in keys}
        counts = result.statements.get(m.key, {})
        rows.append(
            [
                m.label,
                UNIT_SCALE[m.unit][1],
                *(number(med[k], m.unit) for k in keys),
                times(ratio(med["aiouow"], med["hand"])),
                times(ratio(med["sqlalchemy"], med["hand"])),
                times(ratio(med["aiouow"], med["sqlalchemy"])),
                " / ".join("-" if counts.get(k) is None else str(counts[k]) for k in keys),
            ]
        )
    present = {m.key for m in result.metrics}
    if {"flush_small", "flush_big"} <= present:
        scale = {k: ratio(result.median("flush_big", k), result.median("flush_small", k)) for k in keys}
        rows.append(["flush scaling: large ÷ small tracked", "x", *(times(scale[k]) for k in keys), "", "", "", ""])
    return Table(headers, rows)


Status = Literal["PASS", "FAIL", "SKIP"]


@dataclass(frozen=True, slots=True)
class Verdict:
    goal: Goal
    status: Status
    text: str


def _goal_value(result: RunResult, goal: Goal) -> float | None:
    num = result.median(goal.numerator, goal.system)
    if goal.denominator is None:
        return num
    return ratio(num, result.median(goal.denominator, goal.base))


def verdicts(result: RunResult) -> list[Verdict]:
    """The targets whose workloads ran, each PASS, FAIL, or SKIP (a system missing)."""
    present = {m.key for m in result.metrics}
    out: list[Verdict] = []
    for goal in GOALS:
        if goal.numerator not in present or (goal.denominator is not None and goal.denominator not in present):
            continue
        value = _goal_value(result, goal)
        op = "<" if goal.strict else "<="
        if goal.denominator is None:
            want = f"target {op} {goal.limit * 1e6:g} µs"
            shown = "n/a" if value is None else f"{value * 1e6:.3f} µs"
        else:
            want = f"target {op} {goal.limit:g}x"
            shown = "n/a" if value is None else f"{value:.3f}x"  # three decimals: 1.304x is a FAIL of <= 1.3x
        if value is None:
            why = result.sqlalchemy_missing or "no measurement"
            out.append(Verdict(goal, "SKIP", f"SKIP {goal.label}: {shown} ({want}; {why})"))
            continue
        ok = value < goal.limit if goal.strict else value <= goal.limit
        status: Status = "PASS" if ok else "FAIL"
        out.append(Verdict(goal, status, f"{status} {goal.label}: aiouow {shown} ({want})"))
    return out


def summary(result: RunResult) -> str:
    """The console report: the table, the targets, and what ran where."""
    table = results_table(result)
    lines = [
        f"{result.target.label}: medians of {result.repeat} repetitions after one warm-up round, {result.rows:,} rows",
        "",
        table.text(),
        "",
        *(v.text for v in verdicts(result)),
    ]
    if result.sqlalchemy_missing:
        lines += ["", f"SQLAlchemy: n/a ({result.sqlalchemy_missing})"]
    return "\n".join(lines)


def chart_panel(result: RunResult) -> ChartPanel:
    """The run's ratios for the chart: each metric's time or size over hand-written code's
    (flush scaling: each system's large-set flush over its own small-set flush)."""
    limits = {g.numerator: g.limit for g in GOALS if g.denominator == g.numerator and g.base == "hand"}
    entries: list[ChartEntry] = []
    for m in result.metrics:
        if m.key in ("flush_small", "flush_big"):
            continue
        r = {k: ratio(result.median(m.key, k), result.median(m.key, "hand")) for k in ("aiouow", "sqlalchemy")}
        entries.append(ChartEntry(CHART_LABELS.get(m.key, m.key), r["aiouow"], r["sqlalchemy"], limits.get(m.key)))
    if {"flush_small", "flush_big"} <= {m.key for m in result.metrics}:
        r = {k: ratio(result.median("flush_big", k), result.median("flush_small", k)) for k in ("aiouow", "sqlalchemy")}
        limit = next((g.limit for g in GOALS if g.numerator == "flush_big"), None)
        entries.append(ChartEntry("flush: large ÷ small\ntracked set (own)", r["aiouow"], r["sqlalchemy"], limit))
    return ChartPanel(DIALECT_TITLES[result.target.dialect], entries)


CHART_LABELS = {
    "insert": "insert",
    "load": "load",
    "update": "update",
    "delete": "delete",
    "get_hit": "identity-map hit",
    "request_loop": "request loop",
    "memory": "memory per object",
}
DIALECT_TITLES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
