"""Every value of every column type either comes back as it went in or is refused before anything
is written (a property test over the extremes, on every dialect), and each refusal names the
entity and the field."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import math
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aiouow
from aiouow import AsyncSession, DataError, Entity, QueryError, field, select

from .conftest import DIALECTS, url_for


class Shade(enum.Enum):
    DARK = "dark"
    LIGHT = "light"


class Rank(enum.IntEnum):
    ONE = 1
    TWO = 2


class Probe(Entity, table="value_probes"):
    id: int = field(primary_key=True)
    i: int | None = None
    f: float | None = None
    b: bool | None = None
    s: str | None = None
    by: bytes | None = None
    dec: Decimal | None = None
    aware: dt.datetime | None = None
    naive: dt.datetime | None = field(default=None, timezone=False)
    d: dt.date | None = None
    t: dt.time | None = None
    u: uuid.UUID | None = None
    shade: Shade | None = None
    rank: Rank | None = None
    data: Any = field(default=None, json=True)


INT64 = 2**63
offsets = st.builds(dt.timezone, st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: dt.timedelta(minutes=m)))
json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([1e15, 1e16, 1e308, -1e300, 5e-324, 0.1 + 0.2, -0.0, 10**4000])
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
        | st.tuples(inner)
        | st.dictionaries(st.integers(0, 3), inner, min_size=1, max_size=1)
    ),
    max_leaves=8,
)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


class Deep:
    """A JSON list nested ``depth`` deep, made when the example runs (hypothesis prints this, not it)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth

    def __repr__(self) -> str:
        return f"Deep({self.depth})"


VALUES: dict[str, st.SearchStrategy[Any]] = {
    "i": st.integers(min_value=-INT64 - 2, max_value=INT64 + 1) | st.sampled_from([-INT64, INT64 - 1, INT64]),
    "f": st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308])
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.sampled_from([10**400, 2**53 + 1, 2**53]),
    "b": st.booleans(),
    "s": st.text() | st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff", "é\U0001f600"]),
    "by": st.binary() | st.just(b"\x00\xff"),
    "dec": st.decimals(allow_nan=True, allow_infinity=True)
    | st.builds(
        lambda sign, digits, exponent: Decimal((sign, tuple(digits), exponent)),
        st.integers(0, 1),
        st.lists(st.integers(0, 9), min_size=1, max_size=30),
        st.integers(-17000, 135000),
    )
    | st.sampled_from([Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity"), Decimal("-0"), Decimal("1.50")])
    | st.sampled_from([10**5000, 10**20]),
    "aware": st.datetimes(timezones=offsets)
    | st.sampled_from(
        [
            dt.datetime.max.replace(tzinfo=dt.UTC),
            dt.datetime.min.replace(tzinfo=dt.UTC),
            dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5))),
            dt.datetime.min.replace(tzinfo=dt.timezone(dt.timedelta(hours=5))),
        ]
    ),
    "naive": st.datetimes() | st.sampled_from([dt.datetime.max, dt.datetime.min]),
    "d": st.dates() | st.sampled_from([dt.date.max, dt.date.min]),
    "t": st.times(),
    "u": st.uuids(),
    "shade": st.sampled_from(Shade),
    "rank": st.sampled_from(Rank),
    "data": json_values | st.sampled_from([Deep(5000), Deep(499), {"k": "\x00"}, ["\ud800"], (1, 2)]),
}


def same(field_name: str, sent: Any, got: Any) -> bool:
    """Whether a value came back as it went in (an int for a float or a Decimal comes back as
    one; an aware datetime keeps its instant, and on SQLite its offset too)."""
    if field_name == "f":
        return type(got) is float and got == sent
    if field_name == "dec":
        return type(got) is Decimal and got == sent
    if field_name == "aware":
        return type(got) is dt.datetime and got.tzinfo is not None and got == sent
    if field_name == "data":
        return bool(_json_same(sent, got))
    return type(got) is type(sent) and bool(got == sent)


