"""Query shortcuts of a session (``get_one``, ``all``, ``filter``, ``first``, ``one``) and the reads
of values (``rows``, ``scalar``, ``count``, ``exists``), written against its core reads (``get``,
``scalars``, ``_read``). `AsyncSession` inherits them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple, cast, overload

from ._mapping import mapper_of
from ._query import Select, select
from .errors import MultipleResultsError, NotFoundError, QueryError, with_details

if TYPE_CHECKING:
    from .dialects._base import Dialect, Row

E = TypeVar("E")
T = TypeVar("T")
R = TypeVar("R")
Ts = TypeVarTuple("Ts")


class QueryShortcuts:
    """Reads that `AsyncSession` builds on `get`, `scalars` and `_read`."""

    __slots__ = ()

    if TYPE_CHECKING:  # what they build on, defined by AsyncSession

        async def get(self, entity: type[E], pk: Any, *, for_update: bool = False) -> E | None: ...
        async def scalars(self, stmt: Select[E]) -> list[E]: ...
        async def _read(self, op: str, sql: str, params: Sequence[Any], *, write: bool) -> list[Row]: ...

        _dialect: Dialect

    async def get_one(self, entity: type[E], pk: Any, *, for_update: bool = False) -> E:
        """Like `get`, but raises `NotFoundError` when there is no such row."""
        obj = await self.get(entity, pk, for_update=for_update)
        if obj is None:
            raise with_details(
                NotFoundError(f"cannot get {entity.__name__}: no row with primary key {pk!r}"), entity=entity.__name__
            )
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
            raise with_details(
                NotFoundError(f"cannot get one {stmt.mapper.name}: the query matched no row"), entity=stmt.mapper.name
            )
        if len(objs) > 1:
            raise MultipleResultsError(f"cannot get one {stmt.mapper.name}: the query matched more than one row")
        return objs[0]

    async def rows(self, stmt: Select[R]) -> list[R]:
        """Run a selection of columns and aggregates (``select(User.name, func.count(User.id))``);
        each row is a tuple of Python values, converted as the fields' values are."""
        sql, params, converters = self._dialect.compile_rows(checked(stmt, "read rows of"))
        raw = await self._read("query", sql, params, write=stmt.locking)
        values = [
            tuple(v if v is None or conv is None else conv(v) for v, conv in zip(row, converters, strict=True))
            for row in raw
        ]
        return cast("list[R]", values)

    async def scalar(self, stmt: Select[tuple[T, *Ts]]) -> T | None:
        """The first value of the first row of a selection of values (None when there is no row)."""
        found = await self.rows(stmt if stmt.row_limit is not None else stmt.limit(1))
        return found[0][0] if found else None

    async def count(self, stmt: Select[Any]) -> int:
        """How many rows (objects, or rows of values) a statement returns."""
        sql, params = self._dialect.compile_count(checked(stmt, "count"))
        raw = await self._read("count", sql, params, write=False)
        return int(raw[0][0])

    async def exists(self, stmt: Select[Any]) -> bool:
        """Whether a statement returns any row."""
        sql, params = self._dialect.compile_exists(checked(stmt, "check"))
        raw = await self._read("exists", sql, params, write=False)
        return bool(raw[0][0])


def checked(stmt: Any, what: str) -> Select[Any]:
    """The statement, if ``aiouow.select()`` made it (else `QueryError`)."""
    if not isinstance(stmt, Select):
        raise QueryError(f"cannot {what} {stmt!r}: expected a statement made by aiouow.select()")
    return stmt
