"""Entity mapping: ``Entity`` subclasses, ``field()`` and the per-class ``Mapper``."""

from __future__ import annotations

import builtins
import copy
import dataclasses
import inspect
import keyword
import re
import sys
import typing
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, dataclass_transform

from . import _types
from ._codegen import compile_function
from ._expressions import Column
from ._fields import MISSING, ON_DELETE_SQL, FieldSpec, field
from ._relations import (
    Relationship,
    RelationshipSpec,
    is_collection,
    register_entity,
    settle_new_references,
    unload_references,
)
from ._state import STATE_ATTR
from ._types import MAX_IDENTIFIER, ColumnType, Kind, check
from .errors import MappingError, QueryError

E = TypeVar("E", bound="Entity")


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOO_LONG = (
    f"is longer than {MAX_IDENTIFIER} characters, the most PostgreSQL keeps "
    "(it cuts longer names, so two of them could name the same table or column)"
)
#: Names aiouow uses on entity classes, objects and in generated code (``_aiouow_state``,
#: ``_aiouow_self`` ...): no field may take one.
RESERVED_PREFIX = "_aiouow"


class Mapper:
    """How one entity class maps to one table."""

    __slots__ = (
        "column_names",
        "columns",
        "compiled",
        "entity",
        "foreign_keys",
        "generated_pk",
        "immutable",
        "incoming",
        "insert_columns",
        "json_columns",
        "listeners",
        "names",
        "pk",
        "pk_name",
        "pk_positions",
        "relationships",
        "settable",
        "single_names",
        "table",
        "through",
        "version",
        "watched",
    )

    def __init__(self, entity: type, table: str, columns: tuple[Column[Any], ...]) -> None:
        self.entity = entity
        self.table = table
        self.columns = columns
        self.column_names: dict[str, Column[Any]] = {c.name: c for c in columns}
        self.names = tuple(c.name for c in columns)
        #: ``(name,)`` for every field: the changed fields of an object that changed one field.
        self.single_names = {c.name: (c.name,) for c in columns}
        self.compiled: dict[Any, Any] = {}  # generated helpers (flush row builders), by purpose
        self.pk = tuple(c for c in columns if c.primary_key)
        self.pk_positions = tuple(c.position for c in self.pk)
        gen = self.pk[0] if len(self.pk) == 1 and _is_generated(self.pk[0]) else None
        self.generated_pk: Column[Any] | None = gen
        #: The columns an INSERT whose key the database generates gives values for.
        self.insert_columns = tuple(c for c in columns if c is not gen)
        self.version: Column[Any] | None = next((c for c in columns if c.version), None)
        self.json_columns = tuple(c for c in columns if c.json)
        #: Entity-event listeners of the class's objects (`aiouow.event`): event name -> functions.
        self.listeners: dict[str, list[Any]] = {}
        #: The field of a single-column primary key (None for a composite key).
        self.pk_name: str | None = self.pk[0].name if len(self.pk) == 1 else None
        #: Fields a flush refuses to see changed: the primary key and the version.
        self.immutable = frozenset(c.name for c in columns if c.primary_key or c.version)
        #: The other fields, in column order (those `AsyncSession.merge` copies onto an object).
        self.settable = tuple(c.name for c in columns if c.name not in self.immutable)
        fks: list[tuple[Column[Any], str, str]] = []
        for c in columns:
            if c.foreign_key:
                table, _, target = c.foreign_key.partition(".")
                fks.append((c, table, target))
        self.foreign_keys = tuple(fks)
        #: The entity's relationships by name (added as the class is mapped).
        self.relationships: dict[str, Relationship] = {}
        #: Resolved relationships of other entities (and this one) that lead to this entity.
        self.incoming: list[Relationship] = []
        #: Foreign-key fields that resolved relationships go through: assigning one unloads them.
        self.watched: set[str] = set()
        #: Resolved many-to-many relationships whose link entity this is.
        self.through: list[Relationship] = []

    def __repr__(self) -> str:
        return f"<Mapper {self.entity.__name__} -> {self.table}>"

    @property
    def name(self) -> str:
        return self.entity.__name__

    def key_of_values(self, values: dict[str, Any]) -> Any:
        """The identity key for a row's values (a scalar for a single key, else a tuple)."""
        if len(self.pk) == 1:
            return values[self.pk[0].name]
        return tuple(values[c.name] for c in self.pk)

    def copied_values(self, obj: Any) -> dict[str, Any]:
        """Every field's value of ``obj``, JSON values deep-copied (so that they are not shared)."""
        d = obj.__dict__
        return {c.name: copy.deepcopy(d[c.name]) if c.json else d[c.name] for c in self.columns}

    def column(self, name: str, *, purpose: str) -> Column[Any]:
        """The column named ``name``, or a ``QueryError`` naming the entity's fields."""
        try:
            return self.column_names[name]
        except KeyError:
            known = ", ".join(self.column_names)
            raise QueryError(f"cannot {purpose}: {self.name} has no field {name!r} (fields: {known})") from None