def _json_same(sent: Any, got: Any) -> bool:
    """Equal, and of the same JSON types all the way down (a loop: values may nest 500 deep)."""
    todo = [(sent, got)]
    while todo:
        a, b = todo.pop()
        if type(a) is not type(b):
            return False
        if isinstance(a, list):
            if len(a) != len(b):
                return False
            todo.extend(zip(a, b, strict=True))
        elif isinstance(a, dict):
            if a.keys() != b.keys():
                return False
            todo.extend((a[k], b[k]) for k in a)
        elif a != b:
            return False
    return True


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as r:
        yield r


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_value_round_trips_or_is_refused(dialect: str, tmp_path: Path, runner: asyncio.Runner) -> None:
    """Generated values of every column type, extremes included, on each dialect: a committed
    value reads back the same in a new session; a refused one is a DataError naming the entity
    and the field, nothing is written, and the session goes on working."""

    async def open_pool() -> aiouow.Pool:
        pool = await aiouow.create_pool(await url_for(dialect, tmp_path), max_size=2)
        await pool.drop_all(Probe)
        await pool.create_all(Probe)
        return pool

    pool = runner.run(open_pool())
    refused: dict[str, int] = {}

    async def attempt(name: str, value: Any) -> None:
        if isinstance(value, Deep):
            value = _nested(value.depth)
        async with AsyncSession(pool) as s:
            probe = Probe(**{name: value})
            s.add(probe)
            try:
                await s.commit()
            except DataError as exc:
                message = str(exc)
            else:
                message = None
            if message is not None:
                refused[name] = refused.get(name, 0) + 1
                assert "Probe" in message and repr(name) in message, message
                s.expunge(probe)  # (else autoflush would try it again)
                assert await s.execute("SELECT count(*) AS n FROM value_probes") == [{"n": 0}]
                await s.rollback()
                return
        async with AsyncSession(pool) as s:
            got = await s.get_one(Probe, probe.id)
            assert same(name, value, getattr(got, name)), (name, value, getattr(got, name))
            assert not s.is_dirty(got)
            s.delete(got)
            await s.commit()

    examples = int(os.environ.get("AIOUOW_VALUE_EXAMPLES", "300")) // (2 if dialect != "sqlite" else 1)

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.sampled_from(sorted(VALUES)).flatmap(lambda n: st.tuples(st.just(n), VALUES[n])))
    def check(case: tuple[str, Any]) -> None:
        runner.run(attempt(*case))

    try:
        check()
    finally:
        runner.run(pool.drop_all(Probe))
        runner.run(pool.close())
    assert refused, "no value was refused: the strategies miss the extremes"


REFUSED: list[tuple[str, Any, str]] = [
    ("f", math.nan, "NaN"),
    ("f", 10**400, "out of the float range"),
    ("f", 2**53 + 1, "cannot hold exactly"),
    ("dec", Decimal("NaN"), "only finite decimals"),
    ("dec", Decimal("Infinity"), "only finite decimals"),
    ("dec", Decimal((0, (1,), 140000)), "digits before the decimal point"),
    ("dec", Decimal((0, (1,), -17000)), "digits after the decimal point"),
    ("s", "a\x00b", "a NUL character at position 1"),
    ("s", "\ud800", "a lone surrogate"),
    ("i", 2**63, "64-bit integer range"),
    ("aware", dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5))), "outside the years 1-9999"),
    ("data", _nested(5000), "nested more than 500 levels"),
    ("data", {"k": "\x00"}, "NUL character"),
    ("data", [1e308], "would come back as an int"),
    ("data", [math.inf], "not a JSON number"),
    ("data", (1, 2), "tuple"),
    ("data", {1: "a"}, "is not a str"),
    ("data", {"n": [10**5000]}, "too large for JSON text"),
]


@pytest.fixture
async def probes(pool: aiouow.Pool) -> aiouow.Pool:
    await pool.drop_all(Probe)
    await pool.create_all(Probe)
    return pool


