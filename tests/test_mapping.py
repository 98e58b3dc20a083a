"""Entity mapping: class creation, __init__, repr, MappingError."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from aiouow import Column, Entity, MappingError, ObjectState, field
from aiouow._mapping import mapper_of

from .models import AllTypes, Doc, OrderLine, Tag, User


class TestEntityClass:
    def test_generated_key_is_not_an_init_argument_and_reads_none(self) -> None:
        """A single int primary key with no default is generated: not in __init__, None until flushed."""
        u = User(name="a", email="a@x")
        assert u.id is None
        with pytest.raises(TypeError):
            User(id=1, name="a", email="a@x")  # type: ignore[call-arg]

    def test_init_is_keyword_only_with_defaults_and_factories(self) -> None:
        """__init__ takes keywords only; defaults and default_factory fill the rest."""
        u = User(name="a", email="a@x")
        assert u.active is True
        assert isinstance(u.created, dt.datetime)
        assert u.profile is None
        with pytest.raises(TypeError):
            User("a", "a@x")  # type: ignore[misc]

    def test_missing_required_argument_is_a_type_error(self) -> None:
        """A field without a default is a required keyword."""
        with pytest.raises(TypeError, match="email"):
            User(name="a")  # type: ignore[call-arg]

    def test_composite_and_natural_keys_are_init_arguments(self) -> None:
        """Keys that the database does not generate are ordinary arguments."""
        line = OrderLine(order_id=1, line=2, sku="x")
        assert (line.order_id, line.line) == (1, 2)
        assert Tag(code="py", label="Python").code == "py"

    def test_version_field_starts_as_none(self) -> None:
        """A version field is managed: not in __init__, set to 1 by the INSERT."""
        assert Doc(title="t").version is None

    def test_instance_dict_holds_only_the_fields(self) -> None:
        """aiouow keeps its bookkeeping in a slot: ``vars(obj)`` is the object's data, and a
        five-field object's dict stays at its five-key size."""
        tag = Tag(code="a", label="b")
        assert vars(tag) == {"code": "a", "label": "b"}
        made = object.__new__(Tag)  # without __init__: the slot is unset, and that is fine
        made.code = "x"
        assert vars(made) == {"code": "x"}

    def test_repr_lists_fields(self) -> None:
        """repr() shows every field, dataclass style."""
        assert repr(Tag(code="py", label="Python")) == "Tag(code='py', label='Python')"

    def test_equality_and_hash_stay_by_identity(self) -> None:
        """Two objects with equal fields are different objects (one object per row)."""
        a, b = Tag(code="x", label="y"), Tag(code="x", label="y")
        assert a != b
        assert len({a, b}) == 2

    def test_class_attributes_are_columns(self) -> None:
        """Class attributes are Column objects carrying the mapping."""
        assert isinstance(User.email, Column)
        assert User.email.unique  # type: ignore[attr-defined]
        assert mapper_of(User).table == "users"
        assert [c.name for c in mapper_of(User).pk] == ["id"]

    def test_post_init_runs(self) -> None:
        """__post_init__, when defined, runs after the fields are set."""

        class Slug(Entity, table="slugs"):
            id: int = field(primary_key=True)
            title: str
            slug: str = ""

            def __post_init__(self) -> None:
                self.slug = self.title.lower().replace(" ", "-")

        assert Slug(title="Hello World").slug == "hello-world"

    def test_abstract_base_passes_fields_on(self) -> None:
        """An abstract entity maps no table; its fields are inherited."""

        class Stamped(Entity, abstract=True):
            created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

        class Post(Stamped, table="posts"):
            id: int = field(primary_key=True)
            body: str

        assert [c.name for c in mapper_of(Post).columns] == ["created", "id", "body"]
        with pytest.raises(MappingError, match="not a concrete"):
            mapper_of(Stamped)

    def test_table_name_defaults_to_snake_case(self) -> None:
        """Without table=, the table is the class name in snake_case."""

        class BlogPost(Entity):
            id: int = field(primary_key=True)

        assert mapper_of(BlogPost).table == "blog_post"

    def test_all_types_map(self) -> None:
        """Every supported annotation maps."""
        kinds = {c.name: c.ctype.kind.value for c in mapper_of(AllTypes).columns}
        assert kinds["dec"] == "decimal" and kinds["color"] == "enum" and kinds["data"] == "json"


