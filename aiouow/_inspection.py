"""The inspection API of a session: what it holds, asked without IO (``s.state(obj)``, ``s.dirty``,
``s.stats()`` ...). `AsyncSession` inherits it; each answer comes from the session's `IdentityMap`."""

from __future__ import annotations

from typing import Any

from ._identity import IdentityMap
from ._nplusone import NPlusOneDetector
from ._state import STATE_ATTR, ObjectState
from ._stats import SessionStats, StatsRecorder


class SessionInspection:
    """What `AsyncSession` answers about the objects it holds."""

    __slots__ = ()
    _objects: IdentityMap
    _stats: StatsRecorder
    _n_plus_one: NPlusOneDetector

    def state(self, obj: Any) -> ObjectState:
        """Where the object stands relative to this session (see `ObjectState`)."""
        return self._objects.state_of(obj)

    def is_dirty(self, obj: Any) -> bool:
        """Whether a persistent object has changes not yet flushed."""
        return bool(self.dirty_fields(obj))

    def dirty_fields(self, obj: Any) -> list[str]:
        """The names of the object's changed fields, in column order."""
        return self._objects.dirty_fields(obj)

    def original_value(self, obj: Any, name: str) -> Any:
        """The value ``name`` had at the last load or flush (the current value for new objects)."""
        return self._objects.original_value(obj, name)

    @property
    def new(self) -> frozenset[Any]:
        """Objects added and not yet flushed."""
        return self._objects.new()

    @property
    def dirty(self) -> frozenset[Any]:
        """Persistent objects with changes not yet flushed."""
        return self._objects.dirty()

    @property
    def deleted(self) -> frozenset[Any]:
        """Objects marked for deletion and not yet flushed."""
        return self._objects.deleted()

    def __contains__(self, obj: object) -> bool:
        holder = getattr(obj, STATE_ATTR, None)
        return holder is not None and holder.session is self

    def __len__(self) -> int:
        return len(self._objects)

    def stats(self) -> SessionStats:
        """Statements by kind, rows read and written, flushes, time in the database, and sizes."""
        return self._stats.snapshot(
            self._objects.persistent_count(), len(self.new), len(self.dirty), len(self.deleted), self._n_plus_one.found
        )
