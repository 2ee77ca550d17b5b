"""Build the :class:`Model` from published entity and form definitions."""
from __future__ import annotations

from typing import Callable, Iterable

import sqlalchemy as sa

from engine.errors import InvalidInput, Problem
from engine.forms.model import EntityModel, FieldModel, FormModel, Model, Option, Validation
from engine.forms.tables import build_tables

#: (app, kind, key, path) -> Problem located in the source file, or None
Locator = Callable[[str, str, str, tuple, str], Problem]


def _default_locator(app, kind, key, path, message) -> Problem:
    return Problem(message, path=f"{kind} {app}.{key}: " + "/".join(map(str, path)), code="expression")


def _compile(source: str, name: str, where: tuple, problems: list, locate: Locator):
    from engine.sandbox import SandboxCompileError, compile_expression
    try:
        return compile_expression(source, name=name)
    except SandboxCompileError as exc:
        app, kind, key, path = where
        for p in exc.problems or [Problem(str(exc))]:
            problems.append(locate(app, kind, key, path, f"expression `{source}`: {p.message}"))
        return None


def _entity(app: str, spec: dict, parent: EntityModel | None, parent_field: str | None, problems: list,
            locate: Locator, def_key: str, path: tuple) -> EntityModel:
    key = spec["key"] if parent is None else f"{parent.key}__{parent_field}"
    ent = EntityModel(app=app, key=key, spec=spec, label=spec.get("label"), fields={},
                      parent=parent, parent_field=parent_field)
    for i, fs in enumerate(spec.get("fields", [])):
        fpath = path + ("fields", i)
        where = (app, "entity", def_key, fpath)
        name = f"{app}.{def_key}.{fs['key']}"
        fm = FieldModel(key=fs["key"], type=fs["type"], spec=fs, label=fs.get("label", fs["key"]),
                        required=bool(fs.get("required")), unique=bool(fs.get("unique")))
        if fs.get("options"):
            fm.options = [Option(o["value"], o.get("label", o["value"]), o.get("color")) if isinstance(o, dict)
                          else Option(o, o) for o in fs["options"]]
        if fs["type"] == "link":
            target = fs["entity"]
            fm.target = target if "." in target else f"{app}.{target}"
        if fs["type"] == "table":
            child_spec = {"key": fs["key"], "label": fs.get("label"), "fields": fs["fields"]}
            fm.children = _entity(app, child_spec, ent, fs["key"], problems, locate, def_key, fpath)
        if fs["type"] == "computed":
            fm.result = fs.get("result", "text")
            fm.expression = _compile(fs["expression"], name + ".expression", where + (), problems,
                                     lambda a, k, d, p, m: locate(a, k, d, fpath + ("expression",), m))
        for attr in ("default_expression", "visible_if", "readonly_if"):
            if fs.get(attr):
                setattr(fm, attr, _compile(fs[attr], f"{name}.{attr}", where, problems,
                                           lambda a, k, d, p, m, attr=attr: locate(a, k, d, fpath + (attr,), m)))
        ent.fields[fm.key] = fm
    for i, v in enumerate(spec.get("validations", []) if parent is None else []):
        code = _compile(v["expression"], f"{app}.{def_key}.validations[{i}]", (app, "entity", def_key, ()), problems,
                        lambda a, k, d, p, m, i=i: locate(a, k, d, ("validations", i, "expression"), m))
        ent.validations.append(Validation(code, v["message"], list(v.get("fields", [])), v["expression"]))
    return ent


def build_model(apps: dict[str, str], entity_defs: Iterable[tuple[str, dict, int | None]],
                form_defs: Iterable[tuple[str, dict]] = (), revision: int = 0,
                locate: Locator | None = None) -> Model:
    """``apps`` maps app key -> table prefix; ``entity_defs`` yields (app, body, version).

    Raises :class:`InvalidInput` listing every problem (bad expressions, missing link targets).
    """
    locate = locate or _default_locator
    model = Model(metadata=sa.MetaData(), revision=revision)
    problems: list[Problem] = []
    entity_defs = list(entity_defs)
    for app, body, version in entity_defs:
        ent = _entity(app, body, None, None, problems, locate, body["key"], ())
        ent.definition_version = version
        model.entities[ent.full_key] = ent
    table_names = {full: f"{apps[e.app]}_{e.key}" for full, e in model.entities.items()}
    for ent in model.entities.values():
        for f in ent.fields.values():
            if f.type == "link" and f.target not in model.entities:
                problems.append(locate(ent.app, "entity", ent.key, ("fields", list(ent.fields).index(f.key), "entity"),
                                       f"field `{f.key}`: links to entity `{f.target}`, which is not installed"))
    if problems:
        raise InvalidInput(problems=problems)
    for full, ent in model.entities.items():
        build_tables(model, ent, table_names[full], table_names)
    for app, body in form_defs:
        model.forms[f"{app}.{body['key']}"] = FormModel(app, body["key"], body["entity"], body, body.get("label"))
    return model
