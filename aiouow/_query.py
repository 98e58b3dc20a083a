"""Query building: ``select(User).where(...).order_by(...).limit(n).offset(n)``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from ._expressions import And, Column, Compare, Expression, InList, IsNull, Not, Or, Ordering
from ._mapping import Mapper, mapper_of
from ._types import INT64_MAX
from .errors import QueryError

E = TypeVar("E")


class Select(Generic[E]):
    """An immutable SELECT of one entity; every method returns a new statement.

    ```python
    stmt = select(User).where(User.active == True, User.name.like("a%")).order_by(User.id.desc()).limit(10)
    users = await session.scalars(stmt)
    ```
    """

    __slots__ = ("_for_update", "_limit", "_offset", "_order", "_where", "entity", "mapper")

    def __init__(self, entity: type[E]) -> None:
        self.entity = entity
        self.mapper: Mapper = mapper_of(entity)
        self._where: tuple[Expression, ...] = ()
        self._order: tuple[Ordering, ...] = ()
        self._limit: int | None = None
        self._offset: int | None = None
        self._for_update = False

    def _copy(self) -> Select[E]:
        new: Select[E] = Select.__new__(Select)
        new.entity = self.entity
        new.mapper = self.mapper
        new._where = self._where
        new._order = self._order
        new._limit = self._limit
        new._offset = self._offset
        new._for_update = self._for_update
        return new

    def where(self, *conditions: Expression | bool) -> Select[E]:
        """Add conditions, all of which must hold (``AND``)."""
        new = self._copy()
        checked: list[Expression] = []
        for cond in conditions:
            if not isinstance(cond, Expression):
                raise QueryError(
                    f"cannot filter {self.mapper.name} by {cond!r}: expected a condition such as "
                    f"{self.mapper.name}.{self.mapper.columns[0].name} == value"
                )
            self._check_columns(cond)
            checked.append(cond)
        new._where = self._where + tuple(checked)
        return new

    def order_by(self, *columns: Ordering | Column[Any] | Any) -> Select[E]:
        """Order by columns (ascending) or ``Column.desc()`` / ``Column.asc()``."""
        new = self._copy()
        order: list[Ordering] = []
        for item in columns:
            if isinstance(item, Column):
                item = item.asc()
            if not isinstance(item, Ordering):
                raise QueryError(f"cannot order {self.mapper.name} by {item!r}: expected a column or column.desc()")
            self._check_column(item.column)
            order.append(item)
        new._order = self._order + tuple(order)
        return new

    def limit(self, n: int) -> Select[E]:
        """Return at most ``n`` rows."""
        _check_count("limit", n)
        new = self._copy()
        new._limit = n
        return new

    def offset(self, n: int) -> Select[E]:
        """Skip the first ``n`` rows."""
        _check_count("offset", n)
        new = self._copy()
        new._offset = n
        return new

    def for_update(self) -> Select[E]:
        """Lock the selected rows until the transaction ends (``FOR UPDATE``; on SQLite the write lock)."""
        new = self._copy()
        new._for_update = True
        return new

    @property
    def conditions(self) -> tuple[Expression, ...]:
        return self._where

    @property
    def ordering(self) -> tuple[Ordering, ...]:
        return self._order

    @property
    def row_limit(self) -> int | None:
        return self._limit

    @property
    def row_offset(self) -> int | None:
        return self._offset

    @property
    def locking(self) -> bool:
        return self._for_update

    def _check_columns(self, expr: Expression) -> None:
        for column in _columns_in(expr):
            self._check_column(column)

    def _check_column(self, column: Column[Any]) -> None:
        if column.entity is not self.entity:
            raise QueryError(
                f"cannot query {self.mapper.name} by {column!r}: the column belongs to {column.entity.__name__}"
            )

    def __repr__(self) -> str:
        return f"<select {self.mapper.name}>"


def _columns_in(expr: Expression) -> Iterator[Column[Any]]:
    if isinstance(expr, (Compare, InList, IsNull)):
        yield expr.column
        if isinstance(expr, Compare) and isinstance(expr.value, Column):
            yield expr.value
    elif isinstance(expr, (And, Or)):
        for part in expr.parts:
            yield from _columns_in(part)
    elif isinstance(expr, Not):
        yield from _columns_in(expr.part)


def _check_count(what: str, n: object) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise QueryError(f"cannot set {what}: expected a non-negative int, got {n!r}")
    if n > INT64_MAX:
        raise QueryError(f"cannot set {what}: {n} is larger than the largest the databases take (2**63 - 1)")


def select(entity: type[E]) -> Select[E]:
    """Start a SELECT of ``entity``."""
    return Select(entity)
