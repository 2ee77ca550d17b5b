"""Read a bundle (a folder or a .zip) into documents, one per definition.

A bundle is ``app.yaml`` plus folders by kind. Reading never stops at the first problem: every
unreadable file, unknown folder and syntax error is collected with its file and line, so
``loom app validate`` can report all of them at once.
"""
from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from engine.errors import Problem
from engine.meta.yamlpos import Document, load

#: folder -> kind; the order is the install order (roles before data, scripts before users of them)
FOLDERS = {
    "entities": "entity",
    "forms": "form",
    "scripts": "script",
    "workflows": "workflow",
    "reports": "report",
    "dashboards": "dashboard",
    "rules": "rule",
    "fixtures": "fixture",
    "migrations": "migration",
}
KINDS = ("app", "entity", "form", "role", "script", "workflow", "report", "dashboard", "rule", "fixture", "migration")
DATA_SUFFIXES = {".yaml", ".yml", ".json"}
#: folders and files a bundle may carry that are not definitions
IGNORED_TOP = {"README.md", "README", "LICENSE", "CHANGELOG.md", "demo", "tests", "docs", "assets",
               "__pycache__", ".gitignore", "locales", "SIGNATURE", "MANIFEST.json"}


@dataclass
class Definition:
    kind: str
    key: str
    body: dict[str, Any]
    file: str
    doc: Document | None = None
    path: tuple = ()                    # where the body sits inside the document (roles.yaml: ("roles", 3))

    def problem(self, message: str, path=(), code: str = "reference") -> Problem:
        if self.doc is None:
            return Problem(message, file=self.file, path="/".join(map(str, path)) or None, code=code)
        return self.doc.problem(message, self.path + tuple(path), code=code)


@dataclass
class Bundle:
    source: str
    manifest: dict[str, Any] = field(default_factory=dict)
    manifest_doc: Document | None = None
    definitions: list[Definition] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    #: (kind, file stem) of files that could not be parsed: references to them are not reported
    #: again as dangling, so one syntax error does not bury the real message under echoes
    broken: set = field(default_factory=set)

    @property
    def key(self) -> str:
        return self.manifest.get("key", "")

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", ""))

    def of_kind(self, kind: str) -> list[Definition]:
        return [d for d in self.definitions if d.kind == kind]

    def find(self, kind: str, key: str) -> Definition | None:
        return next((d for d in self.definitions if d.kind == kind and d.key == key), None)

    def checksum(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + hashlib.sha256(self.files[name]).digest())
        return h.hexdigest()


def _read_files(source: str | Path) -> tuple[dict[str, bytes], list[Problem]]:
    path = Path(source)
    files: dict[str, bytes] = {}
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            rel = p.relative_to(path).as_posix()
            if p.is_file() and "__pycache__" not in rel and not rel.endswith(".pyc"):
                files[rel] = p.read_bytes()
        return files, []
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
            for n in names:
                pp = PurePosixPath(n)
                if pp.is_absolute() or ".." in pp.parts:
                    return {}, [Problem(f"unsafe path `{n}` in archive", file=str(path), code="archive")]
            # strip one shared top folder ("securities_crm/app.yaml")
            tops = {n.split("/", 1)[0] for n in names}
            strip = len(tops) == 1 and all("/" in n for n in names)
            for n in names:
                files[n.split("/", 1)[1] if strip else n] = zf.read(n)
        return files, []
    if path.exists():
        return {}, [Problem("not a folder or a .zip bundle", file=str(path), code="source")]
    return {}, [Problem("no such file or folder", file=str(path), code="source")]


