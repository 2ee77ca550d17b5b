"""Bring existing models across: Frappe DocType JSON -> Loom entity and form definitions.

Field types map to their Loom equivalents; Section/Column/Tab breaks become the form's sections,
columns and tabs; Table fields take the child DocType's fields inline (child tables nest) when its
JSON is given too. What has no equivalent is reported, not dropped silently.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from engine.errors import InvalidInput, Problem

TYPE_MAP = {
    "Data": "text", "Small Text": "long_text", "Text": "long_text", "Long Text": "long_text",
    "Text Editor": "long_text", "Markdown Editor": "long_text", "HTML Editor": "long_text", "Code": "long_text",
    "Int": "integer", "Float": "decimal", "Currency": "decimal", "Percent": "decimal",
    "Check": "boolean", "Date": "date", "Datetime": "datetime", "Select": "select", "Link": "link",
    "Table": "table", "Attach": "attachment", "Attach Image": "attachment", "JSON": "json",
    "Phone": "phone", "Password": "text", "Read Only": "text", "Duration": "integer", "Rating": "decimal",
    "Table MultiSelect": "multi_select",
}
LAYOUT = {"Section Break", "Column Break", "Tab Break"}
SKIP = {"HTML", "Button", "Image", "Fold", "Heading"}


def key_of(name: str) -> str:
    k = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    if not k or not k[0].isalpha():
        k = "f_" + k
    return k[:40]


def _field(df: dict, children: dict, notes: list, doctype: str) -> dict | None:
    ftype = df.get("fieldtype")
    if ftype not in TYPE_MAP:
        notes.append(f"{doctype}.{df.get('fieldname')}: field type `{ftype}` has no Loom equivalent; skipped")
        return None
    f: dict = {"key": key_of(df["fieldname"]), "type": TYPE_MAP[ftype]}
    if df.get("label"):
        f["label"] = {"en": df["label"]}
    if df.get("reqd"):
        f["required"] = True
    if df.get("unique"):
        f["unique"] = True
    if df.get("read_only") and ftype != "Read Only":
        f["readonly"] = True
    if ftype == "Data" and df.get("options") == "Email":
        f["type"] = "email"
    if ftype == "Data" and df.get("options") == "Phone":
        f["type"] = "phone"
    if f["type"] == "text" and df.get("length"):
        f["max_length"] = int(df["length"])
    if ftype in {"Float", "Currency", "Percent", "Rating"}:
        f["scale"] = int(df.get("precision") or (2 if ftype == "Currency" else 6))
    if ftype == "Select":
        options = [o for o in str(df.get("options") or "").split("\n") if o.strip()]
        if not options:
            notes.append(f"{doctype}.{df['fieldname']}: Select without options became text")
            f["type"] = "text"
        else:
            f["options"] = [{"value": o, "label": {"en": o}} for o in options]
    if ftype == "Link":
        f["entity"] = key_of(df.get("options") or "")
    if ftype in {"Table", "Table MultiSelect"}:
        child = children.get(df.get("options"))
        if ftype == "Table MultiSelect":
            notes.append(f"{doctype}.{df['fieldname']}: Table MultiSelect became a multi-select; set its options")
            f["type"] = "multi_select"
            f["options"] = ["TODO"]
        elif child is None:
            notes.append(f"{doctype}.{df['fieldname']}: child DocType `{df.get('options')}` not given; "
                         "pass its JSON too to bring its fields")
            f["fields"] = [{"key": "name", "type": "text"}]
        else:
            f["fields"] = [x for x in (_field(c, children, notes, child["name"]) for c in child.get("fields", [])
                                       if c.get("fieldtype") not in LAYOUT | SKIP) if x]
    if df.get("default") not in (None, "") and f["type"] in {"text", "integer", "select", "boolean"}:
        d = df["default"]
        f["default"] = bool(int(d)) if f["type"] == "boolean" and str(d).isdigit() else (
            int(d) if f["type"] == "integer" and str(d).lstrip("-").isdigit() else d)
        if f["type"] == "select" and f["default"] not in [o["value"] for o in f.get("options", [])]:
            f.pop("default")
    if df.get("description"):
        f["help"] = {"en": df["description"]}
    return f


def convert(paths: list[str | Path]) -> tuple[list[dict], list[dict], list[str]]:
    """DocType JSON files -> (entities, forms, notes). Child-table DocTypes (istable) are inlined."""
    docs = []
    for p in paths:
        try:
            docs.append(json.loads(Path(p).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise InvalidInput(problems=[Problem(f"not a DocType JSON file: {exc}", file=str(p))]) from None
    for p, d in zip(paths, docs):
        if d.get("doctype") != "DocType" or "fields" not in d or "name" not in d:
            raise InvalidInput(problems=[Problem("not a Frappe DocType (expects doctype: DocType, name, fields)",
                                                 file=str(p))])
    children = {d["name"]: d for d in docs if d.get("istable")}
    entities, forms, notes = [], [], []
    for d in docs:
        if d.get("istable"):
            continue
        fields, sections, current = [], [], {"fields": [], "columns": 1}
        tab = None
        for df in d["fields"]:
            ft = df.get("fieldtype")
            if ft == "Tab Break":
                tab = {"en": df.get("label") or "Tab"}
            if ft in {"Section Break", "Tab Break"}:
                if current["fields"]:
                    sections.append(current)
                current = {"fields": [], "columns": 1}
                if df.get("label") and ft == "Section Break":
                    current["label"] = {"en": df["label"]}
                if tab:
                    current["tab"] = tab
                continue
            if ft == "Column Break":
                current["columns"] = min(current["columns"] + 1, 4)
                continue
            if ft in SKIP:
                continue
            f = _field(df, children, notes, d["name"])
            if f:
                fields.append(f)
                current["fields"].append(f["key"])
        if current["fields"]:
            sections.append(current)
        key = key_of(d["name"])
        entity = {"key": key, "label": {"en": d["name"]}, "fields": fields}
        title = d.get("title_field")
        if title and key_of(title) in {f["key"] for f in fields}:
            entity["title_field"] = key_of(title)
        cols = [key_of(x["fieldname"]) for x in d["fields"] if x.get("in_list_view")
                and key_of(x["fieldname"]) in {f["key"] for f in fields}]
        if cols:
            entity["list"] = {"columns": cols}
        entities.append(entity)
        forms.append({"key": f"{key}_form"[:40], "entity": key, "default": True, "label": {"en": d["name"]},
                      "sections": sections or [{"fields": [f["key"] for f in fields]}]})
    return entities, forms, notes
