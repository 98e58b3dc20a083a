"""Queries: select().where().order_by().limit().offset(), scalars/first/one/all/filter/stream, raw SQL."""

from __future__ import annotations

import pytest

import aiouow
from aiouow import AsyncSession, col, select

from .models import Order, Tag, User


@pytest.fixture
async def people(pool: aiouow.Pool) -> aiouow.Pool:
    async with AsyncSession(pool) as s:
        for i, name in enumerate(["alice", "bob", "carol", "dave", "anna"]):
            s.add(User(name=name, email=f"{name}@x", active=i % 2 == 0, profile={"i": i} if i < 2 else None))
        await s.commit()
    return pool


async def names(s: AsyncSession, stmt: aiouow.Select[User]) -> list[str]:
    return [u.name for u in await s.scalars(stmt)]


class TestSelect:
    async def test_where_order_limit_offset(self, people: aiouow.Pool) -> None:
        """Conditions, ordering, limit and offset compose."""
        async with AsyncSession(people) as s:
            stmt = select(User).where(User.name.like("a%")).order_by(User.name)
            assert await names(s, stmt) == ["alice", "anna"]
            assert await names(s, select(User).order_by(User.id.desc()).limit(2)) == ["anna", "dave"]
            assert await names(s, select(User).order_by(User.id).offset(3)) == ["dave", "anna"]
            assert await names(s, select(User).order_by(User.id).limit(1).offset(1)) == ["bob"]

    async def test_boolean_combinations(self, people: aiouow.Pool) -> None:
        """&, | and ~ combine conditions."""
        async with AsyncSession(people) as s:
            both = select(User).where((User.active == True) & (User.name != "alice")).order_by(User.id)  # noqa: E712
            assert await names(s, both) == ["carol", "anna"]
            either = select(User).where((User.name == "bob") | (User.name == "dave")).order_by(User.id)
            assert await names(s, either) == ["bob", "dave"]
            negated = select(User).where(~(User.name.like("%a%"))).order_by(User.id)
            assert await names(s, negated) == ["bob"]

    async def test_in_not_in_and_null(self, people: aiouow.Pool) -> None:
        """in_, not_in (empty lists too) and is_/is_not None."""
        async with AsyncSession(people) as s:
            assert await names(s, select(User).where(col(User.id).in_([1, 3])).order_by(User.id)) == ["alice", "carol"]
            assert await names(s, select(User).where(col(User.id).in_([]))) == []
            assert len(await s.scalars(select(User).where(col(User.id).not_in([])))) == 5
            assert await names(s, select(User).where(col(User.id).not_in([1, 2, 3, 4])).order_by(User.id)) == ["anna"]
            assert len(await s.scalars(select(User).where(col(User.profile).is_(None)))) == 3
            assert len(await s.scalars(select(User).where(col(User.profile).is_not(None)))) == 2
            assert len(await s.scalars(select(User).where(User.profile == None))) == 3  # noqa: E711
            comparisons = select(User).where(User.id >= 2, User.id < 4, User.id <= 3, User.id > 1)
            assert await names(s, comparisons.order_by(User.id)) == ["bob", "carol"]

    async def test_first_one_all_filter(self, people: aiouow.Pool) -> None:
        """first() returns the first or None; one() insists on exactly one; filter(**equals)."""
        async with AsyncSession(people) as s:
            first = await s.first(select(User).order_by(User.name.desc()))
            assert first is not None and first.name == "dave"
            assert await s.first(select(User).where(User.name == "zed")) is None
            assert (await s.one(select(User).where(User.name == "bob"))).email == "bob@x"
            with pytest.raises(aiouow.NotFoundError, match="cannot get one User: the query matched no row"):
                await s.one(select(User).where(User.name == "zed"))
            with pytest.raises(aiouow.MultipleResultsError, match="more than one row"):
                await s.one(select(User))
            assert len(await s.all(User)) == 5
            assert [u.name for u in await s.filter(User, active=True, name="carol")] == ["carol"]
            assert len(await s.filter(User)) == 5

    async def test_filter_unknown_field_names_the_fields(self, session: AsyncSession) -> None:
        """filter() with an unknown field raises QueryError naming the entity and its fields."""
        with pytest.raises(aiouow.QueryError, match=r"cannot filter User: User has no field 'nmae'.*name, email"):
            await session.filter(User, nmae="x")

    async def test_stream_fetches_in_batches(self, pool: aiouow.Pool) -> None:
        """stream() yields every row, fetching batch_size rows at a time, through the identity map."""
        async with AsyncSession(pool) as s:
            s.add_all(Tag(code=f"t{i:03}", label="x") for i in range(250))
            await s.commit()
            s.expunge_all()
            seen = []
            async for tag in s.stream(select(Tag).order_by(Tag.code), batch_size=100):
                seen.append(tag)
                if len(seen) == 1:
                    assert await s.get(Tag, "t000") is tag  # other operations may run between batches
            assert [t.code for t in seen] == [f"t{i:03}" for i in range(250)]
            assert s.stats().statements["fetch"] >= 3
            with pytest.raises(aiouow.QueryError, match="batch_size"):
                async for _ in s.stream(select(Tag), batch_size=0):
                    pass

    async def test_stream_ends_when_transaction_ends(self, pool: aiouow.Pool) -> None:
        """Committing in the middle of a stream ends it with SessionError."""
        async with AsyncSession(pool) as s:
            s.add_all(Tag(code=f"t{i:03}", label="x") for i in range(20))
            await s.commit()
            with pytest.raises(aiouow.SessionError, match="the transaction it ran in has ended"):
                async for _ in s.stream(select(Tag), batch_size=5):
                    await s.commit()

    async def test_raw_sql_returns_dicts(self, people: aiouow.Pool) -> None:
        """execute() runs SQL with the driver's placeholders and returns rows with mapping access."""
        ph = "?" if people.dialect == "sqlite" else "$1"
        async with AsyncSession(people) as s:
            rows = await s.execute(f"SELECT name, email FROM users WHERE name = {ph}", "bob")
            assert rows == [{"name": "bob", "email": "bob@x"}]
            await s.execute(f"UPDATE users SET active = {ph}", False)
            await s.commit()
            assert await s.filter(User, active=True) == []

    async def test_for_update_select(self, people: aiouow.Pool) -> None:
        """select().for_update() locks and refreshes the selected rows."""
        async with AsyncSession(people) as s:
            locked = await s.scalars(select(User).where(User.name == "bob").for_update())
            assert [u.name for u in locked] == ["bob"]
            await s.commit()


