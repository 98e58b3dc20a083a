"""Relationships between entities: what ``relationship()`` declares, and how it is resolved.

A relationship is a class attribute (``Hero.team``) that is not a column. An object holds a
relationship's value in its ``__dict__`` once it is *loaded*: the related object (or None) for a
reference, a `RelatedList` for a collection. Until then, reading it raises `NotLoadedError`:
aiouow never sends a statement behind the program's back. Transient and pending objects have
their relationships loaded (None, an empty list) from the start.

The kind of a relationship follows from its annotation and the foreign keys (resolved when first
needed, so that names in quotes may refer to classes declared later):

- a reference (``Team | None``) over a foreign key of this entity: many-to-one;
- a reference over a unique foreign key of the other entity to this one: one-to-one;
- a collection (``list[Hero]``) over a foreign key of the other entity: one-to-many;
- a collection with ``link=`` an entity holding a key to each side: many-to-many.
"""

from __future__ import annotations

import enum
import sys
import types
import typing
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._expressions import Expression
from ._rellog import changing
from .errors import MappingError, NotLoadedError, QueryError

if TYPE_CHECKING:
    from ._expressions import Column
    from ._mapping import Mapper


@dataclass(frozen=True, slots=True)
class RelationshipSpec:
    """The options given to `relationship`, before the class is mapped."""

    back_populates: str | None = None
    fk: str | None = None
    link: Any = None  # an entity class or its name
    delete_orphan: bool = False


def relationship(
    *,
    back_populates: str | None = None,
    fk: str | None = None,
    link: Any = None,
    delete_orphan: bool = False,
) -> Any:
    """Declare a relationship to another entity (see ``docs/relationships.md``).

    - ``back_populates``: the relationship of the other entity that is this one's other side;
      both are kept in step in memory.
    - ``fk``: the foreign-key field to go through, where more than one could serve.
    - ``link``: for a many-to-many collection, the link entity (or its class name).
    - ``delete_orphan``: a child taken out of this collection is deleted (its key is otherwise
      set to NULL).

    A relationship is an optional keyword argument of the entity's ``__init__`` (``Hero(team=t)``,
    ``Team(heroes=[h])``); to type checkers, the value given here is its default.
    """
    return RelationshipSpec(back_populates=back_populates, fk=fk, link=link, delete_orphan=delete_orphan)


class RelationKind(enum.Enum):
    MANY_TO_ONE = "many-to-one"
    ONE_TO_MANY = "one-to-many"
    ONE_TO_ONE = "one-to-one"
    MANY_TO_MANY = "many-to-many"


#: Entity classes by name, for relationships named in quotes (weak: classes may come and go).
_ENTITIES: dict[str, weakref.WeakSet[type]] = {}


def register_entity(cls: type) -> None:
    _ENTITIES.setdefault(cls.__name__, weakref.WeakSet()).add(cls)


class _EntityNames(dict[str, Any]):
    """The namespace that names in quotes are evaluated in, after the owner's module: entity classes by name."""

    def __init__(self, owner: type) -> None:
        super().__init__()
        self.owner = owner

    def __missing__(self, name: str) -> Any:
        module = sys.modules.get(self.owner.__module__)
        if module is not None and name in vars(module):  # (the owner's module first, as Python looks)
            return vars(module)[name]
        found = [c for c in _ENTITIES.get(name, ()) if "__aiouow_mapper__" in c.__dict__]
        if len(found) == 1:
            return found[0]
        if found:
            raise MappingError(
                f"cannot resolve {name!r} for {self.owner.__name__}: several entity classes have that name"
            )
        raise KeyError(name)


