"""Structural validation of a bundle: meta-schemas, duplicate keys and cross-references.

Everything here needs only the bundle itself. Deeper checks that need the engine -- fixture
values against record schemas, expressions through the sandbox, BPMN through SpiffWorkflow --
are added by :mod:`engine.install`, which calls this first.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from engine.errors import Problem
from engine.meta.bundle import Bundle, Definition
from engine.meta.schema import iter_problems

#: columns every entity table has; a field may not take these names
RESERVED_FIELDS = {"id", "created_at", "created_by", "updated_at", "updated_by", "version",
                   "parent_id", "idx", "owner_id"}
ENGINE_VERSION_RE = re.compile(r"^\s*(>=|<=|==|>|<|~=|!=)\s*[\d.]+\s*$")


def _entity_fields(body: dict) -> dict[str, dict]:
    return {f.get("key"): f for f in body.get("fields", []) if isinstance(f, dict)}


def _check_fields(defn: Definition, fields: list, path: tuple, entities: dict, bundle: Bundle, problems: list):
    seen = set()
    for i, f in enumerate(fields):
        if not isinstance(f, dict):
            continue
        key = f.get("key")
        fpath = path + (i,)
        if key in seen:
            problems.append(defn.problem(f"duplicate field `{key}`", fpath + ("key",), code="duplicate_key"))
        seen.add(key)
        if key in RESERVED_FIELDS:
            problems.append(defn.problem(f"field `{key}`: the name is reserved for a standard column", fpath + ("key",)))
        ftype = f.get("type")
        if ftype == "link":
            target = f.get("entity", "")
            if "." in target:
                app = target.split(".", 1)[0]
                if app != bundle.key and app not in (bundle.manifest.get("depends") or {}):
                    problems.append(defn.problem(
                        f"field `{key}`: links to `{target}` but bundle `{app}` is not listed under depends",
                        fpath + ("entity",)))
            elif target not in entities:
                problems.append(defn.problem(
                    f"field `{key}`: links to entity `{target}`, which does not exist", fpath + ("entity",)))
        if ftype in {"select", "multi_select"} and "default" in f and f.get("options"):
            values = [o.get("value") if isinstance(o, dict) else o for o in f["options"]]
            defaults = f["default"] if isinstance(f["default"], list) else [f["default"]]
            for d in defaults:
                if d not in values:
                    problems.append(defn.problem(
                        f"field `{key}`: default `{d}` is not one of {', '.join(map(str, values))}", fpath + ("default",)))
        if ftype == "table":
            _check_fields(defn, f.get("fields", []), fpath + ("fields",), entities, bundle, problems)
        if f.get("pattern"):
            try:
                re.compile(f["pattern"])
            except re.error as exc:
                problems.append(defn.problem(f"field `{key}`: invalid pattern: {exc}", fpath + ("pattern",)))


def _check_page(defn: Definition, entities: dict, reports: set, bundle_key: str, problems: list,
                scripts: set | None = None):
    """Cross-references of an entity's `page:` panels: the entities, link fields, columns and
    reports they name must exist, and link fields must point at this entity."""
    page = defn.body.get("page")
    if not isinstance(page, dict):
        return
    me = defn.key

    def field_of(ent_key, name, path, what, link=False):
        body = entities.get(ent_key)
        if body is None or body.get("_broken"):
            return
        f = _entity_fields(body).get(name)
        if f is None and name not in RESERVED_FIELDS:
            problems.append(defn.problem(f"page panel: {what} `{name}`: entity `{ent_key}` has no such field", path))
        elif link and (f is None or f.get("type") != "link" or f.get("entity") not in (me, f"{bundle_key}.{me}")):
            problems.append(defn.problem(
                f"page panel: {what} `{name}` of entity `{ent_key}` is not a link to `{me}`", path))

    def entity_of(ent_key, path) -> bool:
        if not isinstance(ent_key, str) or "." in ent_key:
            return False        # another bundle's entity: checked when the page renders
        if ent_key not in entities:
            problems.append(defn.problem(f"page panel: entity `{ent_key}` does not exist", path))
            return False
        return True

    for i, p in enumerate(page.get("panels") or []):
        if not isinstance(p, dict):
            continue
        base = ("page", "panels", i)
        kind = p.get("kind")
        if kind in ("related", "graph") and entity_of(p.get("entity"), base + ("entity",)):
            ent = p["entity"]
            if kind == "related":
                field_of(ent, p.get("link"), base + ("link",), "link", link=True)
                for j, c in enumerate(p.get("columns") or []):
                    field_of(ent, c, base + ("columns", j), "column")
                if p.get("sort"):
                    field_of(ent, str(p["sort"]).lstrip("-"), base + ("sort",), "sort")
            else:
                field_of(ent, p.get("from"), base + ("from",), "from", link=True)
                field_of(ent, p.get("to"), base + ("to",), "to", link=True)
                for attr in ("type", "name"):
                    if p.get(attr):
                        field_of(ent, p[attr], base + (attr,), attr)
        elif kind == "report" and p.get("report") not in reports:
            problems.append(defn.problem(f"page panel: report `{p.get('report')}` does not exist", base + ("report",)))
        elif kind == "script":
            if scripts is not None and p.get("script") not in scripts:
                problems.append(defn.problem(f"page panel: script `{p.get('script')}` does not exist (scripts/*.py)",
                                             base + ("script",)))
            seen = {}
            for name, fld in (p.get("from_record") or {}).items() if isinstance(p.get("from_record"), dict) else ():
                field_of(me, fld, base + ("from_record", name), "field")
            for name, spec in (p.get("inputs") or {}).items() if isinstance(p.get("inputs"), dict) else ():
                ip = base + ("inputs", name)
                if isinstance(spec, dict) and spec.get("record"):
                    seen[name] = None
                    for j, c in enumerate(spec.get("fields") or []):
                        field_of(me, c, ip + ("fields", j), "field")
                    continue
                if not isinstance(spec, dict) or not entity_of(spec.get("entity"), ip + ("entity",)):
                    seen[name] = None
                    continue
                ent = spec["entity"]
                seen[name] = ent
                if spec.get("link"):
                    field_of(ent, spec["link"], ip + ("link",), "link", link=True)
                if spec.get("ids_from"):
                    src, _, col = str(spec["ids_from"]).partition(".")
                    if src not in seen:
                        problems.append(defn.problem(
                            f"page panel: input `{name}`: ids_from `{spec['ids_from']}` names no earlier input", ip + ("ids_from",)))
                    elif seen[src]:
                        f = _entity_fields(entities.get(seen[src], {})).get(col) if seen[src] in entities else None
                        if f is None or f.get("type") != "link" or f.get("entity") not in (ent, f"{bundle_key}.{ent}"):
                            problems.append(defn.problem(
                                f"page panel: input `{name}`: `{col}` of `{seen[src]}` is not a link to `{ent}`",
                                ip + ("ids_from",)))
                for j, c in enumerate(spec.get("fields") or []):
                    field_of(ent, c, ip + ("fields", j), "field")
                for c in spec.get("where") or {} if isinstance(spec.get("where"), dict) else ():
                    field_of(ent, c, ip + ("where", c), "filter field")
                for attr in ("latest",):
                    if spec.get(attr):
                        field_of(ent, spec[attr], ip + (attr,), attr)
                for attr in ("date", "value"):
                    if isinstance(spec.get("series"), dict) and spec["series"].get(attr):
                        field_of(ent, spec["series"][attr], ip + ("series", attr), f"series {attr}")
        elif kind == "tasks":
            for j, v in enumerate(p.get("via") or []):
                vp = base + ("via", j)
                if isinstance(v, dict) and entity_of(v.get("entity"), vp + ("entity",)):
                    field_of(v["entity"], v.get("link"), vp + ("link",), "link", link=True)
        elif kind == "timeline":
            for j, src in enumerate(p.get("sources") or []):
                sp = base + ("sources", j)
                if isinstance(src, dict) and entity_of(src.get("entity"), sp + ("entity",)):
                    field_of(src["entity"], src.get("link"), sp + ("link",), "link", link=True)
                    field_of(src["entity"], src.get("date"), sp + ("date",), "date")
                    for k, t in enumerate(src.get("text") or []):
                        field_of(src["entity"], t, sp + ("text", k), "text")


def validate_bundle(bundle: Bundle) -> list[Problem]:
    """All structural problems of a bundle (after :func:`read_bundle`'s own)."""
    problems: list[Problem] = list(bundle.problems)
    if bundle.manifest_doc is not None:
        for msg, path in iter_problems("app", bundle.manifest):
            problems.append(bundle.manifest_doc.problem(msg, path))
        eng = bundle.manifest.get("engine")
        if isinstance(eng, str) and not all(ENGINE_VERSION_RE.match(p) for p in eng.split(",")):
            problems.append(bundle.manifest_doc.problem(f"`engine`: `{eng}` is not a version range like '>=0.1,<1'", ("engine",)))

    # schema per definition
    for d in bundle.definitions:
        if d.kind == "roles_file":
            for msg, path in iter_problems("role", d.body):
                # role items are validated one by one below; here only the file's outer shape
                if len(path) <= 1:
                    problems.append(d.problem(msg, path, code="schema"))
            continue
        kind, pointer = (d.kind, None) if d.kind != "role" else ("role", "role")
        for msg, path in iter_problems(kind, d.body, pointer):
            problems.append(d.problem(msg, path, code="schema"))

    # duplicate keys within a kind
    seen: dict[tuple, Definition] = {}
    for d in bundle.definitions:
        if d.kind == "roles_file":
            continue
        k = (d.kind, d.key)
        if k in seen:
            first = seen[k]
            problems.append(d.problem(f"duplicate {d.kind} key `{d.key}` (already defined in {first.file})",
                                      ("key",), code="duplicate_key"))
        else:
            seen[k] = d

    entities = {d.key: d.body for d in bundle.of_kind("entity")}
    # an unparseable entity file was already reported: treat its key as existing, fields unknown
    for kind, stem in bundle.broken:
        if kind == "entity" and stem not in entities:
            entities[stem] = {"key": stem, "fields": [], "_broken": True}
    roles = {d.key for d in bundle.of_kind("role")}
    reports = {d.key for d in bundle.of_kind("report")}

    for d in bundle.of_kind("entity"):
        fields = _entity_fields(d.body)
        _check_fields(d, d.body.get("fields", []), ("fields",), entities, bundle, problems)
        for attr in ("title_field", "owner_field"):
            if d.body.get(attr) and d.body[attr] not in fields:
                problems.append(d.problem(f"`{attr}`: entity `{d.key}` has no field `{d.body[attr]}`", (attr,)))
        for i, col in enumerate((d.body.get("list") or {}).get("columns", [])):
            if col not in fields and col not in RESERVED_FIELDS:
                problems.append(d.problem(f"list column `{col}`: entity `{d.key}` has no such field", ("list", "columns", i)))
        sort = (d.body.get("list") or {}).get("sort")
        if sort and sort.lstrip("-") not in fields and sort.lstrip("-") not in RESERVED_FIELDS:
            problems.append(d.problem(f"list sort `{sort}`: entity `{d.key}` has no such field", ("list", "sort")))
        for i, v in enumerate(d.body.get("validations", [])):
            for j, fk in enumerate(v.get("fields", []) if isinstance(v, dict) else []):
                if fk not in fields:
                    problems.append(d.problem(f"validation names field `{fk}`, which entity `{d.key}` lacks",
                                              ("validations", i, "fields", j)))
        for i, ix in enumerate(d.body.get("indexes", [])):
            for j, fk in enumerate(ix.get("fields", []) if isinstance(ix, dict) else []):
                if fk not in fields and fk not in RESERVED_FIELDS:
                    problems.append(d.problem(f"index names field `{fk}`, which entity `{d.key}` lacks",
                                              ("indexes", i, "fields", j)))

    for d in bundle.of_kind("entity"):
        _check_page(d, entities, reports, bundle.key, problems,
                    scripts={x.key for x in bundle.of_kind("script")})

    for d in bundle.of_kind("form"):
        ent = d.body.get("entity")
        if ent not in entities:
            problems.append(d.problem(f"form `{d.key}`: entity `{ent}` does not exist", ("entity",)))
            continue
        if entities[ent].get("_broken"):
            continue
        fields = _entity_fields(entities[ent])
        for si, section in enumerate(d.body.get("sections", [])):
            for fi, item in enumerate(section.get("fields", []) if isinstance(section, dict) else []):
                name = item if isinstance(item, str) else (item.get("field") if isinstance(item, dict) else None)
                if name is not None and name not in fields:
                    problems.append(d.problem(f"form `{d.key}`: entity `{ent}` has no field `{name}`",
                                              ("sections", si, "fields", fi)))

    for d in bundle.of_kind("role"):
        for ri, inh in enumerate(d.body.get("inherits", [])):
            if inh not in roles:
                problems.append(d.problem(f"role `{d.key}` inherits `{inh}`, which no roles file defines", ("inherits", ri)))
        for pi, perm in enumerate(d.body.get("permissions", [])):
            if not isinstance(perm, dict):
                continue
            ent = perm.get("entity")
            if ent != "*" and ent not in entities and "." not in str(ent):
                problems.append(d.problem(f"role `{d.key}`: permission names entity `{ent}`, which does not exist",
                                          ("permissions", pi, "entity")))
            elif ent in entities and not entities[ent].get("_broken"):
                fields = _entity_fields(entities[ent])
                for fname in (perm.get("fields") or {}):
                    if fname not in fields:
                        problems.append(d.problem(f"role `{d.key}`: entity `{ent}` has no field `{fname}`",
                                                  ("permissions", pi, "fields", fname)))

    for d in bundle.of_kind("report"):
        src = d.body.get("source")
        if src and src not in entities and "." not in src:
            problems.append(d.problem(f"report `{d.key}`: source entity `{src}` does not exist", ("source",)))

    for d in bundle.of_kind("dashboard"):
        for i, role in enumerate(d.body.get("roles", []) or []):
            if role not in roles:
                problems.append(d.problem(f"dashboard `{d.key}`: role `{role}` is not defined", ("roles", i)))
        for i, w in enumerate(d.body.get("widgets", []) or []):
            if isinstance(w, dict) and w.get("report") and w["report"] not in reports:
                problems.append(d.problem(f"dashboard `{d.key}`: widget names report `{w['report']}`, which does not exist",
                                          ("widgets", i, "report")))

    for d in bundle.of_kind("fixture"):
        ent = d.body.get("entity")
        if ent not in entities:
            problems.append(d.problem(f"fixture: entity `{ent}` does not exist", ("entity",)))
            continue
        if entities[ent].get("_broken"):
            continue
        fields = _entity_fields(entities[ent])
        for ri, rec in enumerate(d.body.get("records", []) or []):
            if not isinstance(rec, dict):
                continue
            for name in rec:
                if name not in fields and name != "id":
                    problems.append(d.problem(f"record {ri + 1}: entity `{ent}` has no field `{name}`",
                                              ("records", ri, name), code="unknown_field"))

    for d in bundle.of_kind("workflow"):
        try:
            ET.fromstring(d.body["xml"].encode("utf-8"))
        except ET.ParseError as exc:
            line, col = exc.position
            problems.append(Problem(f"BPMN is not well-formed XML: {exc.msg if hasattr(exc, 'msg') else exc}",
                                    file=d.file, line=line, column=col + 1, code="xml"))

    for ref_kind in ("home",):
        home = bundle.manifest.get(ref_kind)
        if home and home not in entities and home not in {d.key for d in bundle.of_kind("dashboard")} and bundle.manifest_doc:
            problems.append(bundle.manifest_doc.problem(f"`home`: no entity or dashboard `{home}`", ("home",)))
    return problems
