"""Table aliases: ``aiouow.aliased(Node)``, a second name for an entity's table in one statement.

A join of an entity to itself (a tree's parent, a manager who is an employee) names the same
table twice; the second one needs a name of its own:

    parent = aiouow.aliased(Node, "parent")
    select(Node).join(Node.parent, parent).where(parent.label == "root")

``parent.label`` is an `AliasedColumn`: the field, qualified by the alias in the SQL
(``"parent"."label"``) instead of by the table.
"""

from __future__ import annotations

import itertools
from typing import Any, TypeVar

from ._expressions import Column
from ._mapping import mapper_of
from ._types import MAX_IDENTIFIER
from .errors import QueryError

E = TypeVar("E")

_numbers = itertools.count(1)


class AliasedColumn(Column[Any]):
    """A column of an `Alias`: the SQL names it by the alias."""

    __slots__ = ("alias",)

    alias: Alias

    def __repr__(self) -> str:
        return f"{self.alias.name}.{self.name}"


class Alias:
    """A second name for an entity's table in a statement (make one with `aliased`)."""

    def __init__(self, entity: type, name: str | None = None) -> None:
        mapper = mapper_of(entity)
        if name is None:
            name = f"{mapper.table}_{next(_numbers)}"
        elif not isinstance(name, str) or not name.isidentifier() or len(name) > MAX_IDENTIFIER:
            raise QueryError(
                f"cannot alias {entity.__name__} as {name!r}: an alias is a plain name (letters, digits, "
                f"underscores, not starting with a digit, at most {MAX_IDENTIFIER} characters)"
            )
        self.entity = entity
        self.name = name
        self._columns: dict[str, AliasedColumn] = {}
        for column in mapper.columns:
            copy = AliasedColumn.__new__(AliasedColumn)
            for slot in Column.__slots__:
                if hasattr(column, slot):  # (a slot a column never needed stays unset on the copy too)
                    object.__setattr__(copy, slot, getattr(column, slot))
            copy.alias = self
            self._columns[column.name] = copy

    def __getattr__(self, name: str) -> AliasedColumn:
        columns: dict[str, AliasedColumn] = self.__dict__.get("_columns", {})
        if name in columns:
            return columns[name]
        entity = self.__dict__.get("entity")
        if entity is not None and name in mapper_of(entity).relationships:
            raise QueryError(
                f"cannot use {self.name}.{name}: joins and EXISTS conditions start at the selected entity or one "
                f"joined without an alias (join {entity.__name__}.{name} from there)"
            )
        owner = entity.__name__ if entity is not None else "the alias"
        raise AttributeError(f"{owner} has no field {name!r} (alias {self.__dict__.get('name')!r})")

    def __repr__(self) -> str:
        return f"aliased({self.entity.__name__}, {self.name!r})"


def aliased(entity: type[E], name: str | None = None) -> type[E]:
    """A second name for ``entity``'s table, for a join of an entity to itself:
    ``parent = aliased(Node, "parent")``, then ``select(Node).join(Node.parent, parent)`` and
    conditions, ordering and selections on ``parent.label``. Without ``name``, one is made up.

    To type checkers it is the entity class (so that ``parent.label`` has the field's type, as
    ``Node.label`` has); at run time it is an `Alias`.
    """
    alias: Any = Alias(entity, name)
    return alias  # type: ignore[no-any-return]
