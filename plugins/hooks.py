"""Hook points inside the record service: field validation, before-save, after-commit.

``before_save`` is appended to ``RecordService.before_save_hooks`` and runs inside the write's
transaction after the engine's own validation (computed fields, required fields, rules): plugin
``validate`` hooks check one field, plugin ``before_save`` hooks and the entity definition's
``hooks.before_save`` (``plugin.function`` or a bundle script key) may change fields or refuse
the write with field problems. Any failure of a hook -- an exception, a budget overrun -- refuses
the write: a check that could not run is not a check that passed.

``after_commit`` subscribes to ``record.*`` on the bus: the write is already committed, so a failing
hook is logged (and kept in ``extension.errors``), never undoing the user's save.
"""
from __future__ import annotations

import logging

from engine.errors import InvalidInput, Problem
from engine.forms.labels import label_of
from engine.sandbox import SandboxError, compile_script

log = logging.getLogger("loom.plugins")

#: what a hook sees of the record: no engine bookkeeping it could trip over
_SKIP = {"created_by", "updated_by"}


def _context(entity, actor, record_id, event: str) -> dict:
    return {"event": event, "entity": entity.full_key, "id": record_id, "user": actor.username,
            "locale": actor.locale}


def _messages(result, default_field, locale) -> list[tuple[str | None, str]]:
    """A hook's answer as (field, message) pairs: None/True/{} = fine; False = invalid; text or a
    {zh-CN, en} label = one message; {field: message}; a list of any of these."""
    if result is None or result is True or result == {} or result == []:
        return []
    if result is False:
        return [(default_field, "")]
    if isinstance(result, str):
        return [(default_field, result)]
    if isinstance(result, dict):
        if set(result) <= {"zh-CN", "en"}:
            return [(default_field, label_of(result, locale))]
        return [(None if k in ("", "_") else str(k), label_of(v, locale) if isinstance(v, dict) else str(v))
                for k, v in result.items() if v]
    if isinstance(result, (list, tuple)):
        out = []
        for item in result:
            out.extend(_messages(item, default_field, locale))
        return out
    return [(default_field, str(result))]


