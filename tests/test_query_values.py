"""Selections of columns and aggregates (rows, scalar), count, exists and distinct, on every dialect."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

import aiouow
from aiouow import AsyncSession, Entity, QueryError, field, func, select

from .models import Color, Tag

PLUS2 = dt.timezone(dt.timedelta(hours=2))


class Score(Entity, table="query_scores"):
    id: int = field(primary_key=True)
    player: str
    points: int
    ratio: float = 0.5
    at: dt.datetime = field(default_factory=lambda: dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    price: Decimal = Decimal("1.10")
    color: Color = Color.RED
    note: str | None = None


@pytest.fixture
async def scores(pool: aiouow.Pool) -> aiouow.Pool:
    await pool.drop_all(Score)
    await pool.create_all(Score)
    async with AsyncSession(pool) as s:
        s.add_all(
            [
                Score(player="ann", points=10, ratio=0.25, at=dt.datetime(2024, 1, 1, 12, 0, tzinfo=PLUS2)),
                Score(player="ann", points=30, color=Color.GREEN, at=dt.datetime(2024, 1, 1, 11, 0, tzinfo=dt.UTC)),
                Score(player="bob", points=5, price=Decimal("2.25"), note="x"),
            ]
        )
        await s.commit()
    return pool


class TestRows:
    async def test_group_by_having_and_order_by_an_aggregate(self, scores: aiouow.Pool) -> None:
        async with AsyncSession(scores) as s:
            stmt = (
                select(Score.player, func.count(Score.id), func.sum(Score.points), func.max(Score.points))
                .group_by(Score.player)
                .order_by(func.sum(Score.points).desc())
            )
            rows = await s.rows(stmt)
            assert rows == [("ann", 2, 40, 30), ("bob", 1, 5, 5)]
            assert all(type(v) is int for row in rows for v in row[1:])  # (PostgreSQL's sum(bigint) is numeric)
            assert await s.rows(stmt.having(func.count(Score.id) > 1)) == [("ann", 2, 40, 30)]

    async def test_values_come_back_as_field_values(self, scores: aiouow.Pool) -> None:
        async with AsyncSession(scores) as s:
            rows = await s.rows(select(Score.color, Score.price, Score.note).order_by(Score.id))
            assert rows == [
                (Color.RED, Decimal("1.10"), None),
                (Color.GREEN, Decimal("1.10"), None),
                (Color.RED, Decimal("2.25"), "x"),
            ]
            assert await s.scalar(select(func.avg(Score.points))) == pytest.approx(15.0)
            assert type(await s.scalar(select(func.avg(Score.ratio)))) is float

    async def test_min_and_max_of_aware_datetimes_follow_the_instant(self, scores: aiouow.Pool) -> None:
        """12:00+02:00 is before 11:00 UTC: min and max compare instants on SQLite too."""
        async with AsyncSession(scores) as s:
            earliest = await s.scalar(select(func.min(Score.at)).where(Score.player == "ann"))
            latest = await s.scalar(select(func.max(Score.at)).where(Score.player == "ann"))
            assert earliest == dt.datetime(2024, 1, 1, 10, 0, tzinfo=dt.UTC) and earliest.tzinfo is not None
            assert latest == dt.datetime(2024, 1, 1, 11, 0, tzinfo=dt.UTC)

    async def test_aggregates_of_no_rows(self, scores: aiouow.Pool) -> None:
        async with AsyncSession(scores) as s:
            none = select(func.count(Score.id), func.sum(Score.points), func.min(Score.player)).where(Score.points > 99)
            assert await s.rows(none) == [(0, None, None)]
            assert await s.scalar(select(Score.player).where(Score.points > 99)) is None

    async def test_distinct(self, scores: aiouow.Pool) -> None:
        async with AsyncSession(scores) as s:
            assert await s.rows(select(Score.player).distinct().order_by(Score.player)) == [("ann",), ("bob",)]

    async def test_pending_changes_are_flushed_first(self, scores: aiouow.Pool) -> None:
        async with AsyncSession(scores) as s:
            s.add(Score(player="cy", points=1))
            assert await s.scalar(select(func.count(Score.id))) == 4
            await s.rollback()


class TestCountAndExists:
    async def test_count_of_objects_and_of_values(self, scores: aiouow.Pool) -> None:
        async with AsyncSession(scores) as s:
            assert await s.count(select(Score)) == 3
            assert await s.count(select(Score).where(Score.player == "ann")) == 2
            assert await s.count(select(Score).limit(2)) == 2
            assert await s.count(select(Score.player).distinct()) == 2

    async def test_exists(self, scores: aiouow.Pool) -> None:
        async with AsyncSession(scores) as s:
            assert await s.exists(select(Score).where(Score.player == "bob")) is True
            assert await s.exists(select(Score).where(Score.player == "zed")) is False


class TestRefused:
    def test_a_plain_column_of_an_aggregating_query_must_be_grouped(self) -> None:
        stmt = select(Score.player, func.count(Score.id))
        with pytest.raises(QueryError, match=r"group_by\(Score.player\)"):
            stmt.check_grouping()

    async def test_grouping_rule_is_checked_before_anything_is_sent(self, scores: aiouow.Pool) -> None:
        async with AsyncSession(scores) as s:
            with pytest.raises(QueryError, match="in a query that aggregates"):
                await s.rows(select(Score.player, func.count(Score.id)).order_by(Score.points))
            assert s.session_state is aiouow.SessionState.IDLE

    def test_aggregates_of_types_without_them(self) -> None:
        with pytest.raises(QueryError, match=r"func.sum\(Score.player\): 'player' holds str, not numbers"):
            func.sum(Score.player)
        with pytest.raises(QueryError, match="expected a column"):
            func.count("id")
        with pytest.raises(QueryError, match="belongs to Tag, which the statement does not join"):
            select(Score.player, Tag.code).check_sources()

    async def test_decimal_aggregates_are_exact_or_refused(self, scores: aiouow.Pool) -> None:
        async with AsyncSession(scores) as s:
            stmt = select(func.sum(Score.price))
            if scores.dialect == "sqlite":
                with pytest.raises(QueryError, match="SQLite computes sum"):
                    await s.rows(stmt)
                with pytest.raises(QueryError, match=r"1\.0 and 1\.00 would be two values"):
                    await s.rows(select(Score.price).distinct())
                assert s.session_state is aiouow.SessionState.IDLE  # nothing was sent
            else:
                assert await s.scalar(stmt) == Decimal("4.45")

    async def test_rows_and_scalars_need_the_right_kind_of_select(self, scores: aiouow.Pool) -> None:
        async with AsyncSession(scores) as s:
            with pytest.raises(QueryError, match="it selects objects"):
                await s.rows(select(Score))
            with pytest.raises(QueryError, match="it selects values"):
                await s.scalars(select(Score.player))  # type: ignore[arg-type]
            with pytest.raises(QueryError, match="cannot group a select of Score objects"):
                select(Score).group_by(Score.player)
