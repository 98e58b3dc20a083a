"""The mypy plugin: an entity's field, read on the class, is the `aiouow.Column` it is at run time.

Enable it in the mypy configuration::

    [tool.mypy]
    plugins = ["aiouow.mypy"]

Without it, mypy types ``Hero.age`` as the field's value type (PEP 681 says so), which is right for
``hero.age`` but not for a query: ``Hero.age < 30`` is an error when ``age`` may be None, and
``Hero.id.in_([1, 2])`` or ``Hero.name.desc()`` need `aiouow.col`. With it, ``Hero.age`` is a
``Column[int | None]`` on the class (objects keep their value types), and `aiouow.select`,
`aiouow.func` and `aiouow.col` take columns, so ``select(Hero.name, func.count(Hero.id))`` is still
a selection of ``tuple[str, int]`` rows. Relationships (``Hero.team``) are left as they are.

Type checkers without plugins (pyright) keep the PEP 681 types: write ``col(Hero.age) < 30`` there.
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.nodes import TypeInfo
from mypy.plugin import AttributeContext, FunctionContext, MethodContext, Plugin
from mypy.typeops import make_simplified_union
from mypy.types import Instance, NoneType, ProperType, TupleType, Type, UnionType, get_proper_type

ENTITY = "aiouow._mapping.Entity"
AGGREGATES_OF_THEIR_VALUE = {f"aiouow._aggregates._Func.{fn}" for fn in ("sum", "min", "max")}
#: Looked up by its public name (the checker resolves names through the package's namespace).
COLUMN = "aiouow.Column"


class AiouowPlugin(Plugin):
    def get_class_attribute_hook(self, fullname: str) -> Callable[[AttributeContext], Type] | None:
        owner, _, name = fullname.rpartition(".")
        if name.startswith("_"):
            return None
        node = self.lookup_fully_qualified(owner)
        if node is None or not isinstance(node.node, TypeInfo) or not _is_entity(node.node):
            return None
        if name not in _field_names(node.node):  # methods, class variables
            return None
        return _as_column

    # What takes columns is typed for values (as PEP 681 types fields); these hooks give back the types
    # a value would have given: select() rows of values, aggregates of values, col() of a column.
    def get_function_hook(self, fullname: str) -> Callable[[FunctionContext], Type] | None:
        if fullname == "aiouow._query.select":
            return _select_rows_of_values
        if fullname == "aiouow._expressions.col":
            return _col_of_a_column
        return None

    def get_method_hook(self, fullname: str) -> Callable[[MethodContext], Type] | None:
        if fullname in AGGREGATES_OF_THEIR_VALUE:
            return _aggregate_of_values
        if fullname == "aiouow._aggregates._Func.avg":
            return _average
        return None


def _field_names(info: TypeInfo) -> set[str]:
    """The fields mypy's dataclass support found on the class (PEP 681: ``Entity`` is a dataclass transform)."""
    attributes = info.metadata.get("dataclass", {}).get("attributes", [])
    return {a["name"] for a in attributes}


def _is_entity(info: TypeInfo) -> bool:
    return info.fullname != ENTITY and info.has_base(ENTITY)


def _as_column(ctx: AttributeContext) -> Type:
    value = ctx.default_attr_type
    if _is_relationship(get_proper_type(value)):
        return value
    return ctx.api.named_generic_type(COLUMN, [value])


def _is_relationship(value: ProperType) -> bool:
    """A reference (``Team | None``) or a collection (``list[Hero]``) of entities, not a field's value."""
    items = [get_proper_type(t) for t in value.items] if isinstance(value, UnionType) else [value]
    for item in items:
        if isinstance(item, Instance):
            if _is_entity(item.type):
                return True
            if item.type.fullname in ("builtins.list", "aiouow._graphwrite.RelatedList") and item.args:
                arg = get_proper_type(item.args[0])
                if isinstance(arg, Instance) and _is_entity(arg.type):
                    return True
    return False


def _value_of(t: Type) -> Type:
    """``X`` for a ``Column[X]``, else the type itself."""
    proper = get_proper_type(t)
    if isinstance(proper, Instance) and proper.type.fullname == "aiouow._expressions.Column" and proper.args:
        return proper.args[0]
    return t


def _unwrapped(t: Type) -> Type:
    """A type with every ``Column[X]`` of its union (if it is one) replaced by ``X``."""
    proper = get_proper_type(t)
    if isinstance(proper, UnionType):
        return make_simplified_union([_value_of(i) for i in proper.items])
    return _value_of(t)


def _select_rows_of_values(ctx: FunctionContext) -> Type:
    selected = get_proper_type(ctx.default_return_type)
    if isinstance(selected, Instance) and selected.args:
        row = get_proper_type(selected.args[0])
        if isinstance(row, TupleType):
            return selected.copy_modified(args=[row.copy_modified(items=[_value_of(i) for i in row.items])])
    return ctx.default_return_type


def _col_of_a_column(ctx: FunctionContext) -> Type:
    if ctx.arg_types and ctx.arg_types[0]:
        given = get_proper_type(ctx.arg_types[0][0])
        if isinstance(given, Instance) and given.type.fullname == "aiouow._expressions.Column":
            return given
    return ctx.default_return_type


def _aggregate_of_values(ctx: MethodContext) -> Type:
    return _unwrapped(ctx.default_return_type)


def _average(ctx: MethodContext) -> Type:
    """``func.avg(Hero.age)``: a Decimal column averages to Decimal, other numbers to float."""
    if not (ctx.arg_types and ctx.arg_types[0]):
        return ctx.default_return_type
    given = ctx.arg_types[0][0]
    if _value_of(given) is given:
        return ctx.default_return_type  # a value, typed by the overloads
    value = get_proper_type(_value_of(given))
    items = [get_proper_type(i) for i in value.items] if isinstance(value, UnionType) else [value]
    decimal = any(isinstance(i, Instance) and i.type.fullname == "decimal.Decimal" for i in items)
    result = ctx.api.named_generic_type("decimal.Decimal" if decimal else "builtins.float", [])
    return make_simplified_union([result, NoneType()])


def plugin(version: str) -> type[Plugin]:
    """mypy's entry point."""
    return AiouowPlugin
