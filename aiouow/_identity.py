"""The identity map: one object per row per session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._mapping import Mapper


class IdentityMap:
    """Objects backed by rows, by mapper and primary key (a scalar, or a tuple for composite keys)."""

    __slots__ = ("_maps", "by_entity")

    def __init__(self) -> None:
        self._maps: dict[Mapper, dict[Any, Any]] = {}
        #: entity class -> (its map, the exact type of a single-column key): the lookup that
        #: ``AsyncSession.get`` answers from without SQL, kept to a dict lookup or two.
        self.by_entity: dict[type, tuple[dict[Any, Any], type | None]] = {}

    def get(self, mapper: Mapper, key: Any) -> Any | None:
        m = self._maps.get(mapper)
        return None if m is None else m.get(key)

    def table(self, mapper: Mapper) -> dict[Any, Any]:
        """The map of one entity (made on first use): the loading hot path works on it directly."""
        m = self._maps.get(mapper)
        if m is None:
            m = self._maps[mapper] = {}
            pk = mapper.pk
            self.by_entity[mapper.entity] = (m, pk[0].ctype.python_type if len(pk) == 1 else None)
        return m

    def add(self, mapper: Mapper, key: Any, obj: Any) -> None:
        self.table(mapper)[key] = obj

    def discard(self, mapper: Mapper, key: Any) -> None:
        m = self._maps.get(mapper)
        if m is not None:
            m.pop(key, None)

    def __len__(self) -> int:
        return sum(len(m) for m in self._maps.values())

    def objects(self) -> Iterator[Any]:
        for m in self._maps.values():
            yield from m.values()

    def of(self, mapper: Mapper) -> Iterator[Any]:
        m = self._maps.get(mapper)
        if m is not None:
            yield from m.values()

    def clear(self) -> None:
        self._maps.clear()
        self.by_entity.clear()
