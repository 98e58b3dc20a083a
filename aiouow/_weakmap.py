"""The identity dict of a session opened with ``identity_map="weak"``.

A `weakref.WeakValueDictionary`: an object nobody refers to leaves it (its row is loaded as a new
object next time). What must not be lost is held elsewhere, strongly: pending objects
(`EntityTracker.new`), objects marked for deletion (``deleting``) or deleted by a flush
(``removed``), and changed objects until a flush writes them (``EntityTracker.kept``).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, KeysView
from typing import Any


class WeakIdentity(weakref.WeakValueDictionary[Any, Any]):
    """A `weakref.WeakValueDictionary` whose ``keys()`` is a view, as a dict's is: the generated
    loaders test a batch of keys against it with ``keys().isdisjoint`` (a key whose object has
    just gone may still be among them: the loader then takes the row-by-row path, which finds
    no object and makes one)."""

    def keys(self) -> KeysView[Any]:  # type: ignore[override]
        data: dict[Any, Any] = self.data  # type: ignore[attr-defined]  # (its dict of weak references)
        return data.keys()


class WeakBatch:
    """The objects one statement loaded, kept for peer batching (`EntityTracker.batches`) without
    keeping them alive: iterating gives those still alive, in their order."""

    __slots__ = ("refs",)

    def __init__(self, objs: list[Any]) -> None:
        self.refs = [weakref.ref(obj) for obj in objs]

    def __iter__(self) -> Iterator[Any]:
        for ref in self.refs:
            obj = ref()
            if obj is not None:
                yield obj