class RecordHooks:
    def __init__(self, ext):
        self.ext = ext

    # -- inside the write ----------------------------------------------------------------------

    def before_save(self, entity, record: dict, actor, conn, record_id, problems: list) -> None:
        snap = self.ext.current()
        key = entity.full_key
        validators = snap.validate.get(key)
        savers = snap.before_save.get(key)
        declared = (entity.spec.get("hooks") or {}).get("before_save")
        if not (validators or savers or declared):
            return
        event = "create" if record_id is None else "update"
        ctx = _context(entity, actor, record_id, event)
        for plugin, hook in validators or ():
            fk = hook["target"].rsplit(".", 1)[1]
            value = record.get(fk)
            if value is None or value == "":
                continue            # `required` speaks for empty values
            try:
                result = plugin.run(hook["function"], (value, _view(record)), api=self.ext.plugin_api(plugin, actor),
                                    budget=self.ext.budget(plugin, hook), path=hook["script"])
            except SandboxError as exc:
                problems.append(_failed(plugin.name, hook["function"], exc, fk))
                continue
            for field, msg in _messages(result, fk, actor.locale):
                problems.append(Problem(msg or label_of(hook.get("message"), actor.locale) or _invalid(actor.locale),
                                        field=field, code="plugin_validation"))
        if problems:
            return              # before-save hooks see only records that passed validation
        for plugin, hook in savers or ():
            self._save_hook(entity, record, actor, ctx, problems, plugin, hook["function"], hook["script"],
                            self.ext.budget(plugin, hook))
        for ref in declared or ():
            self._declared(entity, record, actor, ctx, problems, ref, conn)

    def _save_hook(self, entity, record, actor, ctx, problems, plugin, fn, path, budget) -> None:
        view = _view(record)
        try:
            result = plugin.run(fn, (view, ctx), api=self.ext.plugin_api(plugin, actor), budget=budget, path=path)
        except SandboxError as exc:
            problems.append(_failed(plugin.name, fn, exc))
            return
        self._apply(entity, record, view, actor, problems, result)

    def _declared(self, entity, record, actor, ctx, problems, ref: str, conn) -> None:
        """An entity's ``hooks.before_save`` entry: ``plugin.function`` or a bundle script key."""
        snap = self.ext.current()
        plugin_name, _, fn = ref.partition(".")
        plugin = snap.plugins.get(plugin_name) if fn else None
        if plugin is not None and plugin.has(fn):
            self._save_hook(entity, record, actor, ctx, problems, plugin, fn, None, plugin.budget)
            return
        if fn:
            problems.append(Problem(f"before-save hook `{ref}`: plugin `{plugin_name}` is not enabled or has no "
                                    f"function `{fn}`", code="hook_missing"))
            return
        code = self.ext.bundle_script(conn, entity.app, ref)
        if code is None:
            problems.append(Problem(f"before-save hook `{ref}`: no script `{ref}` in app `{entity.app}`",
                                    code="hook_missing"))
            return
        view = _view(record)
        try:
            out = code.execute({"record": view, "context": ctx}, api=self.ext.loom.sandbox_api(actor))
        except SandboxError as exc:
            problems.append(Problem(exc.message, code="hook_failed"))
            return
        self._apply(entity, record, view, actor, problems, out.get("errors"))

    @staticmethod
    def _apply(entity, record, view, actor, problems, result) -> None:
        for field, msg in _messages(result, None, actor.locale):
            problems.append(Problem(msg or _invalid(actor.locale), field=field, code="before_save"))
        changes = {k: v for k, v in view.items() if k in entity.fields and record.get(k) != v
                   and entity.fields[k].type != "computed"}
        if changes and not problems:
            try:
                record.update(entity.validator.load(changes, partial=True, locale=actor.locale))
            except InvalidInput as exc:
                problems.extend(exc.problems)

    # -- after the commit ------------------------------------------------------------------------

    def after_commit(self, event) -> None:
        p = event.payload
        key = p.get("full_key")
        if not key:
            return
        snap = self.ext.current()
        kind = event.name.rsplit(".", 1)[-1]         # created | updated | deleted
        hooks = list(snap.after_commit.get(key, ())) + list(snap.after_commit.get("*", ()))
        entity = self.ext.loom.model.entities.get(key)
        declared = ((entity.spec.get("hooks") or {}).get("after_commit") or []) if entity is not None else []
        if not hooks and not declared:
            return
        actor = p.get("actor")
        if actor is None:
            from engine.security import Actor
            actor = Actor.system("plugins")
        data = {"event": kind, "entity": key, "id": p.get("id"), "record": p.get("record"), "before": p.get("before"),
                "changed": list(p.get("changed") or []), "user": actor.username}
        for plugin, hook in hooks:
            if hook.get("events") and kind not in hook["events"]:
                continue
            self._after(plugin, hook["function"], hook["script"], data, actor, self.ext.budget(plugin, hook))
        for ref in declared:
            plugin_name, _, fn = ref.partition(".")
            plugin = snap.plugins.get(plugin_name)
            if plugin is not None and plugin.has(fn):
                self._after(plugin, fn, None, data, actor, plugin.budget)
            elif not fn and entity is not None:
                with self.ext.loom.db.connect() as conn:
                    code = self.ext.bundle_script(conn, entity.app, ref)
                if code is not None:
                    try:
                        code.execute({"event": data}, api=self.ext.loom.sandbox_api(actor))
                    except SandboxError as exc:
                        self.ext.report_error(f"{entity.app}/scripts/{ref}.py", exc)

    def _after(self, plugin, fn, path, data, actor, budget) -> None:
        try:
            plugin.run(fn, (data,), api=self.ext.plugin_api(plugin, actor), budget=budget, path=path)
        except SandboxError as exc:
            self.ext.report_error(f"{plugin.name}.{fn}", exc)


def _view(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in _SKIP}


def _invalid(locale) -> str:
    return "无效的值" if (locale or "").startswith("zh") else "invalid value"


def _failed(plugin: str, fn: str, exc: SandboxError, field=None) -> Problem:
    return Problem(f"plugin hook {plugin}.{fn} failed: {exc.message}", field=field, code="hook_failed")


def compile_bundle_script(app: str, key: str, source: str):
    return compile_script(source, f"{app}/scripts/{key}.py")
