"""Monitoring definitions parsed into checked specs: rule sets, rules, features, typologies.

Bundles hold three shapes in ``rules/`` (see ``loom schema rule``): ``kind: ruleset`` (how a group
of rules runs), rules (the default kind) and ``kind: typology``. Parsing checks what the
meta-schema cannot: every expression (through :mod:`engine.rules.expressions`), feature
references (ratio operands), name clashes, typology members and the rule set each one joins.
Problems name the file and the path inside it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import InvalidInput, Problem
from engine.rules.expressions import Checked, ExpressionError, check

EVENT_KINDS = ("trade", "order", "cancel", "transfer", "record")
WINDOW_UNITS = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0, "days": 86400.0}
BUFFER_AGGS = ("count", "sum", "distinct", "min", "max")


@dataclass(frozen=True)
class Source:
    event: str                      # trade | order | cancel | transfer | record
    entity: str | None = None       # record events: app.entity
    filter: Checked | None = None

    @property
    def kind_key(self) -> str:
        """The dispatch key of the generated code: ``trade`` or ``record:app.entity``."""
        if self.event == "record":
            return f"record:{self.entity}" if self.entity else "record:*"
        return self.event

    @property
    def signature(self) -> tuple:
        return (self.kind_key, self.filter.source if self.filter else None)


@dataclass(frozen=True)
class Feature:
    key: str
    agg: str
    source: Source
    field: str | None = None
    window: tuple | None = None     # ("time", seconds) | ("events", n)
    by: tuple = ()
    of: str | None = None
    to: str | None = None
    entity: str | None = None
    match: str | None = None
    key_field: str | None = None
    value_field: str | None = None
    label: Any = None

    @property
    def buffer_signature(self) -> tuple:
        """Features with the same signature share one window buffer (and its state)."""
        return ("buf", self.source.signature, self.window, self.by)


@dataclass
class Rule:
    key: str
    version: int
    label: Any
    trigger: Source
    condition: Checked
    features: list[Feature] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    score: float | Checked = 1.0
    bands: tuple | None = None      # (Checked on, [(min, score, label), ...] ascending)
    alert: bool = True
    report: str | None = None
    suppress_seconds: float | None = None
    ruleset: str | None = None
    author: str | None = None
    body: dict = field(default_factory=dict)


@dataclass
class Typology:
    key: str
    version: int
    label: Any
    rules: list[tuple[str, float]]
    alert_threshold: float
    block_threshold: float | None = None
    report: str | None = None
    suppress_seconds: float | None = None
    ruleset: str | None = None
    author: str | None = None
    body: dict = field(default_factory=dict)


@dataclass
class Ruleset:
    app: str
    key: str
    label: Any
    group_by: str
    partitions: int = 1
    tolerance_seconds: float = 0.0
    suppress_seconds: float = 3600.0
    snapshot_every: int = 5000
    case: dict | None = None
    records: tuple = ()             # record sources: app records that become events of a kind

    @property
    def full_key(self) -> str:
        return f"{self.app}.{self.key}"


class _Collector:
    def __init__(self, file: str | None):
        self.file = file
        self.problems: list[Problem] = []

    def add(self, message: str, path: tuple, code: str = "rule") -> None:
        self.problems.append(Problem(message, file=self.file, path="/".join(map(str, path)) or None, code=code))

    def expr(self, source, path: tuple, name: str) -> Checked | None:
        try:
            return check(source, name)
        except ExpressionError as exc:
            self.add(f"`{'/'.join(map(str, path))}`: {exc}", path, code="expression")
            return None


def definition_kind(body: dict) -> str:
    return body.get("kind") or "rule"


def parse_ruleset(app: str, body: dict) -> Ruleset:
    return Ruleset(app=app, key=body["key"], label=body.get("label"), group_by=body["group_by"],
                   partitions=int(body.get("partitions", 1)), tolerance_seconds=float(body.get("tolerance_seconds", 0)),
                   suppress_seconds=float(body.get("suppress_seconds", 3600)),
                   snapshot_every=int(body.get("snapshot_every", 5000)), case=body.get("case"),
                   records=tuple(body.get("records") or ()))


def _source(c: _Collector, raw: dict, path: tuple, name: str) -> Source | None:
    if not isinstance(raw, dict) or raw.get("event") not in EVENT_KINDS:
        c.add(f"`{'/'.join(map(str, path))}`: `event` must be one of {', '.join(EVENT_KINDS)}", path + ("event",))
        return None
    flt = c.expr(raw["filter"], path + ("filter",), name) if raw.get("filter") else None
    return Source(raw["event"], raw.get("entity"), flt)


def _window(raw: dict | None) -> tuple | None:
    if not raw:
        return None
    if "events" in raw:
        return ("events", int(raw["events"]))
    (unit, amount), = raw.items()
    return ("time", float(amount) * WINDOW_UNITS[unit])


def parse_rule(body: dict, version: int = 1, file: str | None = None, author: str | None = None) -> Rule:
    """A checked :class:`Rule`, or :class:`InvalidInput` listing every problem of the definition."""
    c = _Collector(file)
    key = body.get("key", "?")
    name = f"rule {key}"
    trigger = _source(c, body.get("trigger"), ("trigger",), name)
    params = dict(body.get("params") or {})
    features: list[Feature] = []
    seen: set[str] = set()
    for i, raw in enumerate(body.get("features") or []):
        path = ("features", i)
        fk = raw.get("key")
        if fk in seen:
            c.add(f"feature `{fk}` is defined twice", path + ("key",))
        if fk in params:
            c.add(f"feature `{fk}` has the name of a parameter", path + ("key",))
        seen.add(fk)
        src = _source(c, raw["events"], path + ("events",), name) if raw.get("events") else trigger
        if src is None:
            continue
        agg = raw.get("agg")
        if agg in ("ratio",):
            for part in ("of", "to"):
                ref = raw.get(part)
                other = next((f for f in features if f.key == ref), None)
                if other is None:
                    c.add(f"feature `{fk}`: `{part}` names `{ref}`, which is not a feature defined above it",
                          path + (part,))
        if agg == "since_last" and raw.get("window"):
            c.add(f"feature `{fk}`: since_last takes no window", path + ("window",))
        features.append(Feature(key=fk, agg=agg, source=src, field=raw.get("field"), window=_window(raw.get("window")),
                                by=tuple(raw.get("by") or ()), of=raw.get("of"), to=raw.get("to"),
                                entity=raw.get("entity"), match=raw.get("match"), key_field=raw.get("key_field"),
                                value_field=raw.get("value_field"), label=raw.get("label")))
    condition = c.expr(body.get("condition"), ("condition",), name)
    score: float | Checked = 1.0
    if isinstance(body.get("score"), (int, float)) and not isinstance(body.get("score"), bool):
        score = float(body["score"])
    elif isinstance(body.get("score"), str):
        score = c.expr(body["score"], ("score",), name) or 1.0
    bands = None
    if body.get("bands") and body.get("score") is not None:
        c.add("give either `score` or `bands`, not both", ("bands",))
    if body.get("bands"):
        on = c.expr(body["bands"]["value"], ("bands", "value"), name)
        steps = sorted(((float(s["min"]), float(s["score"]), s.get("label")) for s in body["bands"]["steps"]),
                       key=lambda s: s[0])
        bands = (on, steps) if on else None
    if c.problems:
        raise InvalidInput(f"rule `{key}` is not valid", problems=c.problems)
    return Rule(key=key, version=version, label=body.get("label"), trigger=trigger, condition=condition,
                features=features, params=params, score=score, bands=bands, alert=body.get("alert", True),
                report=body.get("report"), suppress_seconds=body.get("suppress_seconds"),
                ruleset=body.get("ruleset"), author=author, body=body)


def parse_typology(body: dict, version: int = 1, author: str | None = None) -> Typology:
    return Typology(key=body["key"], version=version, label=body.get("label"),
                    rules=[(r["rule"], float(r.get("weight", 1))) for r in body["rules"]],
                    alert_threshold=float(body["alert_threshold"]),
                    block_threshold=float(body["block_threshold"]) if body.get("block_threshold") is not None else None,
                    report=body.get("report"), suppress_seconds=body.get("suppress_seconds"),
                    ruleset=body.get("ruleset"), author=author, body=body)


def ruleset_of(body: dict, rulesets: list[str]) -> str | None:
    """The rule set a rule or typology joins: named, or the app's only one."""
    if body.get("ruleset"):
        return body["ruleset"]
    return rulesets[0] if len(rulesets) == 1 else None


