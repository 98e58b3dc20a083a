"""Entity classes as pydantic types: what `Entity.__get_pydantic_core_schema__` builds.

FastAPI (and pydantic's ``TypeAdapter``) can then use an entity as a request body, a
``response_model`` or a return annotation:

- **validation**: an entity object passes as it is; a dict (or JSON) is validated field by field
  with pydantic (its 422 errors) and becomes ``Entity(**fields)``, a new transient object. A
  generated key is not an input (a SQLModel-style ``id: int | None = None`` key is, optionally);
  relationships are not inputs.
- **serialization**: the fields in column order, then every *loaded* relationship nested (``None``
  or ``[]`` when loaded and empty); an unloaded one is left out, never read (no IO, no
  `NotLoadedError`). An object already being serialized further up is not nested again (the back
  reference of ``back_populates`` is left out), so cycles end.
- **JSON schema**: the input fields for validation; for serialization, every field (a generated key
  marked ``readOnly``) and the relationships, optional.

pydantic is imported only when pydantic asks an entity class for its schema.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Optional

from ._fields import MISSING
from ._mapping import Mapper, mapper_of
from ._types import Kind

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler
    from pydantic_core import CoreSchema


def entity_core_schema(cls: type, handler: GetCoreSchemaHandler) -> CoreSchema:
    from pydantic import Field, create_model
    from pydantic_core import core_schema

    mapper = mapper_of(cls)
    inputs: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    for c in mapper.columns:
        annotation = _annotation(c)
        generated = c is mapper.generated_pk
        if c.init:
            if generated:
                inputs[c.name] = (annotation | None, None)
            elif c.default is not MISSING:
                inputs[c.name] = (annotation, c.default)
            elif c.default_factory is not None:
                inputs[c.name] = (annotation, Field(default_factory=c.default_factory))
            else:
                inputs[c.name] = (annotation, ...)
        read_only = {"pydantic_js_updates": {"readOnly": True}} if generated else None
        outputs[c.name] = core_schema.typed_dict_field(
            handler.generate_schema(annotation | None if generated else annotation), required=True, metadata=read_only
        )
    for name, rel in mapper.relationships.items():  # (present only when loaded)
        rel.resolve()
        nested = list[dict[str, Any]] if rel.collection else dict[str, Any] | None
        outputs[name] = core_schema.typed_dict_field(handler.generate_schema(nested), required=False)
    input_model = create_model(f"{cls.__name__}Input", **inputs)
    output_schema = core_schema.typed_dict_schema(outputs, metadata={"pydantic_js_updates": {"title": cls.__name__}})

    def build(data: Any) -> Any:
        # The fields the client sent; the entity's __init__ gives the others their defaults.
        return cls(**{name: getattr(data, name) for name in data.model_fields_set})

    from_data = core_schema.no_info_after_validator_function(build, handler.generate_schema(input_model))
    return core_schema.json_or_python_schema(
        json_schema=from_data,
        python_schema=core_schema.no_info_wrap_validator_function(
            lambda value, validate: value if isinstance(value, cls) else validate(value), from_data
        ),
        serialization=core_schema.plain_serializer_function_ser_schema(serialize, return_schema=output_schema),
    )


def serialize(obj: Any, path: frozenset[int] = frozenset()) -> dict[str, Any]:
    """The entity's fields, then its loaded relationships, nested (see the module)."""
    mapper: Mapper = mapper_of(obj)
    d = obj.__dict__
    out = {name: d[name] for name in mapper.names}
    inside = path | {id(obj)}
    for name, rel in mapper.relationships.items():
        if name not in d:
            continue  # not loaded: left out, never read
        value = d[name]
        if rel.resolve().collection:
            if any(id(o) in inside for o in value):
                continue  # (the way back up: its owner is being serialized already)
            out[name] = [serialize(o, inside) for o in value]
        elif value is None:
            out[name] = None
        elif id(value) not in inside:
            out[name] = serialize(value, inside)
    return out


def _annotation(c: Any) -> Any:
    ctype = c.ctype
    if ctype.kind is Kind.JSON:
        return Any
    base = ctype.python_type
    if ctype.kind is Kind.ENUM and not issubclass(base, enum.Enum):  # pragma: no cover
        base = Any
    return Optional[base] if ctype.nullable else base  # noqa: UP045 (a runtime type, built from a class)
