"""Static checks of a report against a model: every field path resolves, aggregates fit types.

Runs at install (no database, no viewer): the same path walking as the compiler, reported as
(message, path) pairs the bundle validator turns into file:line problems.
"""
from __future__ import annotations

from engine.reports.definition import Report

STANDARD = {"id", "created_at", "created_by", "updated_at", "updated_by", "version"}


def resolve_path(model, source_key: str, path: str):
    """Return (field model | None for standard columns, error message | None)."""
    ent = model.entities.get(source_key)
    if ent is None:
        return None, f"source entity `{source_key}` does not exist"
    parts = path.split(".")
    for p in parts[:-1]:
        f = ent.fields.get(p)
        if f is None or f.type != "link":
            return None, f"`{path}`: `{p}` is not a link field of `{ent.key}`"
        ent = model.entities.get(f.target)
        if ent is None:
            return None, f"`{path}`: entity `{f.target}` does not exist"
    last = parts[-1]
    if last in STANDARD:
        return None, None
    f = ent.fields.get(last)
    if f is None or not f.has_column:
        return None, f"`{path}`: entity `{ent.key}` has no field `{last}`"
    if f.sensitive:
        return None, f"`{path}` is encrypted and cannot be grouped or aggregated"
    return f, None


def check_report(rep: Report, model) -> list[tuple[str, tuple]]:
    out = []
    if rep.source_key not in model.entities:
        return [(f"report `{rep.key}`: source entity `{rep.source}` does not exist", ("source",))]

    def check(path, where):
        f, err = resolve_path(model, rep.source_key, path)
        if err:
            out.append((f"report `{rep.key}`: {err}", where))
        return f

    for i, d in enumerate(rep.dimensions.values()):
        if d.is_hierarchy:
            for j, lv in enumerate(d.levels):
                check(lv.field, ("dimensions", i, "hierarchy", "levels", j, "field"))
        else:
            f = check(d.field, ("dimensions", i, "field"))
            if d.bucket and f is not None and f.value_type not in {"date", "datetime"}:
                out.append((f"report `{rep.key}`: dimension `{d.key}`: a `{d.bucket}` bucket needs a date field",
                            ("dimensions", i, "bucket")))
    for i, m in enumerate(rep.measures.values()):
        if m.field:
            f = check(m.field, ("measures", i, "field"))
            if f is not None and m.agg in {"sum", "avg"} and f.value_type not in {"integer", "decimal"}:
                out.append((f"report `{rep.key}`: measure `{m.key}`: cannot {m.agg} a {f.value_type} field",
                            ("measures", i, "agg")))
    for i, p in enumerate(rep.parameters.values()):
        if p.field:
            check(p.field, ("parameters", i, "field"))
    for i, flt in enumerate(rep.filters):
        for name in flt.names:
            check(name, ("filters", i))
    if rep.rollup:
        from engine.reports.rollup import rollup_problems
        out += [(f"report `{rep.key}`: {msg}", ("rollup",)) for msg in rollup_problems(rep)]
    return out