def check_definitions(defs: list[tuple[dict, str | None]]) -> list[Problem]:
    """Cross-checks over one app's monitoring definitions: ``[(body, file)]``."""
    problems: list[Problem] = []
    rulesets = [b["key"] for b, _ in defs if definition_kind(b) == "ruleset"]
    rules = {b["key"]: b for b, _ in defs if definition_kind(b) == "rule"}
    for body, file in defs:
        kind = definition_kind(body)
        if kind == "ruleset":
            continue
        rs = ruleset_of(body, rulesets)
        if rs is None:
            why = "no rule set is defined (add a rules/*.yaml with kind: ruleset)" if not rulesets else \
                f"name it with `ruleset:` (one of {', '.join(rulesets)})"
            problems.append(Problem(f"{kind} `{body.get('key')}` belongs to no rule set: {why}", file=file,
                                    path="ruleset", code="reference"))
        elif rs not in rulesets:
            problems.append(Problem(f"{kind} `{body.get('key')}`: rule set `{rs}` does not exist", file=file,
                                    path="ruleset", code="reference"))
        if kind == "rule":
            try:
                parse_rule(body, file=file)
            except InvalidInput as exc:
                problems.extend(exc.problems)
        else:
            for i, member in enumerate(body.get("rules") or []):
                other = rules.get(member.get("rule"))
                if other is None:
                    problems.append(Problem(f"typology `{body.get('key')}`: rule `{member.get('rule')}` does not exist",
                                            file=file, path=f"rules/{i}/rule", code="reference"))
                elif ruleset_of(other, rulesets) != rs:
                    problems.append(Problem(f"typology `{body.get('key')}`: rule `{member.get('rule')}` is in another "
                                            f"rule set", file=file, path=f"rules/{i}/rule", code="reference"))
    return problems

