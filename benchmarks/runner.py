"""The interleaved run: every repetition runs each metric on every system in turn (A, B, C, A, B, C, ...),
each on a fresh table, after one warm-up round that is not recorded; the checks after each run
make sure every system did the same, correct work."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from .aiouow_system import AiouowSystem
from .database import Admin, Target
from .handwritten_pg import HandwrittenPostgres
from .handwritten_sqlite import HandwrittenSQLite
from .machine import Environment, describe_environment
from .system import Sample, System, median
from .workloads import Metric


class CheckError(AssertionError):
    """A system did not do the work correctly, or not the same work as the others."""


@dataclass
class RunResult:
    """Everything a report needs from one run."""

    target: Target
    rows: int
    repeat: int
    metrics: list[Metric]
    systems: list[tuple[str, str]]  # (key, title); SQLAlchemy is listed even when missing
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    statements: dict[str, dict[str, int | None]] = field(default_factory=dict)
    sqlalchemy_missing: str | None = None
    environment: Environment | None = None

    def median(self, metric: str, system: str) -> float | None:
        values = self.samples.get(metric, {}).get(system)
        return median(values) if values else None


class Progress:
    """A tqdm bar on stderr (a plain counter there when tqdm is not installed)."""

    def __init__(self, total: int, desc: str) -> None:
        self._bar: Any = None
        self._done = 0
        self._total = total
        try:
            from tqdm import tqdm
        except ImportError:
            print(f"{desc}: {total} runs (install tqdm for a progress bar)", file=sys.stderr)
        else:
            self._bar = tqdm(total=total, desc=desc, unit="run", file=sys.stderr, dynamic_ncols=True)

    def step(self, what: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(what, refresh=False)

    def advance(self) -> None:
        self._done += 1
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def make_systems(target: Target) -> tuple[list[System], str | None]:
    """Hand-written, aiouow and (when importable) SQLAlchemy, in that order; and why SQLAlchemy is missing."""
    hand: System = HandwrittenPostgres(target) if target.dialect == "postgresql" else HandwrittenSQLite(target)
    systems: list[System] = [hand, AiouowSystem(target)]
    try:
        from .sqlalchemy_system import SQLAlchemySystem
    except ImportError as exc:
        return systems, f"{type(exc).__name__}: {exc}"
    systems.append(SQLAlchemySystem(target))
    return systems, None


async def _check(admin: Admin, metric: Metric, system: System, sample: Sample, expected_rows: int) -> None:
    who = f"{system.title}, {metric.label}"
    if metric.check in ("insert", "load"):
        names = await admin.names()
        seen = sample.seen or []
        if len(seen) != expected_rows or len({k for k, _ in seen}) != expected_rows:
            raise CheckError(f"{who}: {len(seen)} objects with keys, expected {expected_rows} distinct")
        wrong = [(k, name) for k, name in seen if names.get(k) != name]
        if wrong:
            raise CheckError(f"{who}: objects hold keys of other rows, e.g. {wrong[:3]}")


async def run_suite(target: Target, rows: int, repeat: int, metrics: list[Metric]) -> RunResult:
    """Run ``metrics`` on every system: one warm-up round, then ``repeat`` recorded rounds."""
    systems, missing = make_systems(target)
    titles = [(s.key, s.title) for s in systems]
    if missing is not None:
        titles.append(("sqlalchemy", "SQLAlchemy"))
    result = RunResult(target, rows, repeat, metrics, titles, sqlalchemy_missing=missing)
    admin = await Admin.open(target)
    opened: list[System] = []
    progress = Progress((repeat + 1) * len(metrics) * len(systems), f"{target.dialect} benchmarks")
    try:
        for system in systems:
            await system.open()
            opened.append(system)
        result.environment = describe_environment(target.dialect, await admin.server_version())
        for round_ in range(repeat + 1):
            for metric in metrics:
                digests: dict[str, str] = {}
                for system in systems:
                    progress.step(f"{'warm-up' if round_ == 0 else f'round {round_}'}: {metric.key}, {system.key}")
                    await admin.reset(metric.seed)
                    sample = await metric.run(system)
                    expected = rows if metric.check == "insert" else metric.seed
                    await _check(admin, metric, system, sample, expected)
                    if metric.check == "state":
                        digests[system.title] = await admin.digest()
                    result.statements.setdefault(metric.key, {})[system.key] = sample.statements
                    if round_ > 0:
                        result.samples.setdefault(metric.key, {}).setdefault(system.key, []).append(sample.value)
                    progress.advance()
                if len(set(digests.values())) > 1:
                    raise CheckError(f"{metric.label}: the systems left different tables: {digests}")
    finally:
        progress.close()
        try:
            for system in opened:
                await system.close()
            await admin.drop()
        finally:
            await admin.close()
    return result