def _csv_document(raw: bytes, file: str) -> tuple[Document | None, list[Problem]]:
    """A CSV fixture: the file name is the entity, the header the fields, one record per line."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, [Problem(f"not UTF-8 text ({exc.reason})", file=file, code="encoding")]
    reader = csv.reader(io.StringIO(text))
    rows = list(reader)
    if not rows:
        return None, [Problem("empty CSV file", file=file, code="csv")]
    header = [h.strip() for h in rows[0]]
    positions: dict[tuple, tuple[int, int]] = {(): (1, 1), ("records",): (2, 1)}
    records = []
    problems = []
    for i, row in enumerate(rows[1:]):
        line = i + 2
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            problems.append(Problem(f"line has {len(row)} values but the header has {len(header)}",
                                    file=file, line=line, code="csv"))
            continue
        idx = len(records)
        rec = {h: (v if v != "" else None) for h, v in zip(header, row)}
        records.append(rec)
        positions[("records", idx)] = (line, 1)
        col = 1
        for h, v in zip(header, row):
            positions[("records", idx, h)] = (line, col)
            col += len(v) + 1
    stem = PurePosixPath(file).stem
    entity = stem.split(".", 1)[-1] if "." in stem else stem  # "01.customer.csv" -> customer
    return Document(file, {"entity": entity, "records": records}, positions), problems


def read_bundle(source: str | Path) -> Bundle:
    """Read every file of a bundle; structural checks come later (:mod:`engine.meta.validate`)."""
    bundle = Bundle(str(source))
    files, problems = _read_files(source)
    bundle.files = files
    bundle.problems.extend(problems)
    if problems:
        return bundle
    if "app.yaml" not in files:
        bundle.problems.append(Problem("missing app.yaml manifest", file="app.yaml", code="manifest"))
    for name, raw in sorted(files.items()):
        parts = name.split("/")
        top = parts[0]
        suffix = PurePosixPath(name).suffix.lower()
        if top in IGNORED_TOP or top.startswith("."):
            continue
        if name == "app.yaml":
            doc, probs = load(raw, name)
            bundle.problems.extend(probs)
            if doc is not None:
                if not isinstance(doc.data, dict):
                    bundle.problems.append(doc.problem("app.yaml must be a mapping"))
                else:
                    bundle.manifest, bundle.manifest_doc = doc.data, doc
            continue
        if name in {"roles.yaml", "roles.yml"} or (top == "roles" and suffix in DATA_SUFFIXES):
            doc, probs = load(raw, name)
            bundle.problems.extend(probs)
            if doc is None:
                continue
            roles = doc.data.get("roles") if isinstance(doc.data, dict) else None
            bundle.definitions.append(Definition("roles_file", name, doc.data if isinstance(doc.data, dict) else {}, name, doc))
            if isinstance(roles, list):
                for i, role in enumerate(roles):
                    if isinstance(role, dict):
                        bundle.definitions.append(Definition("role", str(role.get("key", "")), role, name, doc, ("roles", i)))
            continue
        kind = FOLDERS.get(top) if len(parts) > 1 else None
        if kind is None:
            where = f"folder `{top}/`" if len(parts) > 1 else f"file `{name}`"
            bundle.problems.append(Problem(
                f"unknown kind: {where} is not part of the bundle format (expected app.yaml, roles.yaml, "
                + ", ".join(f"{f}/" for f in FOLDERS) + ")", file=name, code="unknown_kind"))
            continue
        stem = PurePosixPath(name).stem
        if kind == "workflow":
            if suffix != ".bpmn":
                bundle.problems.append(Problem("workflows/ holds .bpmn files", file=name, code="unknown_kind"))
                continue
            bundle.definitions.append(Definition("workflow", stem, {"key": stem, "xml": raw.decode("utf-8", "replace")}, name))
            continue
        if kind == "script":
            if suffix == ".py":
                bundle.definitions.append(Definition("script", stem, {"key": stem, "source": raw.decode("utf-8", "replace")}, name))
            elif suffix not in DATA_SUFFIXES:
                bundle.problems.append(Problem("scripts/ holds .py files", file=name, code="unknown_kind"))
            continue
        if kind == "migration":
            # migrations/<version>.py: a data migration run when upgrading past that version
            if suffix != ".py":
                bundle.problems.append(Problem("migrations/ holds <version>.py files", file=name, code="unknown_kind"))
                continue
            bundle.definitions.append(Definition("migration", stem, {"key": stem, "version": stem,
                                                                     "source": raw.decode("utf-8", "replace")}, name))
            continue
        if kind == "fixture" and suffix == ".csv":
            doc, probs = _csv_document(raw, name)
        elif suffix in DATA_SUFFIXES:
            doc, probs = load(raw, name)
        else:
            bundle.problems.append(Problem(f"{top}/ holds .yaml or .json files, not `{suffix or name}`",
                                           file=name, code="unknown_kind"))
            continue
        bundle.problems.extend(probs)
        if doc is None:
            bundle.broken.add((kind, stem))
            continue
        if not isinstance(doc.data, dict):
            bundle.problems.append(doc.problem(f"a {kind} definition must be a mapping"))
            bundle.broken.add((kind, stem))
            continue
        key = doc.data.get("key", stem) if kind != "fixture" else stem
        bundle.definitions.append(Definition(kind, str(key), doc.data, name, doc))
    return bundle
