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

from mypy.nodes import ARG_POS, TypeInfo
from mypy.plugin import AttributeContext, FunctionSigContext, MethodSigContext, Plugin
from mypy.typeops import make_simplified_union
from mypy.types import (
    CallableType,
    FunctionLike,
    Instance,
    NoneType,
    ProperType,
    TupleType,
    Type,
    UnionType,
    get_proper_type,
)

ENTITY = "aiouow._mapping.Entity"
AGGREGATES_OF_THEIR_VALUE = {f"aiouow._aggregates._Func.{fn}" for fn in ("sum", "min", "max")}
AVERAGE = "aiouow._aggregates._Func.avg"
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

    # What takes columns is typed for values (as PEP 681 types fields). These hooks give a call that
    # passes columns a signature of its own, without type variables, computed from its arguments:
    # select() rows of the columns' values, aggregates of their values, col() of a column. (Hooks on
    # the return type alone are not enough: mypy infers type variables from the call's context too,
    # and would then expect values where columns are passed.)
    def get_function_signature_hook(self, fullname: str) -> Callable[[FunctionSigContext], FunctionLike] | None:
        if fullname == "aiouow._query.select":
            return _select_signature
        if fullname == "aiouow._expressions.col":
            return _col_signature
        return None

    def get_method_signature_hook(self, fullname: str) -> Callable[[MethodSigContext], FunctionLike] | None:
        if fullname in AGGREGATES_OF_THEIR_VALUE or fullname == AVERAGE:
            return _aggregate_signature
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


def _arguments(ctx: FunctionSigContext | MethodSigContext) -> list[Type] | None:
    """The types of a call's positional arguments, when at least one of them is a column."""
    types = [ctx.api.get_expression_type(e) for group in ctx.args for e in group]
    if not any(_value_of(t) is not t for t in types):
        return None
    return types


def _concrete(sig: CallableType, arguments: list[Type], result: Type) -> CallableType:
    n = len(arguments)
    return sig.copy_modified(
        arg_types=arguments, arg_kinds=[ARG_POS] * n, arg_names=[None] * n, ret_type=result, variables=[]
    )


def _select_signature(ctx: FunctionSigContext) -> FunctionLike:
    arguments = _arguments(ctx)
    if arguments is None:
        return ctx.default_signature
    values = [_value_of(t) for t in arguments]
    row = TupleType(values, ctx.api.named_generic_type("builtins.tuple", [make_simplified_union(values)]))
    return _concrete(ctx.default_signature, arguments, ctx.api.named_generic_type("aiouow.Select", [row]))


def _col_signature(ctx: FunctionSigContext) -> FunctionLike:
    arguments = _arguments(ctx)
    if arguments is None or len(arguments) != 1:
        return ctx.default_signature
    return _concrete(ctx.default_signature, arguments, arguments[0])


def _aggregate_signature(ctx: MethodSigContext) -> FunctionLike:
    """``func.max(Hero.age)`` is an ``int | None``; ``func.avg``: Decimal for a Decimal column, else float."""
    arguments = _arguments(ctx)
    if arguments is None or len(arguments) != 1:
        return ctx.default_signature
    value = get_proper_type(_value_of(arguments[0]))
    if ctx.default_signature.name is not None and ctx.default_signature.name.startswith("avg"):
        items = [get_proper_type(i) for i in value.items] if isinstance(value, UnionType) else [value]
        decimal = any(isinstance(i, Instance) and i.type.fullname == "decimal.Decimal" for i in items)
        value = ctx.api.named_generic_type("decimal.Decimal" if decimal else "builtins.float", [])
    return _concrete(ctx.default_signature, arguments, make_simplified_union([value, NoneType()]))


def plugin(version: str) -> type[Plugin]:
    """mypy's entry point."""
    return AiouowPlugin
