"""Entities shared by the tests."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

from aiouow import Entity, field


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class User(Entity, table="users"):
    id: int = field(primary_key=True)
    name: str
    email: str = field(unique=True)
    active: bool = True
    created: dt.datetime = field(default_factory=utcnow)
    profile: dict[str, Any] | None = field(default=None, json=True)


class Order(Entity, table="orders"):
    id: int = field(primary_key=True)
    user_id: int = field(foreign_key="users.id", index=True)
    total: Decimal
    note: str | None = None


class OrderLine(Entity, table="order_lines"):
    """A composite primary key, both parts given by the program."""

    order_id: int = field(primary_key=True, init=True, foreign_key="orders.id")
    line: int = field(primary_key=True, init=True)
    sku: str
    qty: int = 1


class Tag(Entity, table="tags"):
    """A natural (str) primary key."""

    code: str = field(primary_key=True, init=True)
    label: str


class Doc(Entity, table="docs"):
    """Optimistic locking."""

    id: int = field(primary_key=True)
    title: str
    version: int = field(version=True)


class AllTypes(Entity, table="all_types"):
    id: int = field(primary_key=True)
    i: int = 0
    f: float = 0.0
    b: bool = False
    s: str = ""
    by: bytes = b""
    dec: Decimal = Decimal("0")
    ts: dt.datetime = field(default_factory=utcnow)
    naive: dt.datetime = field(default=dt.datetime(2000, 1, 1), timezone=False)
    d: dt.date = dt.date(2000, 1, 1)
    t: dt.time = dt.time(0, 0)
    u: uuid.UUID = field(default_factory=uuid.uuid4)
    color: Color = Color.RED
    level: Level = Level.LOW
    data: Any = field(default=None, json=True)
    maybe: int | None = None


ALL = (User, Order, OrderLine, Tag, Doc, AllTypes)
