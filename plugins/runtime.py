"""Enabled plugins in memory: compiled scripts and the hook indexes the extension looks up.

A :class:`Snapshot` is built from the database in one go and swapped in whole, so a request never
sees half an enable. Calling a plugin function runs a small compiled stub -- the script's source
followed by ``plugin_result = fn(*plugin_args, **plugin_kwargs)`` -- through the sandbox: the
script's own functions keep seeing each other, every call gets a budget, and errors keep the
script's file name and line numbers (the stub line comes after the last line of the file).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from engine.sandbox import Budget, compile_script
from plugins.lint import functions_of
from plugins.manifest import script_name

DEFAULT_SECONDS = 1.0
DEFAULT_MEMORY_MB = 64
STUB = "\n\nplugin_result = {fn}(*plugin_args, **plugin_kwargs)\n"


def make_budget(*specs) -> Budget:
    """The first given value of each limit among ``specs`` (hook, plugin), else the defaults."""
    seconds, memory = DEFAULT_SECONDS, DEFAULT_MEMORY_MB
    for spec in reversed([s for s in specs if s]):
        seconds = spec.get("seconds", seconds)
        memory = spec.get("memory_mb", memory)
    return Budget(seconds=seconds, memory_mb=memory)


class LoadedPlugin:
    """One enabled plugin: manifest, configuration and scripts, with compiled call stubs."""

    def __init__(self, row: dict, sources: dict[str, str]):
        self.name: str = row["name"]
        self.version: str = row["version"]
        self.revision: int = row["revision"]
        self.manifest: dict = dict(row["manifest"])
        self.config: dict = dict(row["config"])
        self.sources = dict(sources)
        self.index: dict[str, str] = {}           # function name -> script path
        for path, src in sorted(self.sources.items()):
            for fn in functions_of(src):
                self.index.setdefault(fn, path)
        self.budget = make_budget(self.manifest.get("budget"))
        self._stubs: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<plugin {self.name} {self.version}>"

    def has(self, fn: str) -> bool:
        return fn in self.index

    def stub(self, fn: str, path: str | None = None):
        path = path or self.index[fn]
        key = (path, fn)
        code = self._stubs.get(key)
        if code is None:
            code = compile_script(self.sources[path] + STUB.format(fn=fn), script_name(self.name, path))
            with self._lock:
                self._stubs[key] = code
        return code

    def run(self, fn: str, args=(), kwargs=None, *, api=None, budget: Budget | None = None, path: str | None = None,
            messages: list | None = None):
        """Call ``fn`` of this plugin in the sandbox; returns its (plain-data) result."""
        out = self.stub(fn, path).execute({"plugin_args": list(args), "plugin_kwargs": dict(kwargs or {})},
                                          api=api, budget=budget or self.budget, messages=messages)
        return out.get("plugin_result")


@dataclass
class Snapshot:
    """Every enabled plugin and its hooks, indexed the way the callers look them up."""
    revision: tuple = (0, 0)
    plugins: dict = field(default_factory=dict)              # name -> LoadedPlugin
    functions: dict = field(default_factory=dict)            # plugin -> {exposed name: function}
    before_save: dict = field(default_factory=dict)          # "app.entity" -> [(plugin, hook)]
    validate: dict = field(default_factory=dict)             # "app.entity" -> [(plugin, hook)]
    after_commit: dict = field(default_factory=dict)         # "app.entity" | "*" -> [(plugin, hook)]
    actions: dict = field(default_factory=dict)              # "plugin.name" -> (plugin, hook)
    endpoints: dict = field(default_factory=dict)            # (plugin, name) -> hook
    report_sources: dict = field(default_factory=dict)       # (plugin, name) -> hook
    schedules: list = field(default_factory=list)            # [(plugin, hook)]
    channels: list = field(default_factory=list)             # [(plugin, hook)]

    @classmethod
    def build(cls, rows, revision) -> "Snapshot":
        snap = cls(revision=revision)
        for row, sources in rows:
            if not row["enabled"]:
                continue
            p = LoadedPlugin(row, sources)
            snap.plugins[p.name] = p
            snap.functions[p.name] = {}
            for hook in p.manifest.get("hooks") or []:
                point, fn = hook["point"], hook["function"]
                name = hook.get("name") or fn
                if point == "function":
                    snap.functions[p.name][name] = fn
                elif point == "validate":
                    ent = hook["target"].rsplit(".", 1)[0]
                    snap.validate.setdefault(ent, []).append((p, hook))
                elif point in ("before_save", "after_commit"):
                    getattr(snap, point).setdefault(hook["target"], []).append((p, hook))
                elif point == "action":
                    snap.actions[f"{p.name}.{name}"] = (p, hook)
                elif point == "endpoint":
                    snap.endpoints[(p.name, name)] = hook
                elif point == "report_source":
                    snap.report_sources[(p.name, name)] = hook
                elif point == "schedule":
                    snap.schedules.append((p, hook))
                elif point == "channel":
                    snap.channels.append((p, hook))
        return snap