@pytest.mark.parametrize(("name", "value", "why"), REFUSED, ids=[f"{n}-{w}" for n, _, w in REFUSED])
async def test_refused_value_names_entity_and_field(probes: aiouow.Pool, name: str, value: Any, why: str) -> None:
    """Each kind of value that cannot be stored exactly is refused at flush, before any SQL."""
    async with AsyncSession(probes) as s:
        s.add(Probe(i=1))
        await s.flush()
        statements = dict(s.stats().statements)
        bad = Probe(**{name: value})
        s.add(bad)
        with pytest.raises(DataError, match=f"cannot flush Probe: field '{name}' .*{why}"):
            await s.flush()
        assert s.stats().statements == statements  # nothing was sent
        assert s.session_state is aiouow.SessionState.ACTIVE  # the session goes on
        s.expunge(bad)
        await s.commit()
    async with AsyncSession(probes) as s:
        assert [p.i for p in await s.all(Probe)] == [1]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("aware", dt.datetime.max.replace(tzinfo=dt.UTC)),
        ("aware", dt.datetime.min.replace(tzinfo=dt.UTC)),
        ("naive", dt.datetime.max),
        ("f", math.inf),
        ("f", -math.inf),
        ("dec", 10**5000),
        ("data", [1e15, 123456789.125, 5e-324]),
        ("s", "é\U0001f600"),
    ],
    ids=["aware-max", "aware-min", "naive-max", "inf", "-inf", "int-of-5001-digits", "json-floats", "text"],
)
async def test_extreme_value_round_trips(probes: aiouow.Pool, name: str, value: Any) -> None:
    """Bounds that the databases store as special values (PostgreSQL's infinity) come back as sent."""
    async with AsyncSession(probes) as s:
        probe = Probe(**{name: value})
        s.add(probe)
        await s.commit()
    async with AsyncSession(probes) as s:
        got = await s.get_one(Probe, probe.id)
        assert same(name, value, getattr(got, name)), getattr(got, name)


async def test_unknown_enum_value_in_the_database_names_entity_field_and_value(probes: aiouow.Pool) -> None:
    async with AsyncSession(probes) as s:
        await s.execute("INSERT INTO value_probes (id, shade) VALUES (7, 'purple')")
        await s.commit()
    async with AsyncSession(probes) as s:
        with pytest.raises(DataError, match=r"cannot load Probe: field 'shade' holds 'purple' .*not a value of Shade"):
            await s.get(Probe, 7)
        assert s.session_state is not aiouow.SessionState.FAILED
        assert await s.execute("SELECT count(*) AS n FROM value_probes") == [{"n": 1}]


async def test_unreadable_json_in_the_database_names_entity_and_field(probes: aiouow.Pool) -> None:
    deep = "[" * 5000 + "]" * 5000
    async with AsyncSession(probes) as s:
        await s.execute(
            "INSERT INTO value_probes (id, data) VALUES (8, ?)"
            if probes.dialect == "sqlite"
            else "INSERT INTO value_probes (id, data) VALUES (8, $1::jsonb)",
            deep,
        )
        await s.commit()
    async with AsyncSession(probes) as s:
        with pytest.raises(DataError, match=r"cannot load Probe: field 'data' .*cannot be read as JSON"):
            await s.all(Probe)


class TestQueryInput:
    async def test_lone_surrogate_in_a_filter_is_a_query_error(self, probes: aiouow.Pool) -> None:
        async with AsyncSession(probes) as s:
            with pytest.raises(QueryError, match="lone surrogate"):
                await s.filter(Probe, s="\ud800")
            assert s.session_state is aiouow.SessionState.IDLE

    def test_like_on_a_non_text_field_is_refused_when_built(self) -> None:
        with pytest.raises(QueryError, match=r"LIKE applies to str fields, and 'i' holds int"):
            Probe.i.like("1%")
        with pytest.raises(QueryError, match="NUL character"):
            Probe.s.like("a\x00")
        assert Probe.shade.like("d%") is not None

    @pytest.mark.parametrize("method", ["limit", "offset"])
    def test_limit_and_offset_past_int64_are_refused_when_built(self, method: str) -> None:
        stmt = select(Probe)
        getattr(stmt, method)(2**63 - 1)
        with pytest.raises(QueryError, match=rf"cannot set {method}: {2**63} is larger"):
            getattr(stmt, method)(2**63)

    async def test_execute_of_a_non_str_is_a_query_error_and_leaves_the_session(self, probes: aiouow.Pool) -> None:
        async with AsyncSession(probes) as s:
            s.add(Probe(i=1))
            await s.flush()
            with pytest.raises(QueryError, match="expected the SQL as a str"):
                await s.execute(123)  # type: ignore[arg-type]
            assert s.session_state is aiouow.SessionState.ACTIVE
            await s.commit()

    async def test_lone_surrogate_in_a_raw_parameter_is_a_data_error(self, probes: aiouow.Pool) -> None:
        mark = "?" if probes.dialect == "sqlite" else "$1"
        async with AsyncSession(probes) as s:
            with pytest.raises(DataError):
                await s.execute(f"SELECT {mark} AS x", "\ud800")
