"""Query shortcuts of a session (``get_one``, ``all``, ``filter``, ``first``, ``one``), written
against its core reads (``get``, ``scalars``). `AsyncSession` inherits them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._mapping import mapper_of
from ._query import Select, select
from .errors import MultipleResultsError, NotFoundError

E = TypeVar("E")


class QueryShortcuts:
    """Reads that `AsyncSession` builds on `get` and `scalars`."""

    __slots__ = ()

    if TYPE_CHECKING:  # what they build on, defined by AsyncSession

        async def get(self, entity: type[E], pk: Any, *, for_update: bool = False) -> E | None: ...
        async def scalars(self, stmt: Select[E]) -> list[E]: ...

    async def get_one(self, entity: type[E], pk: Any, *, for_update: bool = False) -> E:
        """Like `get`, but raises `NotFoundError` when there is no such row."""
        obj = await self.get(entity, pk, for_update=for_update)
        if obj is None:
            raise NotFoundError(f"cannot get {entity.__name__}: no row with primary key {pk!r}")
        return obj

    @overload
    async def all(self, entity: type[E]) -> list[E]: ...
    @overload
    async def all(self, entity: Select[E]) -> list[E]: ...
    async def all(self, entity: type[E] | Select[E]) -> list[E]:
        """Every row of an entity's table, or every object a statement returns (``scalars``)."""
        return await self.scalars(entity if isinstance(entity, Select) else select(entity))

    async def filter(self, entity: type[E], **equals: Any) -> list[E]:
        """Rows whose fields equal the given values: ``await s.filter(User, name="alice")``."""
        mapper = mapper_of(entity)
        stmt = select(entity)
        conds = [mapper.column(name, purpose=f"filter {mapper.name}") == value for name, value in equals.items()]
        return await self.scalars(stmt.where(*conds) if conds else stmt)

    async def first(self, stmt: Select[E]) -> E | None:
        """The first object of a statement's result, or None."""
        if stmt.row_limit is None:
            stmt = stmt.limit(1)
        objs = await self.scalars(stmt)
        return objs[0] if objs else None

    async def one(self, stmt: Select[E]) -> E:
        """The only object of a statement's result: `NotFoundError` for none,
        `MultipleResultsError` for more than one."""
        objs = await self.scalars(stmt if stmt.row_limit is not None and stmt.row_limit < 2 else stmt.limit(2))
        if not objs:
            raise NotFoundError(f"cannot get one {stmt.mapper.name}: the query matched no row")
        if len(objs) > 1:
            raise MultipleResultsError(f"cannot get one {stmt.mapper.name}: the query matched more than one row")
        return objs[0]
