"""Attach plugins to a Loom: registry, engine API for scripts, hook points, tick, CLI/web helpers.

``attach(loom)``:

* ``loom.extensions["plugins"]`` -> :class:`PluginExtension` (``init_db``, ``tick``, ``stop``);
* the engine API every expression and script gets (``workflow.start``, ``notify.*`` and one
  namespace per enabled plugin) is added through the sandbox extension's providers (which also
  gives ``records``); without the sandbox extension it sets ``loom.sandbox_api_factory`` itself;
* ``loom.records.before_save_hooks`` gets the plugin/entity before-save hook (only when the record
  service has that list); ``record.*`` on the bus runs after-commit hooks;
* service-task actions ``<plugin>.<name>`` are registered with the workflow package.

Changes made by any process (install, enable, configure, a new script version) are picked up
within :attr:`PluginExtension.reload_interval` seconds: no restart.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from datetime import datetime, timezone

from engine.errors import InvalidInput, NotFound, Problem
from engine.sandbox import Budget, SandboxError, api_namespace, compile_script
from plugins import engine_api, store
from plugins.hooks import RecordHooks, compile_bundle_script
from plugins.lint import lint
from plugins.runtime import Snapshot, make_budget

log = logging.getLogger("loom.plugins")

ENDPOINT_SECONDS = 2.0
MAX_ERRORS = 200


class PluginExtension:
    reload_interval = 1.0

    def __init__(self, loom):
        self.loom = loom
        self._snap = Snapshot()
        self._checked_at = 0.0
        self._loaded = False
        self._lock = threading.RLock()
        self._apis: OrderedDict = OrderedDict()
        self._scripts: dict = {}
        self.errors: list[tuple[str, str]] = []      # (where, message) of after-commit / job failures
        self.hooks = RecordHooks(self)
        self.clock = lambda: datetime.now(timezone.utc)

    # -- lifecycle -------------------------------------------------------------------------------

    def init_db(self, db_engine) -> list[str]:
        import plugins.tables  # noqa: F401
        from engine.db import sync_system_tables
        changes = sync_system_tables(db_engine)
        self.refresh(force=True)
        return changes

    def stop(self) -> None:
        pass

    def tick(self) -> dict:
        from plugins.jobs import drain_channels, run_schedules
        snap = self.current()
        now = self.clock()
        out = {}
        if snap.schedules:
            out["jobs"] = run_schedules(self, snap, now)
        if snap.channels:
            out["sent"] = drain_channels(self, snap, now)
        return out

    # -- the registry ----------------------------------------------------------------------------

    def current(self) -> Snapshot:
        if not self._loaded or time.monotonic() - self._checked_at > self.reload_interval:
            self.refresh()
        return self._snap

    def refresh(self, force: bool = False) -> Snapshot:
        import sqlalchemy as sa
        with self._lock:
            self._checked_at = time.monotonic()
            try:
                with self.loom.db.connect() as conn:
                    rev = store.revision(conn)
                    if not force and self._loaded and rev == self._snap.revision:
                        return self._snap
                    rows = store.load_all(conn)
            except (sa.exc.OperationalError, sa.exc.ProgrammingError):
                return self._snap           # tables not created yet (before `loom init`)
            snap = Snapshot.build(rows, rev)
            changed = self._loaded and set(snap.plugins) != set(self._snap.plugins) or any(
                p.revision != getattr(self._snap.plugins.get(n), "revision", None) for n, p in snap.plugins.items())
            self._snap = snap
            self._loaded = True
            self._apis.clear()
            self._register_actions(snap)
            if changed or force:
                self._invalidate_sandbox_apis()
            return snap

    def _invalidate_sandbox_apis(self) -> None:
        """The sandbox caches each actor's API; plugin namespaces in it must follow enable/disable."""
        sandbox = self.loom.extensions.get("sandbox")
        invalidate = getattr(sandbox, "invalidate", None)
        if invalidate is not None:
            invalidate()
        elif sandbox is not None and hasattr(sandbox, "_cache"):
            with sandbox._lock:
                sandbox._cache.clear()

    def _register_actions(self, snap: Snapshot) -> None:
        try:
            from engine.workflow.actions import register_action
        except ImportError:
            return
        for name in snap.actions:
            register_action(name, _dispatch_action(name))

    # -- administration (one transaction each, then the change is live in this process) ---------

    def install(self, folder, actor, *, enable: bool | None = None) -> dict:
        from plugins.manifest import read_plugin
        manifest = read_plugin(folder)
        with self.loom.db.begin() as conn:
            result = store.install(conn, manifest, actor, enable=enable)
        self.refresh(force=True)
        return result

    def set_enabled(self, name: str, enabled: bool, actor) -> bool:
        with self.loom.db.begin() as conn:
            changed = store.set_enabled(conn, name, enabled, actor)
        self.refresh(force=True)
        return changed

    def configure(self, name: str, values: dict, actor) -> dict:
        with self.loom.db.begin() as conn:
            config = store.configure(conn, name, values, actor)
        self.refresh(force=True)
        return config

    def update_script(self, name: str, path: str, source: str, actor) -> int:
        with self.loom.db.begin() as conn:
            version = store.update_script(conn, name, path, source, actor)
        self.refresh(force=True)
        return version

    # -- running plugin code ---------------------------------------------------------------------

    def plugin(self, name: str):
        p = self.current().plugins.get(name)
        if p is None:
            raise NotFound(f"plugin `{name}` is not installed or not enabled",
                           problems=[Problem(f"plugin `{name}` is not enabled", code="plugin_disabled")])
        return p

    def plugin_actor(self, plugin):
        from engine.security import Actor
        return Actor.system(f"plugin:{plugin.name}")

    def plugin_api(self, plugin, actor):
        """The prepared API of ``plugin``'s scripts acting as ``actor`` (cached per actor)."""
        from engine.sandbox.api import prepare_api
        key = (plugin.name, plugin.revision, actor)
        with self._lock:
            api = self._apis.get(key)
            if api is not None:
                self._apis.move_to_end(key)
                return api
        api = prepare_api(engine_api.plugin_api(self.loom, actor, plugin))
        with self._lock:
            self._apis[key] = api
            while len(self._apis) > 512:
                self._apis.popitem(last=False)
        return api

    @staticmethod
    def budget(plugin, hook: dict | None = None, default_seconds: float | None = None) -> Budget:
        spec = dict(hook.get("budget") or {}) if hook else {}
        if default_seconds and "seconds" not in spec and "seconds" not in (plugin.manifest.get("budget") or {}):
            spec["seconds"] = default_seconds
        return make_budget(spec, plugin.manifest.get("budget"))

    def call_function(self, plugin_name: str, fn: str, args=(), kwargs=None, *, actor):
        """Call an exposed plugin function (what ``cn_identity.check_id(x)`` in an expression does)."""
        p = self.plugin(plugin_name)
        target = self.current().functions.get(plugin_name, {}).get(fn)
        if target is None:
            raise NotFound(f"plugin `{plugin_name}` exposes no function `{fn}`")
        return p.run(target, args, kwargs, api=self.plugin_api(p, actor), budget=p.budget)

    def call(self, name: str, payload=None, *, actor):
        """``plugin.call`` service action: ``name`` is ``plugin.function`` (an exposed function)."""
        plugin_name, _, fn = name.partition(".")
        return self.call_function(plugin_name, fn, (payload,), actor=actor)

    def endpoint(self, plugin_name: str, name: str, request: dict, actor):
        """A custom API endpoint: the hook's function gets ``request`` (method, args, json, user)."""
        p = self.plugin(plugin_name)
        hook = self.current().endpoints.get((plugin_name, name))
        if hook is None:
            raise NotFound(f"plugin `{plugin_name}` has no endpoint `{name}`")
        methods = hook.get("methods") or ["GET", "POST"]
        if request.get("method") not in methods:
            raise InvalidInput(f"{request.get('method')} is not allowed here; use {', '.join(methods)}",
                               problems=[Problem("method not allowed", code="method")])
        req = {**request, "user": engine_api._user(actor)}
        return p.run(hook["function"], (req,), api=self.plugin_api(p, actor),
                     budget=self.budget(p, hook, ENDPOINT_SECONDS), path=hook["script"])

    def report_rows(self, plugin_name: str, name: str, params: dict, actor) -> dict:
        """A report data source: the hook's function returns rows (a list of dicts)."""
        p = self.plugin(plugin_name)
        hook = self.current().report_sources.get((plugin_name, name))
        if hook is None:
            raise NotFound(f"plugin `{plugin_name}` has no report source `{name}`")
        rows = p.run(hook["function"], (dict(params),), api=self.plugin_api(p, actor),
                     budget=self.budget(p, hook, ENDPOINT_SECONDS), path=hook["script"])
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise InvalidInput(f"report source {plugin_name}.{name} must return a list of rows (dicts)")
        columns = []
        for r in rows:
            columns.extend(k for k in r if k not in columns)
        return {"columns": columns, "rows": rows}

    def run_script(self, source: str, actor, data: dict | None = None, name: str = "<script>",
                   budget: Budget | None = None) -> tuple[dict, list[str]]:
        """Run a script as ``actor`` with the engine API (``loom script run``): (variables left, log lines)."""
        problems = lint(source, name)
        code = compile_script(source, name)
        if problems:
            raise InvalidInput(f"{name}: {problems[0].message}", problems=problems)
        messages: list[str] = []
        try:
            out = code.execute(dict(data or {}), api=self.loom.sandbox_api(actor), budget=budget, messages=messages)
        except SandboxError as exc:
            exc.messages = messages or exc.messages
            raise
        return out, messages

    def bundle_script(self, conn, app: str, key: str):
        from engine.meta import store as defs
        d = defs.get(conn, app, "script", key)
        if d is None:
            return None
        ck = (app, key, d.version)
        code = self._scripts.get(ck)
        if code is None:
            code = self._scripts[ck] = compile_bundle_script(app, key, d.body.get("source") or "")
        return code

    def report_error(self, where: str, exc: SandboxError) -> None:
        log.warning("plugin hook %s failed: %s", where, exc.message)
        self.errors.append((where, exc.message))
        del self.errors[:-MAX_ERRORS]

    # -- the API every expression and script gets ------------------------------------------------

    def api_provider(self, loom, actor) -> dict:
        api = engine_api.general_api(loom, actor)
        snap = self.current()
        for name, functions in snap.functions.items():
            if functions and name not in api:
                api[name] = api_namespace(name, **{
                    exposed: _bound(self, name, exposed, actor) for exposed in functions})
        return api

    def before_save(self, entity, record, actor, conn, record_id, problems) -> None:
        self.hooks.before_save(entity, record, actor, conn, record_id, problems)


