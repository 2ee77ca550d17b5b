"""Read a plugin folder (``plugin.yaml`` + restricted Python files) and check all of it.

Everything is checked before anything is stored: the manifest against ``plugin.schema.json`` (with
the YAML line of each problem), every script through the sandbox compiler and :mod:`plugins.lint`,
every hook against the functions its script defines, cron expressions, and the configuration
values against the plugin's own JSON Schema. :func:`read_plugin` raises one ``InvalidInput``
listing every problem with file and line, so a broken plugin is never half-installed.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jsonschema

from engine.errors import InvalidInput, Problem
from engine.meta import yamlpos
from engine.sandbox import SandboxCompileError, compile_script
from plugins.lint import functions_of, lint

MAX_SCRIPT_BYTES = 100_000
ENTITY_POINTS = {"before_save", "after_commit"}
NAMED_POINTS = {"function", "action", "report_source", "endpoint"}


@lru_cache(maxsize=1)
def manifest_schema() -> dict:
    return json.loads((Path(__file__).with_name("plugin.schema.json")).read_text(encoding="utf-8"))


@dataclass
class Manifest:
    """A checked plugin: its manifest data and the source of each script (``{"identity.py": src}``)."""
    name: str
    version: str
    data: dict
    scripts: dict[str, str] = field(default_factory=dict)

    @property
    def hooks(self) -> list[dict]:
        return list(self.data.get("hooks") or [])

    @property
    def config_schema(self) -> dict:
        return dict((self.data.get("configuration") or {}).get("schema") or {"type": "object"})

    @property
    def config_defaults(self) -> dict:
        return dict((self.data.get("configuration") or {}).get("values") or {})


def script_name(plugin: str, path: str) -> str:
    """What compile errors and log lines call a plugin script."""
    return f"plugins/{plugin}/{path}"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_plugin(folder) -> Manifest:
    """Read and check a plugin folder; raises InvalidInput naming every problem (file, line)."""
    folder = Path(folder)
    mf = folder / "plugin.yaml"
    if not mf.is_file():
        raise InvalidInput(f"{folder} is not a plugin: it has no plugin.yaml",
                           problems=[Problem("no plugin.yaml", file=str(mf), code="not_found")])
    doc, problems = yamlpos.load(mf.read_bytes(), str(mf))
    if doc is None or problems:
        raise InvalidInput(f"{mf}: cannot read the manifest", problems=problems)
    scripts = {}
    for p in sorted(folder.glob("*.py")):
        raw = p.read_bytes()
        if len(raw) > MAX_SCRIPT_BYTES:
            problems.append(Problem(f"the script is {len(raw):,} bytes; at most {MAX_SCRIPT_BYTES:,}",
                                    file=str(p), code="too_big"))
            continue
        try:
            scripts[p.name] = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(Problem(f"not UTF-8 text ({exc.reason})", file=str(p), code="encoding"))
    manifest = check_manifest(doc, scripts, problems, source_dir=str(folder))
    return manifest


def check_manifest(doc, scripts: dict[str, str], problems: list[Problem] | None = None, *,
                   source_dir: str = "") -> Manifest:
    """Check a parsed manifest (a :class:`yamlpos.Document` or plain dict) and its scripts."""
    problems = list(problems or [])
    if not isinstance(doc, yamlpos.Document):
        doc = yamlpos.Document("plugin.yaml", doc)
    data = doc.data
    validator = jsonschema.Draft202012Validator(manifest_schema())
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        problems.append(doc.problem(err.message, tuple(err.absolute_path)))
    if problems or not isinstance(data, dict):
        raise InvalidInput(f"{doc.file}: the manifest has {len(problems)} problem(s)", problems=problems)
    name = data["name"]
    from engine.sandbox import standard_api
    from plugins.lint import ENGINE_NAMES
    if name in standard_api() or name in ENGINE_NAMES:
        problems.append(doc.problem(f"`{name}` is a name scripts already use; choose another plugin name", ("name",)))

    def script_file(path):
        return str(Path(source_dir) / path) if source_dir else script_name(name, path)

    defined: dict[str, set[str]] = {}
    for path, source in scripts.items():
        label = script_file(path)
        try:
            compile_script(source, label)
        except SandboxCompileError as exc:
            problems.extend(exc.problems)
            continue
        problems.extend(lint(source, label))
        defined[path] = functions_of(source)
    seen_names: set[tuple[str, str]] = set()
    for i, hook in enumerate(data.get("hooks") or []):
        where = ("hooks", i)
        point, path, fn = hook["point"], hook["script"], hook["function"]
        if path not in scripts:
            problems.append(doc.problem(f"hook script `{path}` is not in the plugin folder", where + ("script",)))
        elif path in defined and fn not in defined[path]:
            problems.append(doc.problem(f"`{path}` defines no function `{fn}`", where + ("function",)))
        target = hook.get("target") or ""
        if point in ENTITY_POINTS and target.count(".") != 1 and target != "*":
            problems.append(doc.problem(f"a {point} hook needs `target: app.entity`", where))
        if point == "validate" and target.count(".") != 2:
            problems.append(doc.problem("a validate hook needs `target: app.entity.field`", where))
        if point == "schedule":
            from croniter import croniter
            if not hook.get("cron") or not croniter.is_valid(hook["cron"]):
                problems.append(doc.problem(f"`{hook.get('cron')}` is not a cron expression (minute hour day month "
                                            "weekday)", where + ("cron",)))
        if point == "channel" and not hook.get("channel"):
            problems.append(doc.problem("a channel hook needs `channel: <outbox channel>`", where))
        if point in NAMED_POINTS:
            key = (point, hook.get("name") or fn)
            if key in seen_names:
                problems.append(doc.problem(f"two {point} hooks are named `{key[1]}`", where))
            seen_names.add(key)
    conf = data.get("configuration") or {}
    if conf.get("schema"):
        try:
            jsonschema.Draft202012Validator.check_schema(conf["schema"])
        except jsonschema.SchemaError as exc:
            problems.append(doc.problem(f"configuration schema: {exc.message}", ("configuration", "schema")))
        else:
            for err in jsonschema.Draft202012Validator(conf["schema"]).iter_errors(conf.get("values") or {}):
                problems.append(doc.problem(f"configuration value: {err.message}",
                                            ("configuration", "values") + tuple(err.absolute_path)))
    if problems:
        raise InvalidInput(f"plugin `{name}` has {len(problems)} problem(s); nothing was installed",
                           problems=problems)
    return Manifest(name, data["version"], data, scripts)


def check_config(manifest_data: dict, values: dict) -> None:
    """Configuration values against the plugin's JSON Schema; InvalidInput naming each bad value."""
    schema = (manifest_data.get("configuration") or {}).get("schema")
    if not schema:
        return
    problems = [Problem(err.message, field="/".join(map(str, err.absolute_path)) or None, code="config")
                for err in jsonschema.Draft202012Validator(schema).iter_errors(values)]
    if problems:
        raise InvalidInput("the configuration does not match the plugin's schema", problems=problems)