class Relationship:
    """A relationship of an entity: ``Hero.team`` at the class level. Reading it on an object
    whose relationship is not loaded raises `NotLoadedError` (a loaded value lives in the object's
    ``__dict__``, which Python reads before this descriptor)."""

    __slots__ = (
        "_resolved",
        "annotation",
        "back",
        "collection",
        "kind",
        "link",
        "link_local",
        "link_remote",
        "local",
        "name",
        "owner",
        "remote",
        "spec",
        "target",
    )

    def __init__(self, owner: type, name: str, annotation: Any, spec: RelationshipSpec) -> None:
        self.owner = owner
        self.name = name
        self.annotation = annotation
        self.spec = spec
        self._resolved = False
        self.collection = False
        self.kind: RelationKind = RelationKind.MANY_TO_ONE
        self.target: type = object
        #: The columns the relationship joins: ``local`` of the owner, ``remote`` of the target
        #: (many-to-one: the owner's foreign key and the target's key; one-to-many and one-to-one:
        #: the owner's key and the target's foreign key; many-to-many: both keys).
        self.local: Column[Any] = None  # type: ignore[assignment]
        self.remote: Column[Any] = None  # type: ignore[assignment]
        self.link: Mapper | None = None
        self.link_local: Column[Any] | None = None  # the link's key to the owner
        self.link_remote: Column[Any] | None = None  # the link's key to the target
        self.back: Relationship | None = None

    def __repr__(self) -> str:
        return f"{self.owner.__name__}.{self.name}"

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        raise NotLoadedError(
            f"{self!r} of {_describe(obj)} is not loaded, and aiouow never loads behind your back: "
            f"load it with `await session.load(obj, {self!r})` (for many objects at once), or with "
            f"`select({self.owner.__name__}).load({self!r})` when querying"
        )

    # -- conditions ---------------------------------------------------------------------------
    def has(self, condition: Any = None) -> Expression:
        """For a reference: ``EXISTS`` the related row (meeting ``condition``, a condition on the
        related entity's fields). ``~Hero.team.has()``: no related row."""
        return self._exists("has", condition, collection=False)

    def any(self, condition: Any = None) -> Expression:
        """For a collection: ``EXISTS`` a related row meeting ``condition`` (any row when None)."""
        return self._exists("any", condition, collection=True)

    def _exists(self, what: str, condition: Any, *, collection: bool) -> Expression:
        from ._expressions import Exists, columns_in

        self.resolve()
        if self.collection is not collection:
            other = "any" if self.collection else "has"
            kind = "collection" if self.collection else "reference"
            raise QueryError(f"cannot build {self!r}.{what}(): {self!r} is a {kind}: use .{other}()")
        if condition is not None:
            if not isinstance(condition, Expression):
                raise QueryError(
                    f"cannot build {self!r}.{what}({condition!r}): expected a condition on {self.target.__name__}"
                )
            for column in columns_in(condition):
                if column.entity is not self.target:
                    raise QueryError(
                        f"cannot build {self!r}.{what}(): {column!r} is not a field of {self.target.__name__}"
                    )
        return Exists(self, condition)

    # -- resolution ---------------------------------------------------------------------------
    @property
    def resolved(self) -> bool:
        return self._resolved

    def resolve(self) -> Relationship:
        """Work out the kind and the columns (once; a `MappingError` names class and field)."""
        if not self._resolved:
            self._resolve()
            self._resolved = True  # (before the other side, which compares against this one)
            _mapper(self.target).incoming.append(self)
            holder = self.owner if self.kind is RelationKind.MANY_TO_ONE else self.target
            if self.kind is not RelationKind.MANY_TO_MANY:
                _mapper(holder).watched.add((self.local if holder is self.owner else self.remote).name)
            else:
                assert self.link is not None
                self.link.through.append(self)
            if self.spec.back_populates is not None:
                self._resolve_back(self.target)
        return self

    def _fail(self, why: str) -> MappingError:
        return MappingError(f"cannot map {self!r}: {why}")

    def _resolve(self) -> None:
        target, collection = self._target()
        self.target, self.collection = target, collection
        owner_m, target_m = _mapper(self.owner), _mapper(target)
        if self.spec.link is not None:
            if not collection:
                raise self._fail("link= makes a many-to-many collection: annotate it list[...]")
            self._resolve_link(owner_m, target_m)
        elif collection:
            self.kind = RelationKind.ONE_TO_MANY
            self.remote = self._foreign_key(target_m, owner_m, "the collection's entity")
            self.local = _referenced(owner_m, self.remote, self)
        else:
            own = self._foreign_keys(owner_m, target_m)
            if own and (self.spec.fk is None or self.spec.fk in {c.name for c in own}):
                self.kind = RelationKind.MANY_TO_ONE
                self.local = self._pick(own, "this entity")
                self.remote = _referenced(target_m, self.local, self)
            else:
                self.kind = RelationKind.ONE_TO_ONE
                self.remote = self._foreign_key(target_m, owner_m, "the referenced entity")
                if not (self.remote.unique or (self.remote.primary_key and len(target_m.pk) == 1)):
                    raise self._fail(
                        f"{target_m.name}.{self.remote.name} is not unique, so {self.name} could name several "
                        f"{target_m.name} objects: make it unique (one-to-one) or annotate list[{target_m.name}]"
                    )
                self.local = _referenced(owner_m, self.remote, self)

    def _target(self) -> tuple[type, bool]:
        annotation = self.annotation
        if isinstance(annotation, str):
            module = sys.modules.get(self.owner.__module__)
            try:
                annotation = eval(annotation, vars(module) if module else {}, _EntityNames(self.owner))  # noqa: S307
            except MappingError:
                raise
            except Exception as exc:
                raise self._fail(f"the annotation {self.annotation!r} cannot be resolved ({exc})") from None
        origin = typing.get_origin(annotation)
        collection = origin is list
        if collection:
            (annotation,) = typing.get_args(annotation)
        elif origin in (typing.Union, types.UnionType):
            rest = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                raise self._fail(f"the annotation {self.annotation!r} must be X, X | None or list[X]")
            annotation = rest[0]
        if isinstance(annotation, typing.ForwardRef):
            annotation = annotation.__forward_arg__
        if isinstance(annotation, str):
            names = _EntityNames(self.owner)
            module = sys.modules.get(self.owner.__module__)
            annotation = (vars(module) if module else {}).get(annotation) or names.get(annotation) or names[annotation]
        if not isinstance(annotation, type) or "__aiouow_mapper__" not in annotation.__dict__:
            raise self._fail(f"{annotation!r} is not an entity class")
        return annotation, collection

    def _foreign_keys(self, holder: Mapper, to: Mapper) -> list[Column[Any]]:
        return [c for c, table, _ in holder.foreign_keys if table == to.table]

    def _pick(self, candidates: list[Column[Any]], where: str) -> Column[Any]:
        if self.spec.fk is not None:
            chosen = [c for c in candidates if c.name == self.spec.fk]
            if not chosen:
                names = ", ".join(c.name for c in candidates) or "none"
                raise self._fail(
                    f"fk={self.spec.fk!r} is not a foreign key of {where} to the other (candidates: {names})"
                )
            return chosen[0]
        if len(candidates) > 1:
            names = ", ".join(c.name for c in candidates)
            raise self._fail(f"several foreign keys could serve ({names}): name one with fk=")
        return candidates[0]

    def _foreign_key(self, holder: Mapper, to: Mapper, where: str) -> Column[Any]:
        candidates = self._foreign_keys(holder, to)
        if not candidates:
            raise self._fail(f"{holder.name} has no foreign key to {to.table!r}, so {where} cannot point back")
        return self._pick(candidates, holder.name)

    def _resolve_link(self, owner_m: Mapper, target_m: Mapper) -> None:
        link = self.spec.link
        if isinstance(link, str):
            link = _EntityNames(self.owner).get(link) or _EntityNames(self.owner)[link]
        try:
            link_m = _mapper(link)
        except MappingError:
            raise self._fail(f"link={self.spec.link!r} is not an entity class") from None
        to_owner = self._foreign_keys(link_m, owner_m)
        to_target = self._foreign_keys(link_m, target_m)
        if owner_m is target_m:
            raise self._fail("a many-to-many from an entity to itself is not supported yet (use two one-to-many)")
        if len(to_owner) != 1 or len(to_target) != 1:
            raise self._fail(
                f"the link entity {link_m.name} needs exactly one foreign key to {owner_m.table!r} and one to "
                f"{target_m.table!r}"
            )
        self.kind = RelationKind.MANY_TO_MANY
        self.link, self.link_local, self.link_remote = link_m, to_owner[0], to_target[0]
        self.local = _referenced(owner_m, to_owner[0], self)
        self.remote = _referenced(target_m, to_target[0], self)

    def _resolve_back(self, target: type) -> None:
        back = _mapper(target).relationships.get(self.spec.back_populates or "")
        if back is None:
            raise self._fail(f"back_populates={self.spec.back_populates!r}: {target.__name__} has no such relationship")
        back.resolve()
        if back.target is not self.owner or {back.local, back.remote} != {self.local, self.remote}:
            raise self._fail(f"back_populates={self.spec.back_populates!r} does not go through the same keys")
        self.back = back


