"""Report definitions as written in bundles (kind ``report``) -> typed objects.

The meta-schema (``report.schema.json``) has already checked the shape; this module gives the
compiler named attributes and fills in defaults (rows = every dimension, labels = keys), and
parses every expression once so a bad one is reported when the bundle is installed, not when a
manager opens the dashboard.
"""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from typing import Any

from engine.errors import InvalidInput, Problem
from engine.forms.labels import label_of
from engine.reports import expressions

AGGREGATES = ("count", "count_distinct", "sum", "avg", "min", "max")


@dataclass
class Level:
    key: str
    field: str
    label: Any = None


@dataclass
class Dimension:
    key: str
    label: Any
    field: str | None = None
    bucket: str | None = None
    levels: list[Level] = dc_field(default_factory=list)
    top: Any = None                    # label of the level above the first (HQ), or None
    default_level: str | None = None

    @property
    def is_hierarchy(self) -> bool:
        return bool(self.levels)

    def level_keys(self) -> list[str]:
        return (["top"] if self.top is not None else []) + [lv.key for lv in self.levels]

    def level(self, key: str) -> Level | None:
        return next((lv for lv in self.levels if lv.key == key), None)


@dataclass
class Measure:
    key: str
    label: Any
    agg: str | None = None
    field: str | None = None
    expression: expressions.Parsed | None = None
    scale: int | None = None
    format: str | None = None         # number | percent | integer

    @property
    def derived(self) -> bool:
        return self.expression is not None


@dataclass
class Parameter:
    key: str
    label: Any
    type: str = "text"
    default: Any = None
    required: bool = False
    options: list = dc_field(default_factory=list)
    field: str | None = None          # a simple filter: <field> <op> <value>
    op: str = "eq"


@dataclass
class Report:
    app: str
    key: str
    label: Any
    source: str
    dimensions: dict[str, Dimension]
    measures: dict[str, Measure]
    parameters: dict[str, Parameter]
    filters: list[expressions.Parsed]
    having: expressions.Parsed | None
    rows: list[str]
    columns: list[str]
    totals: bool = True
    subtotals: bool = False
    sort: list[tuple[str, bool]] = dc_field(default_factory=list)
    limit: int | None = None
    top: tuple[int, str] | None = None
    rollup: bool = False
    chart: dict = dc_field(default_factory=dict)
    body: dict = dc_field(default_factory=dict)

    @property
    def full_key(self) -> str:
        return f"{self.app}.{self.key}"

    @property
    def source_key(self) -> str:
        return self.source if "." in self.source else f"{self.app}.{self.source}"

    def title(self, locale: str = "zh-CN") -> str:
        return label_of(self.label, locale) or self.key


def parse_report(app: str, body: dict) -> Report:
    """Build a :class:`Report`; raises InvalidInput listing every problem found."""
    problems: list[Problem] = []

    def problem(msg, path):
        problems.append(Problem(f"report `{body.get('key')}`: {msg}", path=path, code="report"))

    dims: dict[str, Dimension] = {}
    for i, d in enumerate(body.get("dimensions") or []):
        h = d.get("hierarchy")
        dim = Dimension(key=d["key"], label=d.get("label") or d["key"], field=d.get("field"), bucket=d.get("bucket"))
        if h:
            dim.levels = [Level(lv["key"], lv["field"], lv.get("label") or lv["key"]) for lv in h.get("levels") or []]
            dim.top = h.get("top")
            dim.default_level = h.get("default_level") or (dim.levels[0].key if dim.levels else None)
        elif not dim.field:
            problem(f"dimension `{dim.key}` needs `field` or `hierarchy`", ("dimensions", i))
        if dim.key in dims:
            problem(f"duplicate dimension `{dim.key}`", ("dimensions", i, "key"))
        dims[dim.key] = dim
    measures: dict[str, Measure] = {}
    for i, m in enumerate(body.get("measures") or []):
        meas = Measure(key=m["key"], label=m.get("label") or m["key"], agg=m.get("agg"), field=m.get("field"),
                       scale=m.get("scale"), format=m.get("format"))
        try:
            if m.get("expression"):
                meas.expression = expressions.parse(m["expression"], f"measures.{meas.key}")
            elif meas.agg is None:
                problem(f"measure `{meas.key}` needs `agg` or `expression`", ("measures", i))
            elif meas.agg != "count" and not meas.field:
                problem(f"measure `{meas.key}`: `{meas.agg}` needs a `field`", ("measures", i))
        except InvalidInput as exc:
            problems.extend(exc.problems)
        if meas.key in measures or meas.key in dims:
            problem(f"duplicate measure `{meas.key}`", ("measures", i, "key"))
        measures[meas.key] = meas
    for m in measures.values():
        if m.expression is not None:
            unknown = m.expression.names - set(measures)
            if unknown:
                problem(f"measure `{m.key}` uses {', '.join(sorted(unknown))}, which are not measures of this report",
                        ("measures",))
    params = {}
    for i, p in enumerate(body.get("parameters") or []):
        params[p["key"]] = Parameter(key=p["key"], label=p.get("label") or p["key"], type=p.get("type", "text"),
                                     default=p.get("default"), required=bool(p.get("required")),
                                     options=[o["value"] if isinstance(o, dict) else o for o in p.get("options") or []],
                                     field=p.get("field"), op=p.get("op", "eq"))
    filters = []
    for i, f in enumerate(body.get("filters") or []):
        try:
            parsed = expressions.parse(f, f"filters[{i}]")
            for name in parsed.params - set(params):
                problem(f"filter {i + 1} uses params.{name}, which is not declared", ("filters", i))
            filters.append(parsed)
        except InvalidInput as exc:
            problems.extend(exc.problems)
    having = None
    if body.get("having"):
        try:
            having = expressions.parse(body["having"], "having")
            if having.names - set(measures):
                problem("`having` may only name measures", ("having",))
        except InvalidInput as exc:
            problems.extend(exc.problems)
    rows = list(body.get("rows") if body.get("rows") is not None else [k for k in dims if k not in (body.get("columns") or [])])
    columns = list(body.get("columns") or [])
    for where, keys in (("rows", rows), ("columns", columns)):
        for k in keys:
            if k not in dims:
                problem(f"`{where}` names `{k}`, which is not a dimension", (where,))
    sort = []
    for s in body.get("sort") or []:
        name = s.lstrip("-")
        if name not in dims and name not in measures:
            problem(f"`sort` names `{name}`, which is neither a dimension nor a measure", ("sort",))
        sort.append((name, s.startswith("-")))
    top = None
    if body.get("top"):
        top = (int(body["top"]["n"]), body["top"]["by"])
        if top[1] not in measures:
            problem(f"`top.by` names `{top[1]}`, which is not a measure", ("top", "by"))
    if problems:
        raise InvalidInput(f"report `{body.get('key')}` is not valid", problems=problems)
    return Report(app=app, key=body["key"], label=body.get("label") or body["key"], source=body["source"],
                  dimensions=dims, measures=measures, parameters=params, filters=filters, having=having,
                  rows=rows, columns=columns, totals=body.get("totals", True), subtotals=bool(body.get("subtotals")),
                  sort=sort, limit=body.get("limit"), top=top, rollup=bool(body.get("rollup")),
                  chart=body.get("chart") or {}, body=body)