def _define(annotation: Any, **options: Any) -> None:
    ns: dict[str, Any] = {"__annotations__": {"id": int, "x": annotation}, "id": field(primary_key=True)}
    if options:
        ns["x"] = field(**options)
    type("Bad", (Entity,), ns, table="bad")


class TestMappingErrors:
    @pytest.mark.parametrize(
        ("annotation", "options", "message"),
        [
            (list[int], {}, "needs field\\(json=True\\)"),
            (complex, {}, "not a supported column type"),
            (int | str, {}, "only `T \\| None`"),
            (str, {"default": 1}, "the default expects str"),
            (str, {"default": "a", "default_factory": str}, "not both"),
            (int, {"default": [1]}, "mutable default"),
            (str, {"version": True}, "a version field must be a non-nullable int"),
            (str, {"foreign_key": "users"}, "table.column"),
            (str, {"timezone": True}, "datetime fields only"),
            (str, {"column": "bad name"}, "not a plain SQL identifier"),
        ],
    )
    def test_bad_field_fails_at_class_creation(self, annotation: Any, options: dict[str, Any], message: str) -> None:
        """A field that cannot be mapped raises MappingError naming the class and field."""
        with pytest.raises(MappingError, match=rf"Bad\.x.*{message}"):
            _define(annotation, **options)

    def test_no_primary_key(self) -> None:
        """An entity needs a primary key."""
        with pytest.raises(MappingError, match="NoKey: no primary key"):

            class NoKey(Entity, table="nokey"):
                name: str

    def test_nullable_primary_key(self) -> None:
        """A primary key cannot be nullable."""
        with pytest.raises(MappingError, match="cannot be nullable"):

            class K(Entity, table="k"):
                id: int | None = field(primary_key=True)

    def test_two_fields_one_column(self) -> None:
        """Two fields may not share a column name."""
        with pytest.raises(MappingError, match="both use column 'a'"):

            class Two(Entity, table="two"):
                id: int = field(primary_key=True)
                a: int
                b: int = field(column="a")

    def test_unresolvable_annotation(self) -> None:
        """A string annotation that cannot be resolved names the class."""
        with pytest.raises(MappingError, match="Unres: an annotation cannot be resolved"):

            class Unres(Entity, table="unres"):
                id: int = field(primary_key=True)
                x: NotDefinedAnywhere  # type: ignore[name-defined]  # noqa: F821

    def test_enum_with_mixed_values(self) -> None:
        """Enums are stored by value: values must be all str or all int."""
        import enum

        class Mixed(enum.Enum):
            A = 1
            B = "b"

        with pytest.raises(MappingError, match="all-str or all-int"):
            _define(Mixed)

    def test_non_entity_is_rejected_by_the_session_api(self) -> None:
        """mapper_of a plain class raises MappingError."""
        with pytest.raises(MappingError, match="not a concrete aiouow Entity"):
            mapper_of(object())

    def test_object_state_enum_values(self) -> None:
        """ObjectState has the five documented members."""
        assert {s.name for s in ObjectState} == {"TRANSIENT", "PENDING", "PERSISTENT", "DELETED", "DETACHED"}


class TestInitNames:
    def test_field_names_cannot_shadow_init_internals(self) -> None:
        """Fields named like __init__'s own locals (self, d, MISSING) work."""

        class Odd(Entity, table="odd"):
            id: int = field(primary_key=True)
            self: str = "s"
            d: int = field(default_factory=lambda: 7)
            MISSING: str = "m"

        o = Odd(self="me", MISSING="x")
        assert (o.self, o.d, o.MISSING) == ("me", 7, "x")


def _entity_with_field(name: str, *, column: str | None = "c") -> type:
    """An entity class whose second field is called ``name`` (annotations set by hand, as a
    hostile or generated class could)."""
    namespace: dict[str, Any] = {
        "__annotations__": {"id": int, name: int},
        "id": field(primary_key=True),
        name: field(column=column, default=1) if column else 1,
    }
    return type("Hostile", (Entity,), namespace, table="hostile_names")


