"""Browser libraries, served from the npm packages installed by ``make`` (never committed).

Only files under the packages listed in ``package.json`` are served, with long cache headers;
templates link them as ``url_for('assets.vendor', path='htmx.org/dist/htmx.min.js')``.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, abort, send_from_directory

bp = Blueprint("assets", __name__)
ROOT = Path(__file__).resolve().parents[3]
NODE_MODULES = ROOT / "node_modules"


@lru_cache(maxsize=1)
def allowed_packages() -> set[str]:
    try:
        deps = json.loads((ROOT / "package.json").read_text())["dependencies"]
    except (OSError, KeyError, ValueError):
        return set()
    return set(deps)


@bp.get("/static/vendor/<path:path>")
def vendor(path: str):
    parts = path.split("/")
    package = "/".join(parts[:2]) if parts[0].startswith("@") else parts[0]
    if package not in allowed_packages() or ".." in parts:
        abort(404)
    resp = send_from_directory(NODE_MODULES, path, max_age=86400 * 30)
    return resp
