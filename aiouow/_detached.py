"""`DetachedState`: what a detached object remembers of its own (its key, changes made while
detached, its JSON text), until a session adopts it (`EntityTracker.adopt`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._changes import names_of, original_of
from ._relations import unload_references
from ._state import ObjectState

if TYPE_CHECKING:
    from ._mapping import Mapper

_DETACHED = ObjectState.DETACHED


class DetachedState:
    """An object backed by a row that no open session holds: its identity key, what was assigned
    since it left its session, and the JSON text of its JSON fields at its last load or flush."""

    __slots__ = ("changes", "fields", "json_text", "key", "mapper", "watched")
    session: None = None  # (no session holds it)

    def __init__(self, mapper: Mapper, key: Any, changes: dict[str, Any], json_text: dict[str, str] | None) -> None:
        self.mapper = mapper
        self.fields = mapper.column_names  # the names the assignment hook records
        self.watched = mapper.watched  # foreign keys that loaded relationships go through
        self.key = key
        self.changes = changes
        self.json_text = json_text

    def record(self, obj: Any, d: dict[str, Any], name: str, original: Any) -> None:
        """The assignment hook: field ``name`` of ``obj`` is about to replace ``original``."""
        if name not in self.changes:
            self.changes[name] = original

    def state_for(self, obj: Any, session: object) -> ObjectState:
        return _DETACHED

    def key_assigned(self, obj: Any, name: str) -> None:
        """A foreign key the object's loaded references go through was assigned: they are unloaded."""
        unload_references(obj, self.mapper, name)

    def detached_parts(self, obj: Any) -> tuple[Any, dict[str, Any], dict[str, str] | None]:
        """What a session adopting the object takes over: key, changes, JSON text."""
        return self.key, self.changes, self.json_text

    def dirty_fields(self, obj: Any) -> tuple[str, ...]:
        return names_of(self.mapper, obj, self.key, self.changes, self.json_text)

    def original_value(self, obj: Any, name: str) -> Any:
        return original_of(self.mapper, obj, name, self.changes, self.json_text)
