"""Chart options for Apache ECharts, built on the server from our own widget config.

Definitions name a chart type, a dimension and measures -- never an ECharts option and never
JavaScript (options can carry formatter functions; a stored one would be stored script). The
options produced here are plain JSON: data, axes, series, tooltip, legend.
"""
from __future__ import annotations

from decimal import Decimal


def _num(v):
    if v is None:
        return None
    return float(Decimal(str(v)))


def chart_option(kind: str, result: dict, dimension: str | None, measures: list[str], *, stack=False,
                 horizontal=False) -> dict:
    cols = {c["key"]: c for c in result["columns"]}
    rows = result["rows"]
    names = [str(r.get(dimension)) if dimension else result.get("label") for r in rows]
    if kind in {"bar", "line"}:
        cat_axis = {"type": "category", "data": names}
        val_axis = {"type": "value"}
        series = [{"name": cols[m]["label"], "type": kind, "data": [_num(r.get(m)) for r in rows],
                   **({"stack": "total"} if stack else {}), **({"smooth": True} if kind == "line" else {})}
                  for m in measures]
        return {"tooltip": {"trigger": "axis"}, "legend": {"data": [s["name"] for s in series]},
                "grid": {"left": 60, "right": 20, "top": 40, "bottom": 40, "containLabel": True},
                "xAxis": val_axis if horizontal else cat_axis, "yAxis": cat_axis if horizontal else val_axis,
                "series": series}
    m = measures[0]
    data = [{"name": n, "value": _num(r.get(m))} for n, r in zip(names, rows)]
    if kind == "pie":
        return {"tooltip": {"trigger": "item"}, "legend": {"type": "scroll", "bottom": 0},
                "series": [{"name": cols[m]["label"], "type": "pie", "radius": ["35%", "65%"], "data": data}]}
    if kind == "funnel":
        data.sort(key=lambda d: -(d["value"] or 0))
        return {"tooltip": {"trigger": "item"},
                "series": [{"name": cols[m]["label"], "type": "funnel", "sort": "descending", "data": data}]}
    if kind == "treemap":
        return {"tooltip": {"trigger": "item"},
                "series": [{"name": cols[m]["label"], "type": "treemap", "roam": False, "nodeClick": False,
                            "breadcrumb": {"show": False}, "data": data}]}
    raise ValueError(f"no chart type `{kind}`")
