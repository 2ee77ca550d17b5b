"""Large-value and suspicious transaction reports as structured files (CSV or XML).

Layout (one record per active alert of a rule or typology whose ``report`` is the requested type):

=============  ==============================================================
report_type    ``large_value`` (大额交易报告) or ``suspicious`` (可疑交易报告)
alert_id       the alert's id
case_id        the case record created for it (empty if none)
rule           rule or typology key; ``rule_version`` its version
group_key      the rule set's group key value (for example the account)
event_id       the external id of the event that raised it
event_time     ISO-8601, UTC
score          the score; ``action`` alert or block
evidence       external ids of the evidence events, separated by ``;``
summary        one line saying why
=============  ==============================================================

XML: ``<report type=".." generated=".." count="..">`` with one ``<alert>`` element per record
holding the same names as child elements (``evidence`` as ``<event id=".."/>`` children).
"""
from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import sqlalchemy as sa

from engine.errors import InvalidInput, Problem
from engine.rules.tables import alerts

COLUMNS = ("report_type", "alert_id", "case_id", "rule", "rule_version", "group_key", "event_id", "event_time",
           "score", "action", "evidence", "summary")
REPORTS = ("large_value", "suspicious")


def _rows(loom, report: str, ruleset: str | None, since: float | None, until: float | None):
    q = sa.select(alerts).where(alerts.c.report == report, alerts.c.mode == "active")
    if ruleset:
        q = q.where(alerts.c.ruleset == ruleset)
    if since is not None:
        q = q.where(alerts.c.ts >= since)
    if until is not None:
        q = q.where(alerts.c.ts <= until)
    with loom.db.connect() as conn:
        for a in conn.execute(q.order_by(alerts.c.ts, alerts.c.id)).mappings():
            exp = a["explanation"] or {}
            yield {"report_type": report, "alert_id": a["id"], "case_id": a["case_id"] or "", "rule": a["subject"],
                   "rule_version": a["version"], "group_key": a["gkey"], "event_id": a["event_id"],
                   "event_time": datetime.fromtimestamp(a["ts"], timezone.utc).isoformat(),
                   "score": f"{a['score']:g}", "action": a["action"], "evidence": exp.get("evidence") or [],
                   "summary": exp.get("summary", "")}


def export_report(loom, report: str, fmt: str = "csv", *, ruleset: str | None = None,
                  since: float | None = None, until: float | None = None) -> tuple[str, str]:
    """Return (content, media type)."""
    if report not in REPORTS:
        raise InvalidInput(problems=[Problem(f"`report`: `{report}` is not one of {', '.join(REPORTS)}",
                                             field="report", code="parameter")])
    if fmt not in ("csv", "xml"):
        raise InvalidInput(problems=[Problem(f"`format`: `{fmt}` is not csv or xml", field="format",
                                             code="parameter")])
    rows = list(_rows(loom, report, ruleset, since, until))
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([";".join(r[c]) if c == "evidence" else r[c] for c in COLUMNS])
        return buf.getvalue(), "text/csv; charset=utf-8"
    root = ET.Element("report", type=report, generated=datetime.now(timezone.utc).isoformat(), count=str(len(rows)))
    for r in rows:
        el = ET.SubElement(root, "alert")
        for c in COLUMNS:
            if c == "evidence":
                ev = ET.SubElement(el, "evidence")
                for eid in r[c]:
                    ET.SubElement(ev, "event", id=str(eid))
            elif c != "report_type":
                ET.SubElement(el, c).text = str(r[c])
    return ET.tostring(root, encoding="unicode", xml_declaration=True), "application/xml; charset=utf-8"
