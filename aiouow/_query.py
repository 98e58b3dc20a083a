"""Query building: ``select(User).where(...).order_by(...).limit(n).offset(n)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from ._aggregates import Aggregate
from ._aliases import Alias, AliasedColumn
from ._expressions import Column, Compare, Expression, Ordering, columns_in
from ._mapping import Mapper, mapper_of
from ._relations import Relationship
from ._types import INT64_MAX
from .errors import QueryError

E = TypeVar("E")
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")


class Select(Generic[E]):
    """An immutable SELECT of one entity; every method returns a new statement.

    ```python
    stmt = select(User).where(User.active == True, User.name.like("a%")).order_by(User.id.desc()).limit(10)
    users = await session.scalars(stmt)
    ```
    """

    __slots__ = (
        "_distinct",
        "_for_update",
        "_group",
        "_having",
        "_joins",
        "_limit",
        "_loads",
        "_offset",
        "_order",
        "_where",
        "entity",
        "items",
        "mapper",
    )

    def __init__(self, entity: type[Any], items: tuple[Column[Any] | Aggregate, ...] = ()) -> None:
        self.entity = entity
        self.mapper: Mapper = mapper_of(entity)
        #: A selection of columns and aggregates (rows of values), or () for the entity's objects.
        self.items = items
        self._where: tuple[Expression, ...] = ()
        self._order: tuple[Ordering, ...] = ()
        self._limit: int | None = None
        self._offset: int | None = None
        self._for_update = False
        self._distinct = False
        self._group: tuple[Column[Any], ...] = ()
        self._having: tuple[Expression, ...] = ()
        self._loads: tuple[Any, ...] = ()
        #: The joined relationships: each with whether it is an outer join, and the alias its target
        #: table has (`aiouow.aliased`), or None.
        self._joins: tuple[tuple[Relationship, bool, Alias | None], ...] = ()

    def _copy(self) -> Select[E]:
        new: Select[E] = Select.__new__(Select)
        for name in Select.__slots__:
            setattr(new, name, getattr(self, name))
        return new

    def where(self, *conditions: Expression | bool) -> Select[E]:
        """Add conditions, all of which must hold (``AND``)."""
        name = self.mapper.name
        example = f"{name}.{self.mapper.columns[0].name} == value"
        new = self._copy()
        new._where = self._where + self._conditions(
            conditions, lambda cond: f"cannot filter {name} by {cond!r}: expected a condition such as {example}"
        )
        return new

    def _conditions(self, conditions: tuple[Any, ...], refused: Callable[[Any], str]) -> tuple[Expression, ...]:
        """The conditions of a ``where()`` or ``having()``, each checked to be one (else a
        `QueryError` saying ``refused(it)``), over the statement's own entities."""
        for cond in conditions:
            if not isinstance(cond, Expression):
                raise QueryError(refused(cond))
            self._check_columns(cond)
        return conditions

    def order_by(self, *columns: Ordering | Column[Any] | Any) -> Select[E]:
        """Order by columns (ascending) or ``Column.desc()`` / ``Column.asc()`` (aggregates too,
        in a selection of them)."""
        new = self._copy()
        order: list[Ordering] = []
        for item in columns:
            if isinstance(item, (Column, Aggregate)):
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

    def load(self, *paths: Any) -> Select[E]:
        """Load these relationships of the objects the statement returns (see `AsyncSession.load`)."""
        if self.items:
            raise QueryError(f"cannot load relationships from {self!r}: it selects values, not objects")
        new = self._copy()
        new._loads = self._loads + paths
        return new

    @property
    def loads(self) -> tuple[Any, ...]:
        return self._loads

    def distinct(self) -> Select[E]:
        """``SELECT DISTINCT``: each row of values once."""
        new = self._copy()
        new._distinct = True
        return new

    def group_by(self, *columns: Any) -> Select[E]:
        """``GROUP BY`` columns, in a selection of columns and aggregates."""
        if not self.items:
            raise QueryError(f"cannot group a select of {self.mapper.name} objects: select columns and aggregates")
        checked: list[Column[Any]] = []
        for column in columns:
            if not isinstance(column, Column):
                raise QueryError(f"cannot group by {column!r}: expected a column such as {self.mapper.name}.id")
            self._check_column(column)
            checked.append(column)
        new = self._copy()
        new._group = self._group + tuple(checked)
        return new

    def having(self, *conditions: Expression | bool) -> Select[E]:
        """Conditions on the groups (``HAVING``), over aggregates or grouped columns."""
        if not self.items:
            raise QueryError(f"cannot use having() on a select of {self.mapper.name} objects")
        checked = self._conditions(
            conditions,
            lambda cond: f"cannot use {cond!r} in having(): expected a condition such as func.count(...) > 1",
        )
        new = self._copy()
        new._having = self._having + checked
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

    @property
    def keyed_column(self) -> Column[Any] | None:
        """The column of a statement whose only condition is ``key == value`` on the primary
        key, a foreign key or a unique field (what an N+1 loop sends), else None."""
        if len(self._where) != 1 or self.items:
            return None
        cond = self._where[0]
        if not isinstance(cond, Compare) or cond.op != "=" or not isinstance(cond.column, Column):
            return None
        column = cond.column
        if isinstance(cond.value, Column) or not (column.primary_key or column.foreign_key or column.unique):
            return None
        return column

    @property
    def is_distinct(self) -> bool:
        return self._distinct

    @property
    def grouping(self) -> tuple[Column[Any], ...]:
        return self._group

    @property
    def group_conditions(self) -> tuple[Expression, ...]:
        return self._having

    def check_grouping(self) -> None:
        """PostgreSQL's rule, for every dialect: once a selection aggregates or groups, each
        plain column it selects or orders by must be grouped (SQLite would pick any row's value)."""
        if not (self._group or any(isinstance(i, Aggregate) for i in self.items)):
            return
        grouped = set(self._group)
        for item in [*self.items, *(o.column for o in self._order)]:
            if isinstance(item, Column) and item not in grouped:
                raise QueryError(
                    f"cannot select or order by {item!r} in a query that aggregates: group_by({item!r}) "
                    "or aggregate it (func.min, func.max, ...)"
                )

    def _check_columns(self, expr: Expression) -> None:
        for column in columns_in(expr):
            self._check_column(column)

    def _check_column(self, column: Column[Any] | Aggregate) -> None:
        if isinstance(column, AliasedColumn):
            if all(alias is not column.alias for _, _, alias in self._joins):
                raise QueryError(
                    f"cannot query {self.mapper.name} by {column!r}: the statement does not join its alias "
                    f"(join it first: .join({self.mapper.name}.<relationship>, {column.alias.name}))"
                )
            return
        if column.entity is not self.entity and column.entity not in self.joined_entities:
            raise QueryError(
                f"cannot query {self.mapper.name} by {column!r}: the column belongs to {column.entity.__name__}, "
                f"which the statement does not join (join it first: .join({self.mapper.name}.<relationship>))"
            )

    @property
    def joined_entities(self) -> tuple[type, ...]:
        """The entities joined under their own table's name (not through an alias)."""
        return tuple(rel.target for rel, _, alias in self._joins if alias is None)

    @property
    def joins(self) -> tuple[tuple[Relationship, bool, Alias | None], ...]:
        """The joined relationships, in order, each with whether it is an outer join and its alias."""
        return self._joins

    @property
    def joins_many(self) -> bool:
        """Whether a join may repeat a row of the selected entity (it goes to a collection)."""
        return any(rel.collection for rel, _, _ in self._joins)

    def check_sources(self) -> None:
        """Every selected column belongs to the selected entity or to a joined one."""
        for item in self.items:
            self._check_column(item)

    def join(self, relationship: Any, alias: Any = None) -> Select[E]:
        """``JOIN`` the target of a relationship (of the selected entity, or of one joined before),
        so that conditions, ordering and selected columns may use its fields. ``alias``
        (`aiouow.aliased`): the target's table under that name, for a target already in the
        statement (``select(Node).join(Node.parent, parent)``); its fields are the alias's."""
        return self._join(relationship, alias, outer=False)

    def outerjoin(self, relationship: Any, alias: Any = None) -> Select[E]:
        """``LEFT OUTER JOIN``: as `join`, keeping rows that have no related row."""
        return self._join(relationship, alias, outer=True)

    def _join(self, rel: Any, alias: Any, *, outer: bool) -> Select[E]:
        if not isinstance(rel, Relationship):
            raise QueryError(f"cannot join {rel!r}: expected a relationship such as Hero.team")
        rel.resolve()
        if rel.owner is not self.entity and rel.owner not in self.joined_entities:
            raise QueryError(f"cannot join {rel!r}: {rel.owner.__name__} is not selected or joined before it")
        if alias is not None:
            if not isinstance(alias, Alias) or alias.entity is not rel.target:
                raise QueryError(
                    f"cannot join {rel!r} as {alias!r}: expected an alias of {rel.target.__name__} "
                    f"(aiouow.aliased({rel.target.__name__}))"
                )
            if any(a is alias for _, _, a in self._joins):
                raise QueryError(f"cannot join {rel!r} as {alias.name}: the statement joins that alias already")
        elif rel.target is self.entity or rel.target in self.joined_entities:
            raise QueryError(
                f"cannot join {rel!r}: {rel.target.__name__} is in the statement already; join it under an "
                f"alias: .join({rel!r}, aiouow.aliased({rel.target.__name__}))"
            )
        new = self._copy()
        new._joins = (*self._joins, (rel, outer, alias))
        return new

    def __repr__(self) -> str:
        if self.items:
            return f"<select {', '.join(map(repr, self.items))}>"
        return f"<select {self.mapper.name}>"


