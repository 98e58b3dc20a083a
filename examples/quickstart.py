"""aiouow in two minutes, on the embedded SQLite default: no server needed.

Run it with ``python examples/quickstart.py``; it prints what happens at each step.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import tempfile
from decimal import Decimal
from typing import Any

import aiouow
from aiouow import AsyncSession, Entity, NotLoadedError, col, field, func, relationship, select


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class User(Entity, table="users"):
    id: int = field(primary_key=True)
    name: str
    email: str = field(unique=True)
    active: bool = True
    created: dt.datetime = field(default_factory=utcnow)
    profile: dict[str, Any] | None = field(default=None, json=True)
    orders: list[Order] = relationship(back_populates="user")


class Order(Entity, table="orders"):
    id: int = field(primary_key=True)
    user_id: int | None = field(default=None, foreign_key="users.id", index=True)
    total: Decimal
    note: str | None = None
    user: User | None = relationship(back_populates="orders")


def step(text: str) -> None:
    print(f"\n== {text}")


async def main(path: str) -> None:
    async with aiouow.create_pool(f"sqlite:///{path}") as pool:
        await pool.create_all(User, Order)
        step(f"created tables users and orders in {path}")

        async with AsyncSession(pool) as s:
            alice = User(name="alice", email="alice@example.org", profile={"theme": "dark"})
            bob = User(name="bob", email="bob@example.org", orders=[Order(total=Decimal("120.00"))])
            s.add(alice, bob)  # bob's order comes with him (the save cascade)
            print("before flush, alice.id =", alice.id, "and her state is", s.state(alice).name)
            await s.flush()
            print("after flush,  alice.id =", alice.id, "and her state is", s.state(alice).name)
            print("bob's order got bob's new key in the same flush: user_id =", bob.orders[0].user_id)
            alice.orders.append(Order(total=Decimal("9.99")))  # written through the relationship
            await s.commit()
            step("committed two users and two orders")
            print("statements so far:", dict(s.stats().statements))

        async with AsyncSession(pool) as s:
            step("a new session loads alice again")
            u = await s.get_one(User, alice.id)
            print("loaded:", u)
            print("a second get returns the same object, with no query:", u is await s.get(User, alice.id))
            u.name = "alice2"
            assert u.profile is not None
            u.profile["theme"] = "light"  # an in-place change to a JSON value is a change too
            print("dirty fields:", s.dirty_fields(u), "| original name:", s.original_value(u, "name"))
            await s.commit()
            print("after commit the object keeps its values:", u.name, u.profile)

            step("delete bob's orders, then roll back")
            for order in await s.filter(Order, user_id=bob.id):
                s.delete(order)
            u.name = "not saved"
            await s.flush()
            print("orders visible inside the transaction:", len(await s.all(Order)))
            await s.rollback()
            print("after rollback: orders =", len(await s.all(Order)), "| alice's name =", u.name)

            step("query with select(...).where(...)")
            big = await s.scalars(select(Order).where(Order.total > Decimal("50")).order_by(col(Order.id).desc()))
            print("orders over 50:", big)
            actives = await s.scalars(select(User).where((User.active == True) & col(User.name).like("a%")))  # noqa: E712
            print("active users whose name starts with 'a':", [x.name for x in actives])

            step("relationships load only when asked, in one statement for many objects")
            users = await s.scalars(select(User).order_by(User.id))
            try:
                print(users[0].orders)
            except NotLoadedError as exc:
                print(f"{type(exc).__name__}: {str(exc)[:60]}...")
            before = s.stats().statements.get("select", 0)
            await s.load(users, User.orders)  # every user's orders, and each order's user, in one SELECT
            print(
                {x.name: [str(o.total) for o in x.orders] for x in users},
                "| statements:",
                s.stats().statements["select"] - before,
            )
            counts = await s.rows(select(Order.user_id, func.count(Order.id)).group_by(Order.user_id))
            print("orders per user id:", counts)

            step("bad input gets a clear error, and nothing is written")
            s.add(User(name="carol", email="alice@example.org"))  # duplicate email
            try:
                await s.commit()
            except aiouow.UniqueViolationError as exc:
                print(f"{type(exc).__name__}: {exc}")
                await s.rollback()
            print("users in the database:", [x.name for x in await s.all(User)])


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(os.path.join(tmp, "quickstart.db")))
