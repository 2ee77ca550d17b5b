"""``attach(loom)``: plug reports and dashboards into a running Loom.

* ``loom.extensions["reports"]`` -- :class:`ReportsExtension` with ``reports`` (run, drill,
  export), ``dashboards``, ``rollups``; ``tick`` runs due report schedules and compacts rollup
  tables (called by Celery beat or the embedded scheduler). Rollup tables are created on first use.
* an install check compiling every report and dashboard of a bundle against the candidate
  model, so a wrong field path or expression is reported at install with file and line.
* record-event subscriptions keeping rollup tables current.
"""
from __future__ import annotations

from engine.errors import LoomError, Problem


class ReportsExtension:
    def __init__(self, loom):
        from engine.reports import tables  # noqa: F401  (declares the tables on SYSTEM)
        from engine.reports.dashboards import Dashboards
        from engine.reports.rollup import Rollups
        from engine.reports.service import Reports
        self.loom = loom
        self.reports = Reports(loom)
        self.rollups = Rollups(loom, self.reports)
        self.reports.rollups = self.rollups
        self.dashboards = Dashboards(loom, self.reports)

    def init_db(self, engine) -> list[str]:
        return []

    def tick(self) -> dict:
        from engine.reports.schedule import run_due
        return {"emails_queued": run_due(self.loom, self.reports), "rollups_compacted": self.rollups.compact()}

    def stop(self) -> None:
        self.rollups.stop()


def check_bundle(bundle, model) -> list[Problem]:
    """Compile every report definition of the bundle (shape, paths, expressions)."""
    from engine.reports.definition import parse_report
    from engine.reports.validate import check_report
    problems: list[Problem] = []
    reports = {}
    for d in bundle.of_kind("report"):
        try:
            rep = parse_report(bundle.key, d.body)
        except LoomError as exc:
            problems += [d.problem(p.message, ("measures",) if "measure" in p.message else (), code="report")
                         for p in exc.problems]
            continue
        reports[rep.key] = rep
        for msg, path in check_report(rep, model):
            problems.append(d.problem(msg, path, code="report"))
    for d in bundle.of_kind("dashboard"):
        for i, w in enumerate(d.body.get("widgets") or []):
            rep = reports.get(w.get("report"))
            if rep is None:
                continue
            for m in [w.get("measure")] + list(w.get("measures") or []):
                if m and m not in rep.measures:
                    problems.append(d.problem(f"widget `{w.get('key')}`: report `{rep.key}` has no measure `{m}`",
                                              ("widgets", i)))
            if w.get("dimension") and w["dimension"] not in rep.dimensions:
                problems.append(d.problem(f"widget `{w.get('key')}`: report `{rep.key}` has no dimension "
                                          f"`{w['dimension']}`", ("widgets", i, "dimension")))
    return problems


def attach(loom) -> None:
    ext = ReportsExtension(loom)
    loom.extend("reports", ext)
    loom.install_checks.append(check_bundle)
    ext.rollups.subscribe(loom.bus)
