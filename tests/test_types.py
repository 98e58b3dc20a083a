"""Column types: exact round trips on every dialect, and the value check at flush."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

import aiouow
from aiouow import AsyncSession, select

from .models import AllTypes, Color, Level

PLUS2 = dt.timezone(dt.timedelta(hours=2))

EXTREMES: list[dict[str, Any]] = [
    {
        "i": 2**63 - 1,
        "f": 0.1 + 0.2,
        "b": True,
        "s": "naïve ☃ 'quoted' \"double\" \\ %",
        "by": bytes(range(256)),
        "dec": Decimal("12345678901234567890.123456789012345"),
        "ts": dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=dt.UTC),
        "naive": dt.datetime(1999, 12, 31, 23, 59, 59, 1),
        "d": dt.date(1, 1, 1),
        "t": dt.time(23, 59, 59, 999999),
        "u": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "color": Color.GREEN,
        "level": Level.HIGH,
        "data": {"list": [1, 2.5, None, True, "x"], "nested": {"k": []}},
        "maybe": None,
    },
    {
        "i": -(2**63),
        "f": -1e308,
        "dec": Decimal("-0.000000000000000000001"),
        "data": [1, "two", {"three": 3}],
        "maybe": 0,
        "s": "",
        "by": b"",
    },
    {"dec": Decimal("1.10"), "data": "just a string", "f": 3},
    {"data": 42},
    {"data": None},
]


class TestRoundTrip:
    @pytest.mark.parametrize("values", EXTREMES)
    async def test_values_come_back_exactly(self, pool: aiouow.Pool, values: dict[str, Any]) -> None:
        """Every supported type round-trips through the database with its exact value and type."""
        obj = AllTypes(**values)
        async with AsyncSession(pool) as s:
            s.add(obj)
            await s.commit()
        async with AsyncSession(pool) as s:
            got = await s.get_one(AllTypes, obj.id)
            for name in ("i", "f", "b", "s", "by", "dec", "ts", "naive", "d", "t", "u", "color", "level", "data"):
                expected, actual = getattr(obj, name), getattr(got, name)
                assert actual == expected, name
                assert type(actual) is type(expected) or (name == "f"), name
            assert str(got.dec) == str(obj.dec)  # Decimal keeps its exponent
            assert got.maybe == obj.maybe

    async def test_aware_datetime_keeps_its_instant(self, pool: aiouow.Pool) -> None:
        """An aware datetime comes back as the same instant, aware."""
        when = dt.datetime(2024, 5, 1, 12, 0, tzinfo=PLUS2)
        obj = AllTypes(ts=when)
        async with AsyncSession(pool) as s:
            s.add(obj)
            await s.commit()
        async with AsyncSession(pool) as s:
            got = await s.get_one(AllTypes, obj.id)
            assert got.ts == when and got.ts.utcoffset() is not None
            if pool.dialect == "sqlite":
                assert got.ts.utcoffset() == dt.timedelta(hours=2)  # SQLite keeps the offset itself

    async def test_decimal_comparisons_are_numeric(self, pool: aiouow.Pool) -> None:
        """Decimal columns compare and order as numbers (on SQLite too, where they are stored as text)."""
        async with AsyncSession(pool) as s:
            s.add_all(AllTypes(dec=Decimal(v)) for v in ("10", "9.5", "100.25", "-1"))
            await s.commit()
            big = await s.scalars(select(AllTypes).where(AllTypes.dec > Decimal("9.9")).order_by(AllTypes.dec))
            assert [o.dec for o in big] == [Decimal("10"), Decimal("100.25")]
            eq = await s.scalars(select(AllTypes).where(AllTypes.dec == Decimal("9.50")))
            assert [o.dec for o in eq] == [Decimal("9.5")]

    async def test_enum_and_uuid_in_queries(self, pool: aiouow.Pool) -> None:
        """Enum and UUID values work as query parameters."""
        u = uuid.uuid4()
        async with AsyncSession(pool) as s:
            s.add(AllTypes(color=Color.GREEN, u=u), AllTypes())
            await s.commit()
            assert len(await s.filter(AllTypes, color=Color.GREEN)) == 1
            assert len(await s.filter(AllTypes, u=u)) == 1
            got = await s.scalars(select(AllTypes).where(AllTypes.level.in_([Level.LOW])))
            assert len(got) == 2


class TestValueCheck:
    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("i", "1", "expects int, got str '1'"),
            ("i", True, "expects int, got bool True"),
            ("i", 2**63, "out of the 64-bit integer range"),
            ("f", "1.0", "expects float"),
            ("b", 1, "expects bool, got int 1"),
            ("s", b"x", "expects str"),
            ("by", "x", "expects bytes"),
            ("dec", 1.5, "expects Decimal, got float"),
            ("ts", dt.datetime(2020, 1, 1), "naive datetime but the field stores aware ones"),
            ("naive", dt.datetime(2020, 1, 1, tzinfo=dt.UTC), "aware datetime but the field stores naive ones"),
            ("d", dt.datetime(2020, 1, 1), "expects date, got datetime"),
            ("t", dt.time(1, tzinfo=dt.UTC), "aware time"),
            ("u", "not-a-uuid", "expects UUID"),
            ("color", "red", "expects Color, got str"),
            ("level", 1, "expects Level, got int"),
            ("data", {1, 2}, "set {1, 2} is not a JSON type"),
            ("data", float("nan"), "nan is not a JSON number"),
        ],
    )
    async def test_wrong_value_fails_flush_naming_field(
        self, pool: aiouow.Pool, field: str, value: Any, message: str
    ) -> None:
        """A value that does not fit its annotation raises DataError at flush naming entity and field.

        Nothing is written."""
        async with AsyncSession(pool) as s:
            s.add(AllTypes(**{field: value}))
            with pytest.raises(aiouow.DataError, match=rf"cannot flush AllTypes: field '{field}' .*{message}"):
                await s.flush()
            assert s.stats().statements.get("insert", 0) == 0
        async with AsyncSession(pool) as s:
            assert await s.all(AllTypes) == []

    async def test_int_accepted_for_float_and_decimal(self, pool: aiouow.Pool) -> None:
        """An int is a valid float or Decimal value."""
        async with AsyncSession(pool) as s:
            s.add(AllTypes(f=1, dec=2))  # type: ignore[arg-type]
            await s.commit()

    async def test_changed_value_is_checked_too(self, pool: aiouow.Pool) -> None:
        """An UPDATE's values are checked like an INSERT's."""
        async with AsyncSession(pool) as s:
            obj = AllTypes()
            s.add(obj)
            await s.flush()
            obj.i = "x"  # type: ignore[assignment]
            with pytest.raises(aiouow.DataError, match="field 'i' expects int"):
                await s.flush()
            obj.i = 5
            await s.commit()


class TestDatetimeOrder:
    async def test_aware_datetimes_compare_as_instants(self, pool: aiouow.Pool) -> None:
        """Aware datetimes with different offsets compare and order by instant, to the microsecond."""
        base = dt.datetime(2024, 1, 1, 9, 0, tzinfo=dt.UTC)
        values = [
            base.astimezone(PLUS2),  # 11:00+02:00 == 09:00Z
            base + dt.timedelta(microseconds=1),
            (base - dt.timedelta(minutes=30)).astimezone(dt.timezone(dt.timedelta(hours=-5))),
            base + dt.timedelta(hours=1),
        ]
        async with AsyncSession(pool) as s:
            s.add_all(AllTypes(ts=v) for v in values)
            await s.commit()
            ordered = [o.ts for o in await s.scalars(select(AllTypes).order_by(AllTypes.ts))]
            assert ordered == sorted(values)
            same = await s.scalars(select(AllTypes).where(AllTypes.ts == base))
            assert [o.ts for o in same] == [values[0]]
            later = await s.scalars(select(AllTypes).where(AllTypes.ts > base.astimezone(PLUS2)))
            assert sorted(o.ts for o in later) == [values[1], values[3]]

    async def test_offset_with_seconds_is_refused(self, session: AsyncSession) -> None:
        """A UTC offset that is not whole minutes cannot be stored: DataError."""
        odd = dt.timezone(dt.timedelta(hours=1, seconds=30))
        session.add(AllTypes(ts=dt.datetime(2024, 1, 1, tzinfo=odd)))
        with pytest.raises(aiouow.DataError, match="UTC offset with seconds"):
            await session.flush()