class TestQueryErrors:
    def test_python_boolean_operators_are_refused(self) -> None:
        """`and`/`or`/`not` and `if` on a condition raise QueryError explaining &, | and ~."""
        with pytest.raises(aiouow.QueryError, match="combine conditions with &"):
            bool(User.name == "a")

    def test_where_needs_conditions(self) -> None:
        """A plain bool in where() (e.g. `User.name is None`) is refused."""
        with pytest.raises(aiouow.QueryError, match="cannot filter User by True"):
            select(User).where(True)

    def test_columns_of_other_entities_are_refused(self) -> None:
        """Conditions and ordering must use the selected entity's columns."""
        with pytest.raises(aiouow.QueryError, match="belongs to Order"):
            select(User).where(Order.total > 1)
        with pytest.raises(aiouow.QueryError, match="belongs to Order"):
            select(User).order_by(Order.id)

    def test_bad_operands(self) -> None:
        """None comparisons, non-list in_, non-str like and bad limits are refused."""
        with pytest.raises(aiouow.QueryError, match="is_\\(None\\)"):
            _ = User.id < None
        with pytest.raises(aiouow.QueryError, match="collection of values"):
            col(User.name).in_("abc")
        with pytest.raises(aiouow.QueryError, match="pattern must be a str"):
            col(User.name).like(1)  # type: ignore[arg-type]
        with pytest.raises(aiouow.QueryError, match="non-negative int"):
            select(User).limit(-1)
        with pytest.raises(aiouow.QueryError, match="expected a column"):
            select(User).order_by("name")
        with pytest.raises(aiouow.QueryError, match="pass a class attribute"):
            col(5)

    async def test_value_of_wrong_type_in_condition(self, session: AsyncSession) -> None:
        """A condition comparing a column with a value of the wrong type raises QueryError."""
        with pytest.raises(aiouow.QueryError, match=r"cannot compare User\.id = 'x': the field expects int"):
            await session.scalars(select(User).where(User.id == "x"))

    async def test_scalars_needs_a_select(self, session: AsyncSession) -> None:
        """scalars() of something else than select() is refused."""
        with pytest.raises(aiouow.QueryError, match=r"expected a statement made by aiouow\.select"):
            await session.scalars("SELECT 1")  # type: ignore[arg-type]


class Stocked(aiouow.Entity, table="stocked_items"):
    """Declares a column, ``stock``, that the table made by hand below does not have."""

    id: int = aiouow.field(primary_key=True, init=True)
    name: str
    stock: int = 0


class TestUnknownColumns:
    async def test_a_column_missing_from_its_table_is_an_error_not_data(self, pool: aiouow.Pool) -> None:
        """SQLite must not read an unknown column as its name in quotes: get, where and filter fail."""
        async with AsyncSession(pool) as s:
            await s.execute("DROP TABLE IF EXISTS stocked_items")
            await s.execute("CREATE TABLE stocked_items (id integer PRIMARY KEY, name text NOT NULL)")
            await s.execute("INSERT INTO stocked_items (id, name) VALUES (1, 'stock')")
            await s.commit()
        try:
            for attempt in (
                lambda s: s.get(Stocked, 1),
                lambda s: s.scalars(select(Stocked).where(Stocked.stock > 5)),
                lambda s: s.filter(Stocked, name="stock"),
            ):
                async with AsyncSession(pool) as s:
                    with pytest.raises(aiouow.DatabaseError, match="stock"):
                        await attempt(s)
            async with AsyncSession(pool) as s:  # an INSERT naming the column fails too, writing nothing
                s.add(Stocked(id=2, name="x", stock=1))
                with pytest.raises(aiouow.DatabaseError, match="stock"):
                    await s.commit()
        finally:
            async with AsyncSession(pool) as s:
                await s.execute("DROP TABLE stocked_items")
                await s.commit()
