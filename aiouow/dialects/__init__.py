"""Dialects: one module per database behind the small interface in ``_base``, loaded by name."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import cast

from .._url import DatabaseURL, PoolOptions
from ._base import Connection, Dialect, DriverPool, PoolStats

__all__ = ["Connection", "Dialect", "DriverPool", "PoolStats", "open_pool"]

_MODULES = {"sqlite": "aiouow.dialects.sqlite", "postgresql": "aiouow.dialects.postgresql"}


async def open_pool(url: DatabaseURL, options: PoolOptions) -> DriverPool:
    """Open the driver pool of the dialect the URL names."""
    module = importlib.import_module(_MODULES[url.dialect])
    opener = cast(Callable[[DatabaseURL, PoolOptions], Awaitable[DriverPool]], module.open_pool)
    return await opener(url, options)
