"""The engine functions scripts may call, always acting as the actor captured here.

Two uses:

* :func:`general_api` -- added to every expression and script the engine runs (through the sandbox
  extension's providers): ``workflow.start``, ``notify.inapp`` / ``notify.channel`` and one
  namespace per enabled plugin (``cn_identity.check_id(...)``). ``records`` comes from the sandbox
  extension itself.
* :func:`plugin_api` -- what a plugin's own scripts see: the same functions, but never more than the
  plugin declared in ``permissions`` (entities and actions, processes, notifications, HTTP hosts),
  intersected with the actor's own rights. Hooks with no human behind them (schedules, outbox
  channels) run as a system actor named ``plugin:<name>``, limited by the declaration alone.

Every function takes the actor from the closure; a script cannot pass another one.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import datetime, timezone
from urllib.parse import urlparse

from engine.errors import Forbidden, InvalidInput, Problem
from engine.sandbox import api_namespace

MAX_FIND = 500


def _deny(what: str):
    raise Forbidden(f"not allowed: {what}", problems=[Problem(what, code="forbidden")])


# -- records (for plugin scripts: the declared ceiling on top of the actor's rights) ------------------

def records_namespace(loom, actor, allowed: dict[str, set] | None, plugin: str | None = None):
    """``records.get/find/create/update`` as ``actor``; ``allowed`` maps entity -> actions (None: no ceiling)."""
    from engine.records.query import ListRequest

    def gate(entity: str, action: str) -> None:
        if allowed is not None and action not in allowed.get(entity, ()):
            _deny(f"plugin `{plugin}` did not declare `{action}` on `{entity}` in its permissions")

    def get(entity: str, record_id: int) -> dict:
        gate(entity, "read")
        return loom.records.get(entity, int(record_id), actor)

    def find(entity: str, where: dict | None = None, *, search: str | None = None, order_by: str | None = None,
             limit: int = 50) -> list:
        gate(entity, "read")
        req = ListRequest.from_params(dict(where or {}))
        req.search = search
        req.sort = [(s.lstrip("-"), s.startswith("-")) for s in (order_by or "").split(",") if s]
        req.page_size = max(1, min(int(limit), MAX_FIND))
        req.with_total = False
        return loom.query.list(loom.records.entity(entity), actor, req)["items"]

    def create(entity: str, data: dict) -> dict:
        gate(entity, "create")
        return loom.records.create(entity, dict(data), actor)

    def update(entity: str, record_id: int, data: dict, expected_version: int | None = None) -> dict:
        gate(entity, "update")
        return loom.records.update(entity, int(record_id), dict(data), actor, expected_version=expected_version)

    return api_namespace("records", get=get, find=find, create=create, update=update)


# -- workflows and notifications ---------------------------------------------------------------------

def workflow_namespace(loom, actor, allowed: set | None = None, plugin: str | None = None):
    service = getattr(loom, "workflow", None)
    if service is None:
        return None

    def start(process: str, data: dict | None = None, correlation_key: str | None = None) -> dict:
        if allowed is not None and process not in allowed:
            _deny(f"plugin `{plugin}` did not declare process `{process}` in its permissions")
        inst = service.start(process, actor, dict(data or {}), correlation_key=correlation_key)
        return {"id": inst.get("id"), "status": inst.get("status")}

    return api_namespace("workflow", start=start)


def notify_namespace(loom, actor, allowed: bool = True, plugin: str | None = None):
    try:
        from engine.workflow.tables import notifications, outbox
    except ImportError:     # no workflow package: no notification tables
        return None

    def gate():
        if not allowed:
            _deny(f"plugin `{plugin}` did not declare `notify: true` in its permissions")

    def now():
        return datetime.now(timezone.utc)

    def key(given):
        return str(given) if given else f"script:{actor.username}:{uuid.uuid4().hex}"

    def inapp(title: str, body: str = "", user: str | None = None, role: str | None = None, link: str | None = None,
              idempotency_key: str | None = None) -> dict:
        gate()
        if not user and not role:
            raise InvalidInput("notify.inapp: give `user` or `role`", problems=[Problem("no recipient", field="user")])
        with loom.records.unit() as u:
            rid = u.conn.execute(notifications.insert().values(
                username=user, role=role, title=str(title)[:300], body=body, link=link,
                idempotency_key=key(idempotency_key), created_at=now())).inserted_primary_key[0]
        return {"notification": rid}

    def channel(name: str, payload: dict | None = None, idempotency_key: str | None = None) -> dict:
        """Queue a message for a channel the engine does not deliver itself (a plugin drains it)."""
        gate()
        with loom.records.unit() as u:
            rid = u.conn.execute(outbox.insert().values(
                channel=str(name)[:40], payload=dict(payload or {}), idempotency_key=key(idempotency_key),
                created_at=now(), attempts=0)).inserted_primary_key[0]
        return {"outbox": rid}

    return api_namespace("notify", inapp=inapp, channel=channel)


# -- HTTP for integration plugins ----------------------------------------------------------------------

SIGNATURE_HEADER = "X-Loom-Signature"


def sign(secret: str, body: bytes, timestamp: str) -> str:
    """``sha256=<hex>`` of ``timestamp.body`` keyed by the shared secret (receivers recompute it)."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def http_namespace(plugin: str, hosts: list[str], config: dict):
    """``http.post(url, payload, idempotency_key=..., headers=...)``: JSON POST to a declared host,
    signed with the plugin's ``secret`` configuration value; the time limit is what is left of the
    script's budget (at most 10 s)."""
    allowed = {h.lower() for h in hosts}

    def post(url: str, payload=None, idempotency_key: str | None = None, headers: dict | None = None) -> dict:
        import requests
        parsed = urlparse(str(url))
        host = (parsed.hostname or "").lower()
        hostport = f"{host}:{parsed.port}" if parsed.port else host
        if parsed.scheme not in {"http", "https"} or (host not in allowed and hostport not in allowed):
            _deny(f"plugin `{plugin}` may not call {parsed.scheme}://{hostport} (declare it under permissions.http)")
        body = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8")
        ts = str(int(datetime.now(timezone.utc).timestamp()))
        h = {str(k): str(v) for k, v in (headers or {}).items() if str(k).lower() not in {"host", "content-length"}}
        h.update({"Content-Type": "application/json; charset=utf-8", "User-Agent": f"loom-plugin/{plugin}",
                  "X-Loom-Timestamp": ts})
        if idempotency_key:
            h["Idempotency-Key"] = str(idempotency_key)
        secret = config.get("secret")
        if secret:
            h[SIGNATURE_HEADER] = sign(str(secret), body, ts)
        resp = requests.post(url, data=body, headers=h, timeout=_time_left(10.0), allow_redirects=False)
        try:
            answer = resp.json()
        except ValueError:
            answer = resp.text[:2000]
        return {"status": resp.status_code, "body": answer}

    return api_namespace("http", post=post)