def _is_generated(c: Column[Any]) -> bool:
    return c.ctype.kind is Kind.INT and c.default is MISSING and c.default_factory is None


def mapper_of(entity: Any) -> Mapper:
    """The mapper of an entity class (or of an entity object's class)."""
    cls = entity if isinstance(entity, type) else type(entity)
    m = cls.__dict__.get("__aiouow_mapper__")
    if m is None:
        what = cls.__name__ if isinstance(entity, type) else f"a {cls.__name__} object"
        raise MappingError(f"cannot map {what}: it is not a concrete aiouow Entity subclass (declare table=...)")
    mapper: Mapper = m
    return mapper


@dataclass_transform(kw_only_default=True, eq_default=False, field_specifiers=(field,))
class Entity:
    """Base class of mapped entities.

    ```python
    class User(Entity, table="users"):
        id: int = field(primary_key=True)
        name: str
        email: str = field(unique=True)
        active: bool = True
    ```

    Subclasses get a keyword-only ``__init__`` and a ``__repr__``; equality and hashing
    stay by identity (a session holds one object per row). Class attributes are
    `aiouow.Column` objects that build query conditions. A subclass declared with
    ``abstract=True`` maps no table and passes its fields on to its subclasses.
    """

    __aiouow_mapper__: ClassVar[Mapper]
    __aiouow_fields__: ClassVar[dict[str, FieldSpec]]
    __aiouow_relationships__: ClassVar[dict[str, tuple[Any, RelationshipSpec]]]
    __slots__ = ("_aiouow_state",)  # who tracks the object (see aiouow._tracking); subclasses keep a __dict__
    _aiouow_state: Any  # an EntityTracker, a DetachedState, or None

    def __init_subclass__(cls, *, table: str | None = None, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        specs, relations = _collect_specs(cls)
        cls.__aiouow_fields__ = specs
        cls.__aiouow_relationships__ = relations
        if abstract:
            if table is not None:
                raise MappingError(f"cannot map {cls.__name__}: an abstract entity takes no table")
            return
        if table is None:
            table = _snake(cls.__name__)
        if not _IDENT.match(table):
            raise MappingError(f"cannot map {cls.__name__}: table name {table!r} is not a plain SQL identifier")
        if len(table) > MAX_IDENTIFIER:
            raise MappingError(f"cannot map {cls.__name__}: table name {table!r} {_TOO_LONG}")
        _map_class(cls, table, specs, relations)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """An entity class as a pydantic (and FastAPI) type: see `aiouow._pydantic`."""
        from ._pydantic import entity_core_schema

        return entity_core_schema(cls, handler)

    if not TYPE_CHECKING:  # (hidden from type checkers, which then refuse unknown attributes too)

        def __setattr__(self, name: str, value: Any) -> None:
            """The assignment hook: a field's assignment is recorded by whoever tracks the object
            (see `aiouow._tracking`), before it is made. A name that is neither a field nor an
            attribute the class declares (a property, say) is an `AttributeError`: a typo such as
            ``user.emial = ...`` would otherwise be kept, never saved, and leak into ``vars()``."""
            try:
                holder = self._aiouow_state
            except AttributeError:  # made without __init__ (object.__new__, copy): no session has seen it
                holder = None
            if holder is not None and name in holder.fields:
                d = self.__dict__
                holder.record(self, d, name, d.get(name, MISSING))
                d[name] = value  # a column: plain instance data (Column is not a descriptor)
                if name in holder.watched:  # (a foreign key that loaded relationships go through)
                    holder.key_assigned(self, name)
                return
            cls = type(self)
            mapper = cls.__dict__.get("__aiouow_mapper__")
            if mapper is not None and name in mapper.relationships:
                from ._graphwrite import assign  # (writing through relationships builds on this module)

                assign(self, mapper.relationships[name], value)
                return
            if mapper is not None and name in mapper.watched:  # a transient object's foreign key
                object.__setattr__(self, name, value)
                unload_references(self, mapper, name)
                return
            if mapper is not None and name not in mapper.column_names and not hasattr(cls, name):
                known = ", ".join(mapper.column_names)
                raise AttributeError(
                    f"cannot set {cls.__name__}.{name}: {cls.__name__} has no field {name!r} (fields: {known})",
                    name=name,
                    obj=self,
                )
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        mapper = mapper_of(self)
        d = self.__dict__
        inner = ", ".join(f"{c.name}={d.get(c.name)!r}" for c in mapper.columns)
        return f"{type(self).__name__}({inner})"


#: Stores an entity object's state in its slot (the slot's own setter: cheaper than object.__setattr__).
set_state_slot: Callable[[Any, Any], None] = Entity.__dict__[STATE_ATTR].__set__


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _collect_specs(cls: type) -> tuple[dict[str, FieldSpec], dict[str, tuple[Any, RelationshipSpec]]]:
    """The fields and the relationships (annotation and options) a class declares or inherits."""
    specs: dict[str, FieldSpec] = {}
    relations: dict[str, tuple[Any, RelationshipSpec]] = {}
    for base in reversed(cls.__mro__[1:]):
        specs.update(base.__dict__.get("__aiouow_fields__", {}))
        relations.update(base.__dict__.get("__aiouow_relationships__", {}))
    own = inspect.get_annotations(cls)
    for name, annotation in own.items():
        if _is_classvar(annotation):
            continue
        value = cls.__dict__.get(name, MISSING)
        if isinstance(value, RelationshipSpec):
            relations[name] = (annotation, value)
            continue
        if isinstance(value, Relationship):  # pragma: no cover - defensive (a mapped class's attribute)
            continue
        if isinstance(value, FieldSpec):
            spec = value
        elif isinstance(value, Column):
            spec = cls.__dict__["__aiouow_fields__"][name]  # pragma: no cover - defensive
        else:
            spec = FieldSpec(default=value)
        specs[name] = spec
    return specs, relations


class _Unresolved:
    """What a name that is not defined yet stands for while the columns' annotations are read."""


class _Lenient(dict[str, Any]):
    """Names for reading a class's annotations: the class's own, its module's, builtins, and, for
    a name not defined yet (a relationship to a class declared later), `_Unresolved`."""

    def __init__(self, cls: type) -> None:
        super().__init__(vars(cls))
        modules = (sys.modules.get(base.__module__) for base in cls.__mro__)
        self.modules = [vars(m) for m in modules if m is not None]

    def __missing__(self, name: str) -> Any:
        # A name some base's module or builtins define: let the evaluation find it there.
        if hasattr(builtins, name) or any(name in m for m in self.modules):
            raise KeyError(name)
        return _Unresolved


def _is_classvar(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith(("ClassVar", "typing.ClassVar"))
    return annotation is ClassVar or typing.get_origin(annotation) is ClassVar


def _map_class(
    cls: type, table: str, specs: dict[str, FieldSpec], relations: dict[str, tuple[Any, RelationshipSpec]]
) -> None:
    try:
        # Relationships name classes that may come later: their names resolve when first needed.
        hints = typing.get_type_hints(cls, localns=_Lenient(cls))
    except Exception as exc:
        raise MappingError(f"cannot map {cls.__name__}: an annotation cannot be resolved ({exc})") from exc
    columns: list[Column[Any]] = []
    for position, (name, spec) in enumerate(specs.items()):
        if "_Unresolved" in repr(hints[name]):  # a field's own annotation names something undefined
            raw = inspect.get_annotations(cls).get(name, hints[name])
            raise MappingError(f"cannot map {cls.__name__}: an annotation cannot be resolved ({name}: {raw})")
        columns.append(_make_column(cls, name, hints[name], spec, position))
    if not columns:
        raise MappingError(f"cannot map {cls.__name__}: it declares no fields")
    pk = [c for c in columns if c.primary_key]
    if not pk:
        raise MappingError(f"cannot map {cls.__name__}: no primary key (mark a field with field(primary_key=True))")
    versions = [c for c in columns if c.version]
    if len(versions) > 1:
        raise MappingError(
            f"cannot map {cls.__name__}: more than one version field ({', '.join(c.name for c in versions)})"
        )
    seen: dict[str, Column[Any]] = {}
    for c in columns:
        other = seen.get(c.column_name.lower())  # SQLite ignores the case of names
        if other is not None and other.column_name == c.column_name:
            raise MappingError(
                f"cannot map {cls.__name__}: fields {other.name!r} and {c.name!r} both use column {c.column_name!r}"
            )
        if other is not None:
            raise MappingError(
                f"cannot map {cls.__name__}: fields {other.name!r} and {c.name!r} use columns "
                f"{other.column_name!r} and {c.column_name!r}, which differ only in case: SQLite ignores "
                "the case of names, so both would be one column"
            )
        seen[c.column_name.lower()] = c
    _claim_table(cls, table)
    mapper = Mapper(cls, table, tuple(columns))
    for c in columns:
        if c.init is None:
            c.init = not (c is mapper.generated_pk or c.version)
        if not c.init and c is not mapper.generated_pk and not c.version and not _has_default(c):
            raise MappingError(f"cannot map {cls.__name__}: field {c.name!r} has init=False but no default")
    for c in columns:
        setattr(cls, c.name, c)
    cls.__dataclass_fields__ = _dataclass_fields(mapper)  # type: ignore[attr-defined]
    for name, (annotation, rspec) in relations.items():
        _check_field_name(cls, name)
        rel = mapper.relationships[name] = Relationship(cls, name, annotation, rspec)
        type.__setattr__(cls, name, rel)
    register_entity(cls)
    type.__setattr__(cls, "__aiouow_mapper__", mapper)
    type.__setattr__(cls, "__init__", _make_init(cls, mapper))


#: The table names of the entity classes alive, by their lower-case form: two names that differ
#: only in case name one table on SQLite, which ignores the case of identifiers.
_TABLES: weakref.WeakValueDictionary[str, type] = weakref.WeakValueDictionary()


def _claim_table(cls: type, table: str) -> None:
    other = _TABLES.get(table.lower())
    if other is not None and other.__aiouow_mapper__.table != table:  # type: ignore[attr-defined]
        raise MappingError(
            f"cannot map {cls.__name__}: table name {table!r} differs only in case from {other.__name__}'s "
            f"{other.__aiouow_mapper__.table!r}, and SQLite ignores the case of names: both would use one table"  # type: ignore[attr-defined]
        )
    _TABLES[table.lower()] = cls


def _has_default(c: Column[Any]) -> bool:
    return c.default is not MISSING or c.default_factory is not None


def _check_field_name(cls: type, name: object) -> None:
    """A field's name reaches generated source (``__init__``'s parameters): only a plain Python
    identifier that is not a keyword, and none of the names aiouow itself uses, gets there."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise MappingError(f"cannot map {cls.__name__}: field name {name!r} is not a Python identifier")
    if name.startswith(RESERVED_PREFIX) or (name.startswith("__") and name.endswith("__")):
        raise MappingError(
            f"cannot map {cls.__name__}: field name {name!r} is reserved (names starting with "
            f"{RESERVED_PREFIX!r} are aiouow's own, and dunder names Python's)"
        )


def _make_column(cls: type, name: str, annotation: Any, spec: FieldSpec, position: int) -> Column[Any]:
    _check_field_name(cls, name)
    where = f"cannot map {cls.__name__}.{name}"
    resolved = _types.resolve(annotation, json_field=spec.json, timezone=spec.timezone)
    if isinstance(resolved, str):
        raise MappingError(f"{where}: {resolved}")
    ctype: ColumnType = resolved
    if spec.default is not MISSING and spec.default_factory is not None:
        raise MappingError(f"{where}: give default or default_factory, not both")
    if isinstance(spec.default, (list, dict, set)):
        raise MappingError(f"{where}: mutable default {spec.default!r}; use default_factory")
    if spec.default is not MISSING:
        problem = _types.check(ctype, spec.default)
        if problem is not None:
            raise MappingError(f"{where}: the default {problem}")
    if spec.primary_key and ctype.nullable and ctype.kind is Kind.INT and spec.default is None:
        # SQLModel's spelling of a generated key, ``id: int | None = field(default=None,
        # primary_key=True)``: None until the INSERT gives it a value; the column is NOT NULL.
        ctype = dataclasses.replace(ctype, nullable=False)
        spec = dataclasses.replace(spec, default=MISSING, init=True if spec.init is None else spec.init)
    if spec.primary_key and ctype.nullable:
        raise MappingError(f"{where}: a primary key cannot be nullable")
    if spec.primary_key and ctype.kind is Kind.JSON:
        raise MappingError(f"{where}: a JSON field cannot be a primary key")
    if spec.version and (ctype.kind is not Kind.INT or ctype.nullable or spec.primary_key):
        raise MappingError(f"{where}: a version field must be a non-nullable int that is not the primary key")
    if spec.foreign_key is not None:
        parts = spec.foreign_key.split(".")
        if len(parts) != 2 or not all(_IDENT.match(p) for p in parts):
            raise MappingError(f"{where}: foreign_key must read 'table.column', got {spec.foreign_key!r}")
    if spec.on_delete is not None:
        if spec.on_delete not in ON_DELETE_SQL:
            raise MappingError(
                f"{where}: on_delete must be 'cascade', 'set null' or 'restrict', got {spec.on_delete!r}"
            )
        if spec.foreign_key is None:
            raise MappingError(f"{where}: on_delete= applies to a foreign key (give foreign_key=)")
        if spec.on_delete == "set null" and not ctype.nullable:
            raise MappingError(f"{where}: on_delete='set null' needs a nullable field ({name}: ... | None)")
    column_name = spec.column or name
    if not _IDENT.match(column_name):
        raise MappingError(f"{where}: column name {column_name!r} is not a plain SQL identifier")
    if len(column_name) > MAX_IDENTIFIER:
        raise MappingError(f"{where}: column name {column_name!r} {_TOO_LONG}")
    c: Column[Any] = Column()
    c.name = name
    c.column_name = column_name
    c.ctype = ctype
    c.entity = cls
    c.position = position
    c.primary_key = spec.primary_key
    c.unique = spec.unique
    c.indexed = spec.index
    c.foreign_key = spec.foreign_key
    c.on_delete = spec.on_delete
    c.json = spec.json
    c.version = spec.version
    c.default = spec.default
    c.default_factory = spec.default_factory
    c.init = spec.init
    return c


def _dataclass_fields(mapper: Mapper) -> dict[str, dataclasses.Field[Any]]:
    """The fields as `dataclasses` describes them, so that code written for dataclasses sees an
    entity's columns (``dataclasses.fields``, ``asdict``; FastAPI reads a parameter annotated with an
    entity as the request body because of it), and never its relationships or tracking state."""
    out: dict[str, dataclasses.Field[Any]] = {}
    for c in mapper.columns:
        if c.default_factory is not None:
            f: dataclasses.Field[Any] = dataclasses.field(default_factory=c.default_factory, init=bool(c.init))
        elif c.default is not MISSING:
            f = dataclasses.field(default=c.default, init=bool(c.init))
        else:
            f = dataclasses.field(init=bool(c.init))
        f.name = c.name
        f.type = c.ctype.python_type if c.ctype.kind is not Kind.JSON else Any
        f._field_type = dataclasses._FIELD  # type: ignore[attr-defined]  # (what dataclasses.fields() lists)
        out[c.name] = f
    return out


def _make_init(cls: type, mapper: Mapper) -> Callable[..., None]:
    """Build ``__init__`` as source, as dataclasses do: it runs once per object made.

    Every name the body uses besides the parameters starts with ``_aiouow_`` so that no field
    name can shadow it.
    """
    env: dict[str, Any] = {"_aiouow_MISSING": MISSING}
    params: list[str] = []
    env["_aiouow_set"] = object.__setattr__
    body: list[str] = ["_aiouow_set(_aiouow_self, '_aiouow_state', None)", "_aiouow_d = _aiouow_self.__dict__"]
    for c in mapper.columns:
        n = c.name
        default, factory = f"_aiouow_default_{n}", f"_aiouow_factory_{n}"
        if c.init:
            if c.default is not MISSING:
                env[default] = c.default
                params.append(f"{n}={default}")
                body.append(f"_aiouow_d[{n!r}] = {n}")
            elif c.default_factory is not None:
                env[factory] = c.default_factory
                params.append(f"{n}=_aiouow_MISSING")
                body.append(f"_aiouow_d[{n!r}] = {factory}() if {n} is _aiouow_MISSING else {n}")
            elif c is mapper.generated_pk:  # (given, the INSERT uses it; None: the database generates one)
                params.append(f"{n}=None")
                body.append(f"_aiouow_d[{n!r}] = {n}")
            else:
                params.append(n)
                body.append(f"_aiouow_d[{n!r}] = {n}")
        elif c.default is not MISSING:
            env[default] = c.default
            body.append(f"_aiouow_d[{n!r}] = {default}")
        elif c.default_factory is not None:
            env[factory] = c.default_factory
            body.append(f"_aiouow_d[{n!r}] = {factory}()")
        else:
            body.append(f"_aiouow_d[{n!r}] = None")
    relations = cls.__dict__["__aiouow_relationships__"]
    if relations:  # a new object's relationships are loaded (empty), and may be given
        from ._graphwrite import RelatedList, assign

        env["_aiouow_list"] = RelatedList
        env["_aiouow_assign"] = assign
        env["_aiouow_settle_references"] = settle_new_references
        env["_aiouow_relationships"] = mapper.relationships
        env["_aiouow_mapper"] = mapper
        given: list[str] = []  # (assigned after the references are settled)
        for rel_name, (annotation, _) in relations.items():
            rel = f"_aiouow_relationships[{rel_name!r}]"
            empty = f"_aiouow_list(_aiouow_self, {rel})" if is_collection(annotation) else "None"
            body.append(f"_aiouow_d[{rel_name!r}] = {empty}")
            params.append(f"{rel_name}=_aiouow_MISSING")
            given.append(f"if {rel_name} is not _aiouow_MISSING: _aiouow_assign(_aiouow_self, {rel}, {rel_name})")
        body.append("_aiouow_settle_references(_aiouow_mapper, _aiouow_d)")
        body.extend(given)
    if hasattr(cls, "__post_init__"):
        body.append("_aiouow_self.__post_init__()")
    sig = ", ".join(["_aiouow_self", "*", *params]) if params else "_aiouow_self"
    src = f"def __init__({sig}):\n    " + "\n    ".join(body)
    init: Callable[..., None] = compile_function("__init__", src, env, what=f"{cls.__qualname__}.__init__")
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = f"Create a {cls.__name__} (keyword arguments only)."
    return init


def key_argument(mapper: Mapper, pk: Any) -> Any:
    """The identity key that ``get(entity, pk)`` asks for, each value checked against its field
    (a tuple for a composite key; a one-value tuple is accepted for a single-column key)."""
    pk_cols = mapper.pk
    if len(pk_cols) == 1:
        if isinstance(pk, tuple):
            if len(pk) != 1:
                raise QueryError(f"cannot get {mapper.name}: the primary key has one field, got {pk!r}")
            pk = pk[0]
        problem = check(pk_cols[0].ctype, pk)
        if problem is not None:
            raise QueryError(f"cannot get {mapper.name}: primary key {pk_cols[0].name!r} {problem}")
        return pk
    if not isinstance(pk, tuple) or len(pk) != len(pk_cols):
        names = ", ".join(c.name for c in pk_cols)
        raise QueryError(
            f"cannot get {mapper.name}: the primary key is ({names}); pass a tuple of {len(pk_cols)} values"
        )
    for c, v in zip(pk_cols, pk, strict=True):
        problem = check(c.ctype, v)
        if problem is not None:
            raise QueryError(f"cannot get {mapper.name}: primary key {c.name!r} {problem}")
    return pk


def describe(obj: Any) -> str:
    """An entity object as errors name it: ``User(id=3)``."""
    mapper = mapper_of(obj)
    d = obj.__dict__
    keys = ", ".join(f"{c.name}={d.get(c.name)!r}" for c in mapper.pk)
    return f"{mapper.name}({keys})"
