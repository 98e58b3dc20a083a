"""``AsyncSession.merge``: a detached or new object's values copied onto the session's object for
its row. Written against the session's public API only (``in``, ``get``, ``add`` and assignment)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from ._mapping import mapper_of

if TYPE_CHECKING:
    from ._session import AsyncSession

E = TypeVar("E")


async def merge_into(session: AsyncSession, obj: E) -> E:
    """The session's object for ``obj``'s row, given ``obj``'s values: found in the identity map
    or loaded (its fields assigned, so tracked as changes), or, when there is no such row, a new
    pending copy. ``obj`` itself is left as it was."""
    mapper = mapper_of(obj)
    if obj in session:
        return obj
    values = mapper.copied_values(obj)
    generated = mapper.generated_pk
    target: E | None = None
    if generated is None or values[generated.name] is not None:
        target = await session.get(type(obj), mapper.key_of_values(values))
    if target is None:
        target = object.__new__(type(obj))
        target.__dict__.update(values)
        session.add(target)
        return target
    for name in mapper.settable:
        setattr(target, name, values[name])
    return target