class TestFieldNames:
    @pytest.mark.parametrize(
        "name",
        [
            "x=__import__('os').system('echo pwned') or 1",  # would run when the class is defined
            "a b",
            "1st",
            "",
            "class",  # a keyword: SyntaxError in the generated __init__
            "lambda",
        ],
    )
    def test_a_name_that_is_not_an_identifier_is_refused(self, name: str, capfd: pytest.CaptureFixture[str]) -> None:
        """Only a plain Python identifier reaches the generated __init__: nothing runs, MappingError names it."""
        with pytest.raises(MappingError, match="is not a Python identifier"):
            _entity_with_field(name)
        assert "pwned" not in capfd.readouterr().out

    @pytest.mark.parametrize("name", ["_aiouow_d", "_aiouow_state", "_aiouow_self", "__dict__", "__init__"])
    def test_a_name_aiouow_or_python_uses_is_refused(self, name: str) -> None:
        """Names that clash with generated code, the state slot or Python's own are MappingError."""
        with pytest.raises(MappingError, match="is reserved"):
            _entity_with_field(name)

    def test_soft_keywords_and_leading_underscores_are_fields(self) -> None:
        """``match``, ``type`` and ``_private`` are ordinary identifiers and map."""
        for name in ("match", "type", "_private"):
            cls = _entity_with_field(name, column=None)
            obj = cls(**{name: 5})
            assert getattr(obj, name) == 5


class TestGeneratedCode:
    def test_tracebacks_through_generated_code_show_its_source(self) -> None:
        """A generated __init__ is registered with linecache: a traceback shows its line, not <string>."""
        import traceback

        def boom() -> list[int]:
            raise RuntimeError("factory failed")

        class Factoried(Entity, table="factoried"):
            id: int = field(primary_key=True)
            items: list[int] = field(json=True, default_factory=boom)

        with pytest.raises(RuntimeError) as info:
            Factoried()
        text = "".join(traceback.format_exception(info.value))
        assert "<locals>.Factoried.__init__ #" in text  # <aiouow: ....Factoried.__init__ #N>
        assert "_aiouow_factory_items()" in text  # the generated line itself
        assert "<string>" not in text


class TestNamesThatWouldShareATable:
    def test_table_names_differing_only_in_case_are_refused(self) -> None:
        class Upper(Entity, table="adv_Case_t"):
            id: int = field(primary_key=True)

        with pytest.raises(MappingError, match=r"'adv_case_t' differs only in case from Upper's 'adv_Case_t'"):

            class Lower(Entity, table="adv_case_t"):
                id: int = field(primary_key=True)

        class Again(Entity, table="adv_Case_t"):  # the same name again (a class redefined) is fine
            id: int = field(primary_key=True)

        assert Upper and Again

    def test_names_longer_than_postgresql_keeps_are_refused(self) -> None:
        with pytest.raises(MappingError, match="longer than 63 characters"):

            class LongTable(Entity, table="t" * 64):
                id: int = field(primary_key=True)

        with pytest.raises(MappingError, match=r"column name .* longer than 63 characters"):

            class LongColumn(Entity, table="long_column"):
                id: int = field(primary_key=True)
                x: int = field(column="c" * 64)

        class Longest(Entity, table="t" * 63):
            id: int = field(primary_key=True)

        assert Longest

    def test_column_names_differing_only_in_case_are_refused(self) -> None:
        with pytest.raises(MappingError, match="differ only in case"):

            class Cased(Entity, table="cased"):
                id: int = field(primary_key=True)
                Name: str
                name: str

    def test_long_constraint_names_stay_whole_and_distinct(self) -> None:
        from aiouow.dialects._base import derived_name

        a = derived_name("ix", "t" * 60, "alpha")
        b = derived_name("ix", "t" * 60, "alphb")
        assert len(a) == len(b) == 63 and a != b
        assert derived_name("ix", "users", "email") == "ix_users_email"


class TestUnknownAttributes:
    def test_setting_an_attribute_that_is_not_a_field_is_an_attribute_error(self) -> None:
        user = User(name="a", email="a@x")
        with pytest.raises(
            AttributeError, match=r"cannot set User.emial: User has no field 'emial' \(fields: id, name"
        ):
            user.emial = "typo"  # type: ignore[attr-defined]
        assert "emial" not in vars(user)

    def test_declared_properties_and_fields_can_be_set(self) -> None:
        class WithProperty(Entity, table="with_property"):
            id: int = field(primary_key=True)
            first: str = ""

            @property
            def shout(self) -> str:
                return self.first.upper()

            @shout.setter
            def shout(self, value: str) -> None:
                self.first = value.lower()

        obj = WithProperty()
        obj.shout = "HEY"
        obj.first += "!"
        assert obj.first == "hey!" and obj.shout == "HEY!"
