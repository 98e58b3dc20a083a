"""The aiouow benchmark suite: hand-written driver code, aiouow and SQLAlchemy side by side.

Run ``python -m benchmarks --db sqlite`` or ``python -m benchmarks --db postgresql://...``
(see ``benchmarks/README.md``), and ``python -m benchmarks.pg_strategies --db postgresql://...``
for the comparison of PostgreSQL write strategies that aiouow's flush is built on.
"""