def _referenced(mapper: Mapper, fk: Column[Any], rel: Relationship) -> Column[Any]:
    """The column of ``mapper`` that the foreign key ``fk`` references (its single-column key)."""
    _, _, column_name = (fk.foreign_key or "").partition(".")
    found = [c for c in mapper.columns if c.column_name == column_name]
    if not found or not (found[0].primary_key and len(mapper.pk) == 1):
        raise rel._fail(
            f"{fk!r} references {fk.foreign_key!r}, which is not the single-column primary key of {mapper.name}"
        )
    return found[0]


def settle_new_references(mapper: Mapper, d: dict[str, Any]) -> None:
    """``__init__`` of an entity with relationships: a many-to-one reference whose foreign key was
    given is not loaded (the row it names is not known), rather than a wrong None."""
    references = mapper.compiled.get("references by key")
    if references is None:  # (resolved at the first object: errors show early)
        references = mapper.compiled["references by key"] = [
            (r.local.name, r.name)
            for r in mapper.relationships.values()
            if r.resolve().kind is RelationKind.MANY_TO_ONE
        ]
    for key, name in references:
        if d.get(key) is not None:
            d.pop(name, None)


def rel(attribute: Any) -> Relationship:
    """Type ``Hero.team`` as the relationship it is at run time, for strict type checkers (which
    see the value type): ``aiouow.rel(Hero.team).has(Team.name == "Z")``."""
    if not isinstance(attribute, Relationship):
        raise QueryError(f"cannot use {attribute!r} as a relationship: pass a class attribute such as Hero.team")
    return attribute