def _bound(ext, plugin_name, fn, actor):
    def call(*args, **kwargs):
        return ext.call_function(plugin_name, fn, args, kwargs, actor=actor)
    return call


def _dispatch_action(name: str):
    """A workflow service action running plugin hook ``name`` of whichever Loom runs the process."""
    def action(ctx, **params):
        ext = ctx.loom.extensions.get("plugins")
        snap = ext.current() if ext is not None else None
        if snap is None or name not in snap.actions:
            raise InvalidInput(f"service action `{name}`: its plugin is not enabled")
        plugin, hook = snap.actions[name]
        context = {"instance": ctx.instance_id, "app": ctx.app, "task": ctx.bpmn_id, "idempotency_key": ctx.key}
        return plugin.run(hook["function"], (params, context), api=ext.plugin_api(plugin, ctx.actor),
                          budget=ext.budget(plugin, hook), path=hook["script"])
    return action


def attach(loom) -> None:
    import plugins.tables  # noqa: F401  (declares loom_plugin* on SYSTEM)
    ext = PluginExtension(loom)
    loom.extend("plugins", ext)
    sandbox = loom.extensions.get("sandbox")
    if sandbox is not None and hasattr(sandbox, "add_api"):
        sandbox.add_api(ext.api_provider)
    else:                               # no sandbox extension: give scripts our API ourselves
        previous = loom.sandbox_api_factory

        def factory(lm, actor):
            return {**(previous(lm, actor) if previous else {}), **ext.api_provider(lm, actor)}
        loom.sandbox_api_factory = factory
    hooks = getattr(loom.records, "before_save_hooks", None)
    if hooks is not None:
        hooks.append(ext.before_save)
    loom.bus.subscribe("record.*", ext.hooks.after_commit)