def _time_left(cap: float) -> float:
    from time import monotonic
    try:
        from engine.sandbox.budget import current_run
        run = current_run()
    except ImportError:  # pragma: no cover
        run = None
    left = (run.deadline - monotonic()) if run is not None else cap
    return max(0.05, min(cap, left))


# -- what each kind of script gets ---------------------------------------------------------------------

def declared(manifest: dict) -> dict:
    perms = manifest.get("permissions") or {}
    entities: dict[str, set] = {}
    for p in perms.get("entities") or []:
        entities.setdefault(p["entity"], set()).update(p.get("actions") or [])
    return {"entities": entities, "workflows": set(perms.get("workflows") or []), "notify": bool(perms.get("notify")),
            "http": list(perms.get("http") or [])}


def plugin_api(loom, actor, plugin) -> dict:
    """The API of a plugin's own scripts (``plugin`` is a :class:`plugins.runtime.LoadedPlugin`)."""
    d = declared(plugin.manifest)
    api = {"records": records_namespace(loom, actor, d["entities"], plugin.name),
           "config": dict(plugin.config), "plugin": {"name": plugin.name, "version": plugin.version},
           "user": _user(actor)}
    wf = workflow_namespace(loom, actor, d["workflows"], plugin.name)
    if wf is not None:
        api["workflow"] = wf
    nt = notify_namespace(loom, actor, d["notify"], plugin.name)
    if nt is not None:
        api["notify"] = nt
    if d["http"]:
        api["http"] = http_namespace(plugin.name, d["http"], plugin.config)
    return api


def general_api(loom, actor) -> dict:
    """Engine functions for every expression and script (besides ``records`` from the sandbox)."""
    api = {}
    wf = workflow_namespace(loom, actor)
    if wf is not None:
        api["workflow"] = wf
    nt = notify_namespace(loom, actor)
    if nt is not None:
        api["notify"] = nt
    return api


def _user(actor) -> dict:
    return {"id": actor.user_id, "username": actor.username, "roles": sorted(actor.roles), "locale": actor.locale,
            "is_system": actor.is_system}
