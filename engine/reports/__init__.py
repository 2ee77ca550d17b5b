"""Reports and dashboards: definitions -> one SQL query each, drill-down, exports, charts.

Public surface:

* :class:`Reports` (``loom.extensions["reports"].reports``): ``run``, ``records``, ``compile``,
  ``sql``, ``definition``, ``list``;
* :class:`Dashboards`: ``render``, ``widget``, ``list``, ``default_for``, personal dashboards;
* :func:`export_csv`, :func:`export_xlsx`; :func:`propose_indexes`, :func:`create_indexes`; :func:`run_due` (schedules);
* :func:`parse_report`, :func:`translate_expression`.
"""
from engine.reports.definition import Report, parse_report
from engine.reports.expressions import parse as parse_expression, translate as translate_expression
from engine.reports.service import Reports, format_drill, parse_drill


def __getattr__(name):
    # heavier modules load on first use (openpyxl is only needed when exporting)
    if name in {"export_csv", "export_xlsx"}:
        from engine.reports import export
        return getattr(export, name)
    if name in {"propose_indexes", "create_indexes"}:
        from engine.reports import indexes
        return getattr(indexes, name)
    if name == "run_due":
        from engine.reports.schedule import run_due
        return run_due
    if name == "Dashboards":
        from engine.reports.dashboards import Dashboards
        return Dashboards
    raise AttributeError(name)


__all__ = ["Report", "Reports", "parse_report", "parse_expression", "translate_expression", "format_drill",
           "parse_drill", "export_csv", "export_xlsx", "propose_indexes", "create_indexes", "run_due", "Dashboards"]
