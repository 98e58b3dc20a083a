"""``python -m benchmarks --db sqlite|postgresql://...``: the suite, as a table of medians and targets."""

from __future__ import annotations

import argparse
import asyncio
import sys

from .chart import draw
from .database import parse_target
from .machine import command_line
from .page import chart_panels, suite_section, write_page
from .report import chart_panel, summary
from .runner import CheckError, run_suite
from .workloads import WORKLOADS, build_metrics


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Hand-written driver code, aiouow and SQLAlchemy, side by side, on one database.",
    )
    p.add_argument("--db", default="sqlite", help="sqlite (a temporary file), sqlite:///path, or postgresql://...")
    p.add_argument("--repeat", type=int, default=5, help="recorded repetitions after the warm-up round (default 5)")
    p.add_argument("--rows", type=int, default=10_000, help="rows of the table (default 10000)")
    p.add_argument("--only", default="", help=f"comma-separated workloads among: {', '.join(WORKLOADS)}")
    p.add_argument("--out", default=None, help="write (merge) the Markdown report here, e.g. docs/benchmarks.md")
    p.add_argument(
        "--durable-commits",
        action="store_true",
        help="PostgreSQL: keep the server's synchronous_commit (default: off for every system's connections)",
    )
    p.add_argument("--chart", default=None, help="write the ratio chart here (PNG), e.g. docs/benchmarks.png")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.rows < 100:
        p.error("--rows must be at least 100")
    only = {w.strip() for w in args.only.split(",") if w.strip()}
    unknown = sorted(only - set(WORKLOADS))
    if unknown:
        p.error(f"unknown workload(s) {', '.join(unknown)}; choose among {', '.join(WORKLOADS)}")
    args.only = frozenset(only) if only else None
    try:
        args.target = parse_target(args.db, durable=args.durable_commits)
    except ValueError as exc:
        p.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    target = args.target
    command = command_line("benchmarks")
    metrics = build_metrics(args.rows, args.only)
    try:
        result = asyncio.run(run_suite(target, args.rows, args.repeat, metrics))
    except CheckError as exc:
        print(f"benchmark check failed: {exc}", file=sys.stderr)
        return 2
    finally:
        target.cleanup()
    print(summary(result))
    panel = chart_panel(result)
    if args.out:
        write_page(args.out, target.dialect, suite_section(result, panel, command), args.chart)
        print(f"\nwrote {args.out}")
    if args.chart:
        panels = chart_panels(args.out) if args.out else [panel]
        draw(panels or [panel], args.chart)
        print(f"wrote {args.chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
