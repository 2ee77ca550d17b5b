"""UI language: Flask-Babel set up for every area's catalog, the per-user locale, and the switch.

Every area ships its own zh_CN catalog (``engine/*/translations``, ``designer/translations``,
``plugins/*/translations``); they are all given to Flask-Babel, which merges them, so adding a
catalog is adding a folder. Compiled ``.mo`` files are not committed: they are (re)built from the
``.po`` files when the app starts and a catalog is newer than its compiled file.

The locale of a request is the session's choice, else the user's stored ``loom_user.locale``,
else zh-CN. Switching from the header stores both, so the choice follows the user to other devices.
"""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, abort, g, redirect, request, session
from flask_babel import Babel

from engine.forms.labels import LOCALES, normalize_locale

log = logging.getLogger(__name__)
bp = Blueprint("i18n", __name__)
ROOT = Path(__file__).resolve().parents[3]


def translation_directories() -> list[Path]:
    """Every catalog folder of the engine, the designer and the plugins that exists now."""
    dirs = [p for p in sorted((ROOT / "engine").glob("*/translations")) if p.is_dir()]
    runtime = ROOT / "engine" / "runtime" / "translations"
    if runtime.is_dir() and runtime not in dirs:
        dirs.insert(0, runtime)
    for extra in [ROOT / "designer" / "translations", *sorted((ROOT / "plugins").glob("*/translations"))]:
        if extra.is_dir():
            dirs.append(extra)
    return dirs


#: Babel parses "zh_CN" as zh_Hans_CN and gettext then looks for a ``zh_Hans_CN`` folder; areas ship
#: ``zh_CN`` catalogs, so the compiled file is also written under the name gettext looks for.
ALIASES = {"zh_CN": "zh_Hans_CN"}


def compile_catalogs(dirs: list[Path]) -> list[Path]:
    """Compile each ``messages.po`` whose ``.mo`` is missing or older; returns what was written."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for d in dirs:
        for po in d.glob("*/LC_MESSAGES/*.po"):
            targets = [po.with_suffix(".mo")]
            alias = ALIASES.get(po.parts[-3])
            if alias:
                targets.append(d / alias / "LC_MESSAGES" / po.with_suffix(".mo").name)
            stale = [mo for mo in targets if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime]
            if not stale:
                continue
            try:
                with po.open("rb") as fh:
                    catalog = read_po(fh, locale=po.parts[-3])
                for mo in stale:
                    mo.parent.mkdir(parents=True, exist_ok=True)
                    tmp = mo.with_suffix(".mo.tmp")
                    with tmp.open("wb") as fh:
                        write_mo(fh, catalog)
                    tmp.replace(mo)
                    written.append(mo)
            except Exception:  # noqa: BLE001 -- a broken catalog must not stop the app; it is logged
                log.exception("could not compile the catalog %s", po)
    return written


def babel_locale(locale: str) -> str:
    """Our locale names (zh-CN, en) as Babel's (zh_CN, en)."""
    return normalize_locale(locale).replace("-", "_")


def current_locale() -> str:
    """The request's locale as ``zh-CN`` or ``en``."""
    if "loom_locale" in g:
        return g.loom_locale
    locale = session.get("locale")
    if not locale and session.get("user_id"):
        from engine.runtime.web.auth import current_actor
        try:
            actor = current_actor(optional=True)
        except Exception:  # noqa: BLE001 -- a bad token must not break choosing a language
            actor = None
        locale = actor.locale if actor else None
    g.loom_locale = normalize_locale(locale)
    return g.loom_locale


def _select_locale() -> str:
    return babel_locale(current_locale())


@bp.post("/locale/<code>")
def switch_locale(code: str):
    """Switch the UI language; remembered in the session and on the user."""
    if code not in LOCALES:
        abort(404)
    session["locale"] = code
    g.pop("loom_locale", None)
    g.pop("actor", None)
    if session.get("user_id"):
        from engine.runtime.app import get_loom
        from engine.security.users import users
        with get_loom().db.begin() as conn:
            conn.execute(users.update().where(users.c.id == session["user_id"]).values(locale=code))
    target = request.form.get("next") or request.referrer or "/"
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    return redirect(target)


def init_app(app) -> None:
    dirs = translation_directories()
    compile_catalogs(dirs)
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "zh_CN")
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(str(d) for d in dirs)
    if "babel" not in app.extensions:
        Babel(app, locale_selector=_select_locale)
    app.jinja_env.globals.update(current_locale=current_locale, LOCALES=LOCALES)