def unload_references(obj: Any, mapper: Mapper, field: str) -> None:
    """Unload the object's references that go through its foreign-key field ``field``."""
    d = obj.__dict__
    for rel in mapper.relationships.values():
        if rel.resolved and rel.local.name == field and not rel.collection and rel.name in d:
            changing(obj, rel.name)
            del d[rel.name]


def unload_touching(objects: Iterable[Any], mappers: Iterable[Mapper]) -> None:
    """Unload every loaded relationship that goes through rows of ``mappers`` (written by a flush,
    put back by a rollback, read again by a refresh): what they hold may no longer be true."""
    touched = set(mappers)
    if not touched:
        return
    for tracker in objects:
        mapper = tracker.mapper
        rels = [
            r
            for r in mapper.relationships.values()
            if r.resolved
            and (mapper in touched or _mapper(r.target) in touched or (r.link is not None and r.link in touched))
        ]
        if rels:
            names = [r.name for r in rels]
            for obj in tracker.held():
                d = obj.__dict__
                for name in names:
                    if name in d:
                        changing(obj, name)
                        del d[name]


def _mapper(cls: Any) -> Mapper:
    from ._mapping import mapper_of  # (the mapping module imports this one)

    return mapper_of(cls)


def _describe(obj: Any) -> str:
    from ._mapping import describe

    return describe(obj)


def is_collection(annotation: Any) -> bool:
    """Whether a relationship's annotation is ``list[...]`` (read without resolving its names)."""
    if isinstance(annotation, str):
        return annotation.replace(" ", "").startswith(("list[", "List[", "typing.List["))
    return typing.get_origin(annotation) is list
