"""The compiled model of entities: what a definition means, computed once per published version.

``build_model`` turns every published entity definition of every installed app into an
:class:`EntityModel` -- fields with their types and constraints, the SQLAlchemy tables (one per
entity, one per child table, nesting allowed), compiled expressions (computed fields, defaults,
visibility, cross-field validation rules) and a record validator. The model is immutable; when a
definition is published a new model is built and swapped in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import sqlalchemy as sa

from engine.errors import InvalidInput, Problem
from engine.forms.labels import label_of

SCALAR_TYPES = {"text", "long_text", "integer", "decimal", "boolean", "date", "datetime", "select",
                "multi_select", "link", "attachment", "email", "phone", "json", "computed"}
STANDARD_COLUMNS = ("id", "created_at", "created_by", "updated_at", "updated_by", "version")


@dataclass
class Option:
    value: Any
    label: Any
    color: str | None = None


@dataclass
class FieldModel:
    key: str
    type: str
    spec: dict                       # the field's definition as written
    label: Any
    required: bool = False
    unique: bool = False
    options: list[Option] = field(default_factory=list)
    target: str | None = None         # link: full key "app.entity"
    children: "EntityModel | None" = None   # table: the child entity
    expression: Any = None            # computed: compiled sandbox expression
    default_expression: Any = None
    visible_if: Any = None
    readonly_if: Any = None
    result: str | None = None         # computed: result type

    @property
    def value_type(self) -> str:
        """The type of the stored value (a computed field stores its result type)."""
        return self.result or "text" if self.type == "computed" else self.type

    @property
    def is_child_table(self) -> bool:
        return self.type == "table"

    @property
    def has_column(self) -> bool:
        return self.type != "table"

    @property
    def sensitive(self) -> bool:
        return bool(self.spec.get("sensitive"))

    @property
    def readonly(self) -> bool:
        return bool(self.spec.get("readonly")) or self.type == "computed"

    def option_values(self) -> list:
        return [o.value for o in self.options]

    def title(self, locale: str = "zh-CN") -> str:
        return label_of(self.label, locale) or self.key


@dataclass
class Validation:
    expression: Any                   # compiled
    message: Any
    fields: list[str]
    source: str


@dataclass
class EntityModel:
    app: str
    key: str
    spec: dict
    label: Any
    fields: dict[str, FieldModel]
    table: sa.Table | None = None
    parent: "EntityModel | None" = None          # for child tables
    parent_field: str | None = None
    validations: list[Validation] = field(default_factory=list)
    definition_version: int | None = None
    _validator: Any = None

    @property
    def validator(self):
        """The compiled record validator, built on first use (a model of a hundred entities
        should not pay for schemas nobody writes to)."""
        if self._validator is None:
            from engine.forms.validation import RecordValidator
            self._validator = RecordValidator(self)
        return self._validator

    # the model is immutable once built, so derived field lists are computed once (hot paths)

    @property
    def full_key(self) -> str:
        return f"{self.app}.{self.key}"

    @property
    def title_field(self) -> str | None:
        return self.spec.get("title_field") or next(
            (k for k, f in self.fields.items() if f.type in {"text", "email", "phone"}), None)

    @property
    def owner_field(self) -> str | None:
        return self.spec.get("owner_field")

    @cached_property
    def column_fields(self) -> list[FieldModel]:
        return [f for f in self.fields.values() if f.has_column]

    @cached_property
    def child_fields(self) -> list[FieldModel]:
        return [f for f in self.fields.values() if f.is_child_table]

    @cached_property
    def computed_fields(self) -> list[FieldModel]:
        return [f for f in self.fields.values() if f.type == "computed"]

    @cached_property
    def insert_statement(self) -> sa.Insert:
        """``INSERT`` into this entity's table, built once: constructing a statement costs about as
        much as SQLAlchemy's cached compile of it, and every single-record create pays it."""
        return self.table.insert()

    @property
    def is_child(self) -> bool:
        return self.parent is not None

    def title(self, locale: str = "zh-CN") -> str:
        return label_of(self.label, locale) or self.key

    def list_columns(self) -> list[str]:
        cols = (self.spec.get("list") or {}).get("columns")
        if cols:
            return list(cols)
        return [f.key for f in self.column_fields if f.spec.get("in_list", True)
                and f.type not in {"long_text", "json", "attachment"}][:6]

    def field(self, key: str) -> FieldModel:
        try:
            return self.fields[key]
        except KeyError:
            raise InvalidInput(problems=[Problem(f"entity `{self.key}` has no field `{key}`", field=key,
                                                 code="unknown_field")]) from None

    def walk(self):
        """This entity and every (nested) child entity."""
        yield self
        for f in self.child_fields:
            yield from f.children.walk()


@dataclass
class FormModel:
    app: str
    key: str
    entity: str
    spec: dict
    label: Any


@dataclass
class Model:
    """Every entity and form of every installed app, with one MetaData holding their tables."""
    metadata: sa.MetaData
    entities: dict[str, EntityModel] = field(default_factory=dict)    # "app.entity" -> model
    forms: dict[str, FormModel] = field(default_factory=dict)         # "app.form" -> model
    revision: int = 0

    def entity(self, app: str, key: str | None = None) -> EntityModel:
        full = app if key is None else f"{app}.{key}"
        try:
            return self.entities[full]
        except KeyError:
            from engine.errors import NotFound
            raise NotFound(f"no entity `{full}`") from None

    def entities_of(self, app: str) -> list[EntityModel]:
        return [e for e in self.entities.values() if e.app == app]

    def default_form(self, entity: EntityModel) -> FormModel | None:
        candidates = [f for f in self.forms.values() if f.app == entity.app and f.entity == entity.key]
        return next((f for f in candidates if f.spec.get("default")), candidates[0] if candidates else None)
