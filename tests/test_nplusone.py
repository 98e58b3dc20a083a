"""N+1 detection: one line of the program reading rows one key at a time, over and over."""

from __future__ import annotations

import warnings

import pytest

import aiouow
from aiouow import AsyncSession, ConfigurationError, NPlusOneError, NPlusOneWarning, select

from .models import Order, Tag, User


async def seed(pool: aiouow.Pool, n: int) -> None:
    async with AsyncSession(pool) as s:
        s.add_all(Tag(code=f"t{i}", label="x") for i in range(n))
        user = User(name="u", email="u@x")
        s.add(user)
        await s.flush()
        s.add_all(Order(user_id=user.id, total=i) for i in range(3))
        await s.commit()


async def get_each(s: AsyncSession, n: int) -> None:
    for i in range(n):
        await s.get(Tag, f"t{i}")  # the line the detector names


async def orders_of_user_1(s: AsyncSession, n: int) -> None:
    for _ in range(n):
        await s.filter(Order, user_id=1)


class TestDetection:
    async def test_a_loop_of_get_misses_warns_once_naming_the_line(self, pool: aiouow.Pool) -> None:
        await seed(pool, 15)
        async with AsyncSession(pool) as s:
            with pytest.warns(NPlusOneWarning) as caught:
                await get_each(s, 15)
            assert len(caught) == 1
            message = str(caught[0].message)
            assert f"{__file__}:" in message and "11 times" in message
            assert "select(Tag).where(Tag.code.in_(keys))" in message
            assert caught[0].filename == __file__
            assert s.stats().n_plus_one == 1

    async def test_a_loop_of_queries_by_a_foreign_key_warns(self, pool: aiouow.Pool) -> None:
        await seed(pool, 0)
        async with AsyncSession(pool) as s:
            with pytest.warns(NPlusOneWarning, match=r"select\(Order\).where\(Order.user_id.in_\(values\)\)"):
                await orders_of_user_1(s, 12)

    async def test_ten_times_identity_map_hits_and_other_lines_do_not_warn(self, pool: aiouow.Pool) -> None:
        await seed(pool, 20)
        async with AsyncSession(pool) as s:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                for i in range(10):
                    await s.get(Tag, f"t{i}")
                for i in range(10):
                    await s.get(Tag, f"t{i}")  # hits: no statement
                for i in range(10, 20):
                    await s.get(Tag, f"t{i}")  # another line
                await s.scalars(select(Tag).where(Tag.code.in_([f"t{i}" for i in range(20)])))
            assert s.stats().n_plus_one == 0

    async def test_raise_mode_refuses_before_sending(self, pool: aiouow.Pool) -> None:
        await seed(pool, 12)
        async with AsyncSession(pool, n_plus_one="raise") as s:
            with pytest.raises(NPlusOneError, match="N\\+1 queries"):
                await get_each(s, 12)
            assert s.stats().statements["select"] == 10  # the eleventh was not sent
            assert s.session_state is not aiouow.SessionState.FAILED
            assert await s.get(Tag, "t11") is not None

    async def test_ignore_mode(self, pool: aiouow.Pool) -> None:
        await seed(pool, 12)
        async with AsyncSession(pool, n_plus_one="ignore") as s:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                for i in range(12):
                    await s.get(Tag, f"t{i}")
            assert s.stats().n_plus_one == 0

    def test_a_bad_mode_is_a_configuration_error(self, pool: aiouow.Pool) -> None:
        with pytest.raises(ConfigurationError, match="n_plus_one must be 'warn', 'raise' or 'ignore'"):
            AsyncSession(pool, n_plus_one="loud")
