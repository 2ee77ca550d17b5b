"""Entities and forms: definitions -> typed tables, record schemas, validation, schema evolution.

Public surface:

* :func:`build_model` -- published definitions -> :class:`Model` (entities, tables, validators);
* :class:`Model`, :class:`EntityModel`, :class:`FieldModel`, :class:`FormModel`;
* :func:`plan_migration` / :func:`apply_migration` -- bring live tables in line with a model;
* :func:`label_of` -- pick a label in a language.
"""
from engine.forms.build import build_model
from engine.forms.labels import label_of, normalize_locale
from engine.forms.model import EntityModel, FieldModel, FormModel, Model
from engine.migrate import MigrationPlan, apply_plan as _apply_plan, plan_tables as _plan_tables


def entity_tables(model: Model, apps: set[str] | None = None) -> list:
    """Tables of the model (optionally only those of some apps), parents before children."""
    names = {e.table.name for ent in model.entities.values() if apps is None or ent.app in apps for e in ent.walk()}
    return [t for t in model.metadata.sorted_tables if t.name in names]


def plan_migration(conn, model: Model, apps: set[str] | None = None) -> MigrationPlan:
    return _plan_tables(conn, entity_tables(model, apps))


def apply_migration(conn, model: Model, plan: MigrationPlan, apps: set[str] | None = None,
                    confirm_destructive: bool = False) -> None:
    _apply_plan(conn, plan, entity_tables(model, apps), confirm_destructive=confirm_destructive)


__all__ = ["build_model", "label_of", "normalize_locale", "EntityModel", "FieldModel", "FormModel", "Model",
           "MigrationPlan", "plan_migration", "apply_migration", "entity_tables"]