def _check_count(what: str, n: object) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise QueryError(f"cannot set {what}: expected a non-negative int, got {n!r}")
    if n > INT64_MAX:
        raise QueryError(f"cannot set {what}: {n} is larger than the largest the databases take (2**63 - 1)")


@overload
def select(entity: type[E], /) -> Select[E]: ...  # type: ignore[overload-overlap]
@overload
def select(item1: T1, /) -> Select[tuple[T1]]: ...
@overload
def select(item1: T1, item2: T2, /) -> Select[tuple[T1, T2]]: ...
@overload
def select(item1: T1, item2: T2, item3: T3, /) -> Select[tuple[T1, T2, T3]]: ...
@overload
def select(item1: T1, item2: T2, item3: T3, item4: T4, /) -> Select[tuple[T1, T2, T3, T4]]: ...
@overload
def select(item1: Any, item2: Any, item3: Any, item4: Any, item5: Any, /, *items: Any) -> Select[tuple[Any, ...]]: ...
def select(*items: Any) -> Select[Any]:
    """Start a SELECT: of an entity's objects (``select(User)``, for `AsyncSession.scalars`), or of
    columns and aggregates of one entity (``select(User.name, func.count(User.id))``, rows of
    values for `AsyncSession.rows`)."""
    if len(items) == 1 and isinstance(items[0], type):
        return Select(items[0])
    if not items:
        raise QueryError("cannot select nothing: pass an entity, or columns and aggregates")
    for item in items:
        if not isinstance(item, (Column, Aggregate)):
            raise QueryError(
                f"cannot select {item!r}: expected an entity class, or columns (User.name) and aggregates (func.count)"
            )
    # The first item's entity is the one selected FROM; the others must be joined (checked when it runs).
    return Select(items[0].entity, tuple(items))
