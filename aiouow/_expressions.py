"""Column expressions: what ``User.name == "alice"`` builds, and how conditions combine.

An entity's class attributes are `Column` objects. Comparing one builds an expression
node; nodes combine with ``&``, ``|`` and ``~``. A dialect compiles the tree to SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._types import Kind, text_problem
from .errors import QueryError

if TYPE_CHECKING:
    from ._aggregates import Aggregate
    from ._types import ColumnType

T = TypeVar("T")


class Expression:
    """A boolean condition over the columns of one entity."""

    __slots__ = ()

    def __and__(self, other: Expression | bool) -> Expression:
        return And((self, _expr(other)))

    def __rand__(self, other: Expression | bool) -> Expression:
        return And((_expr(other), self))

    def __or__(self, other: Expression | bool) -> Expression:
        return Or((self, _expr(other)))

    def __ror__(self, other: Expression | bool) -> Expression:
        return Or((_expr(other), self))

    def __invert__(self) -> Expression:
        return Not(self)

    def __bool__(self) -> bool:
        raise QueryError(
            "cannot use a column expression as a bool: combine conditions with &, | and ~ "
            "(not `and`, `or`, `not`), and compare with None using .is_(None)"
        )


def _expr(value: object) -> Expression:
    if isinstance(value, Expression):
        return value
    raise QueryError(f"cannot combine a condition with {value!r}: expected a column expression such as User.id == 1")


class Compare(Expression):
    """``column <op> value`` where value is a Python value or another column (``column`` may be
    an aggregate, in ``having()``)."""

    __slots__ = ("column", "op", "value")

    def __init__(self, column: Column[Any] | Aggregate, op: str, value: Any) -> None:
        self.column = column
        self.op = op
        self.value = value

    def __repr__(self) -> str:
        return f"<{self.column!r} {self.op} {self.value!r}>"


class InList(Expression):
    """``column IN (values)`` (or NOT IN)."""

    __slots__ = ("column", "negate", "values")

    def __init__(self, column: Column[Any], values: tuple[Any, ...], negate: bool) -> None:
        self.column = column
        self.values = values
        self.negate = negate


class IsNull(Expression):
    """``column IS NULL`` (or IS NOT NULL)."""

    __slots__ = ("column", "negate")

    def __init__(self, column: Column[Any], negate: bool) -> None:
        self.column = column
        self.negate = negate


class And(Expression):
    """All of the parts hold."""

    __slots__ = ("parts",)

    def __init__(self, parts: tuple[Expression, ...]) -> None:
        self.parts = parts


class Or(Expression):
    """Any of the parts holds."""

    __slots__ = ("parts",)

    def __init__(self, parts: tuple[Expression, ...]) -> None:
        self.parts = parts


class Not(Expression):
    """The part does not hold."""

    __slots__ = ("part",)

    def __init__(self, part: Expression) -> None:
        self.part = part


class Exists(Expression):
    """``EXISTS`` a related row (``Hero.team.has(...)``, ``Team.heroes.any(...)``), where the
    related row meets ``condition`` (any related row when None)."""

    __slots__ = ("condition", "relationship")

    def __init__(self, relationship: Any, condition: Expression | None) -> None:
        self.relationship = relationship
        self.condition = condition

    def __repr__(self) -> str:
        what = "has" if not self.relationship.collection else "any"
        return f"<{self.relationship!r}.{what}({self.condition!r})>"


class Ordering:
    """A column (or an aggregate) with a direction, for ``order_by``."""

    __slots__ = ("column", "descending")

    def __init__(self, column: Column[Any] | Aggregate, descending: bool) -> None:
        self.column = column
        self.descending = descending


class Column(Generic[T]):
    """A mapped field, reachable as a class attribute of its entity (``User.name``).

    It carries the field's mapping (column name, type, constraints) and builds
    expressions: ``User.age >= 18``, ``User.id.in_([1, 2])``, ``User.note.is_(None)``,
    ``User.name.like("a%")``, ``User.id.desc()``.
    """

    __slots__ = (
        "column_name",
        "ctype",
        "default",
        "default_factory",
        "entity",
        "foreign_key",
        "index",
        "indexed",
        "init",
        "json",
        "name",
        "on_delete",
        "position",
        "primary_key",
        "unique",
        "version",
    )

    name: str
    column_name: str
    ctype: ColumnType
    entity: type
    position: int
    primary_key: bool
    unique: bool
    indexed: bool
    foreign_key: str | None
    on_delete: str | None  # "cascade", "set null", "restrict" or None (a foreign key's ON DELETE)
    json: bool
    version: bool
    default: Any
    default_factory: Any
    init: bool | None  # None until the entity's mapper decides

    def __repr__(self) -> str:
        return f"{self.entity.__name__}.{self.name}"

    # -- comparisons -----------------------------------------------------------------------
    def __eq__(self, other: object) -> Expression:  # type: ignore[override]
        if other is None:
            return IsNull(self, negate=False)
        return Compare(self, "=", other)

    def __ne__(self, other: object) -> Expression:  # type: ignore[override]
        if other is None:
            return IsNull(self, negate=True)
        return Compare(self, "<>", other)

    def __lt__(self, other: Any) -> Expression:
        return Compare(self, "<", _not_none(self, other, "<"))

    def __le__(self, other: Any) -> Expression:
        return Compare(self, "<=", _not_none(self, other, "<="))

    def __gt__(self, other: Any) -> Expression:
        return Compare(self, ">", _not_none(self, other, ">"))

    def __ge__(self, other: Any) -> Expression:
        return Compare(self, ">=", _not_none(self, other, ">="))

    __hash__ = object.__hash__

    def in_(self, values: Iterable[Any]) -> Expression:
        """``column IN (values)``; an empty list matches nothing."""
        if isinstance(values, (str, bytes)):
            raise QueryError(
                f"cannot build {self!r}.in_(): expected a collection of values, got {type(values).__name__}"
            )
        return InList(self, tuple(values), negate=False)

    def not_in(self, values: Iterable[Any]) -> Expression:
        """``column NOT IN (values)``; an empty list matches everything."""
        if isinstance(values, (str, bytes)):
            raise QueryError(
                f"cannot build {self!r}.not_in(): expected a collection of values, got {type(values).__name__}"
            )
        return InList(self, tuple(values), negate=True)

    def is_(self, value: None) -> Expression:
        """``column IS NULL``."""
        if value is not None:
            raise QueryError(f"cannot build {self!r}.is_({value!r}): only .is_(None) is supported; use ==")
        return IsNull(self, negate=False)

    def is_not(self, value: None) -> Expression:
        """``column IS NOT NULL``."""
        if value is not None:
            raise QueryError(f"cannot build {self!r}.is_not({value!r}): only .is_not(None) is supported; use !=")
        return IsNull(self, negate=True)

    def like(self, pattern: str) -> Expression:
        """``column LIKE pattern`` (``%`` any run, ``_`` one character)."""
        if not isinstance(pattern, str):
            raise QueryError(f"cannot build {self!r}.like(): the pattern must be a str, got {type(pattern).__name__}")
        kind = self.ctype.kind
        if not (kind is Kind.STR or (kind is Kind.ENUM and not self.ctype.enum_values_are_int)):
            # PostgreSQL has no LIKE for numbers, times, UUIDs or JSON (SQLite would compare their text).
            raise QueryError(
                f"cannot build {self!r}.like(): LIKE applies to str fields, "
                f"and {self.name!r} holds {self.ctype.describe()}"
            )
        problem = text_problem(pattern)
        if problem is not None:
            raise QueryError(f"cannot build {self!r}.like(): the pattern {problem}")
        return Compare(self, "LIKE", pattern)

    def asc(self) -> Ordering:
        """Ascending order on this column."""
        return Ordering(self, descending=False)

    def desc(self) -> Ordering:
        """Descending order on this column."""
        return Ordering(self, descending=True)


def _not_none(column: Column[Any], value: Any, op: str) -> Any:
    if value is None:
        raise QueryError(f"cannot compare {column!r} {op} None: use .is_(None) / .is_not(None)")
    return value


def col(attribute: T) -> Column[T]:
    """Type ``User.id`` as the column it is at run time, for strict type checkers.

    ``aiouow.col(User.id).in_([1, 2])`` is ``User.id.in_([1, 2])`` without a type error.
    """
    if not isinstance(attribute, Column):
        raise QueryError(f"cannot use {attribute!r} as a column: pass a class attribute such as User.id")
    return attribute


def columns_in(expr: Expression) -> Iterator[Column[Any] | Aggregate]:
    """The columns a condition compares (an EXISTS: those of the relationship's own side)."""
    if isinstance(expr, (Compare, InList, IsNull)):
        yield expr.column
        if isinstance(expr, Compare) and isinstance(expr.value, Column):
            yield expr.value
    elif isinstance(expr, (And, Or)):
        for part in expr.parts:
            yield from columns_in(part)
    elif isinstance(expr, Not):
        yield from columns_in(expr.part)
    elif isinstance(expr, Exists):
        yield expr.relationship.local
