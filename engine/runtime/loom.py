"""The running engine: one object per process wiring settings, database, model and services.

The Flask app, the CLI and Celery workers each hold one :class:`Loom`. It owns the compiled model
of published definitions and reloads it when another process publishes (a cheap revision check at
most every ``reload_interval`` seconds), so designer changes reach every worker without a restart.
Other packages contribute install checks, install hooks and model listeners through
:meth:`Loom.extend`, which keeps this module free of knowledge about workflows or rules.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Callable

import sqlalchemy as sa

from engine import db
from engine.events import EventBus
from engine.forms import build_model
from engine.forms.model import Model
from engine.meta import store
from engine.records import Query, RecordService
from engine.security import Actor, AllowAll
from engine.security.crypto import FieldCrypto
from engine.settings import Settings

log = logging.getLogger(__name__)


class Loom:
    reload_interval = 1.0

    def __init__(self, settings: Settings | None = None, *, engine: sa.Engine | None = None):
        self.settings = settings or Settings.from_env()
        #: distinguishes this engine's caches from another's in the same process (tests run many)
        self.instance_id = uuid.uuid4().hex
        self.db = engine or db.create_engine(self.settings.database_url, self.settings.db_schema)
        self.bus = EventBus()
        self.crypto = FieldCrypto(self.settings.field_key)
        from engine.records.files import FileStore
        self.files = FileStore(self.settings.files_path, self.settings.max_upload_mb)
        self._model: Model | None = None
        self._policy = AllowAll()
        self._checked_at = 0.0
        self._lock = threading.RLock()
        self.install_checks: list[Callable] = []     # (bundle, model) -> [Problem]
        self.install_hooks: list[Callable] = []      # (conn, plan, actor) -> None
        self.plan_annotators: list[Callable] = []    # (conn, plan) -> [note], e.g. running instances
        self.publish_hooks: list[Callable] = []      # (conn, app, kind, key, body) -> None, per published change
        self.model_listeners: list[Callable] = []    # (loom, model) -> None, after every reload
        self.policy_factory: Callable | None = None  # (loom, model) -> Policy
        self.sandbox_api_factory: Callable | None = None   # (loom, actor) -> dict
        self.extensions: dict[str, object] = {}
        self.records = RecordService(self.db, lambda: self.model, bus=self.bus, policy=lambda: self.policy,
                                     crypto=self.crypto, files=self.files,
                                     api_factory=lambda actor: self.sandbox_api(actor))
        self.query = Query(self.records)
        for plugin in _default_extensions():
            plugin(self)

    # -- model -----------------------------------------------------------------------------------

    def init_db(self) -> list[str]:
        """Create or upgrade the engine's own tables (additive only)."""
        import engine.audit  # noqa: F401  (declares its tables on db.SYSTEM)
        import engine.security.users  # noqa: F401
        changes = db.sync_system_tables(self.db)
        for ext in self.extensions.values():
            init = getattr(ext, "init_db", None)
            if init:
                changes += init(self.db) or []
        self.reload(force=True)
        return changes

    @property
    def model(self) -> Model:
        now = time.monotonic()
        if self._model is None or now - self._checked_at > self.reload_interval:
            self.reload()
        return self._model

    @property
    def policy(self):
        self.model  # noqa: B018  (refresh when definitions changed)
        return self._policy

    def reload(self, force: bool = False) -> Model:
        with self._lock:
            self._checked_at = time.monotonic()
            try:
                with self.db.connect() as conn:
                    rev = store.revision(conn)
                    if not force and self._model is not None and self._model.revision == rev:
                        return self._model
                    apps = {r.key: r.prefix for r in conn.execute(
                        sa.select(store.apps.c.key, store.apps.c.prefix))}
                    ents = [(d.app, d.body, d.version) for d in store.current(conn, kind="entity") if d.app in apps]
                    forms = [(d.app, d.body) for d in store.current(conn, kind="form") if d.app in apps]
            except sa.exc.OperationalError:
                # tables not created yet (before `loom init`)
                self._model = self._model or Model(metadata=sa.MetaData())
                return self._model
            except sa.exc.ProgrammingError:
                self._model = self._model or Model(metadata=sa.MetaData())
                return self._model
            return self._adopt(build_model(apps, ents, forms, revision=rev))

    def _adopt(self, model: Model) -> Model:
        with self._lock:
            self._model = model
            self._checked_at = time.monotonic()
            if self.policy_factory is not None:
                self._policy = self.policy_factory(self, model)
            for listener in self.model_listeners:
                listener(self, model)
            return model

    def sandbox_api(self, actor: Actor) -> dict | None:
        return self.sandbox_api_factory(self, actor) if self.sandbox_api_factory else None

    # -- bundles ---------------------------------------------------------------------------------

    def validate_bundle(self, source):
        from engine.install import validate_deep
        from engine.meta.bundle import read_bundle
        bundle = read_bundle(source)
        with self.db.connect() as conn:
            try:
                problems, _ = validate_deep(conn, bundle, self.install_checks)
            except sa.exc.OperationalError:
                problems, _ = validate_deep(None, bundle, self.install_checks)
        return bundle, problems

    def plan_install(self, source, choices: dict | None = None):
        from engine.errors import InvalidInput
        from engine.install import plan_install
        from engine.install.package import verify_files
        from engine.meta.bundle import read_bundle
        bundle = read_bundle(source) if not hasattr(source, "definitions") else source
        problems = verify_files(bundle.files, str(bundle.source), self.settings.trust_store,
                                self.settings.require_signed)
        if problems:
            raise InvalidInput(f"package {bundle.source} failed verification; nothing was installed", problems=problems)
        with self.db.connect() as conn:
            plan = plan_install(conn, bundle, self.install_checks, choices=choices)
            for annotate in self.plan_annotators:
                plan.notes += annotate(conn, plan)
            return plan

    def install(self, source, actor: Actor | None = None, *, confirm_destructive: bool = False, plan=None,
                progress=None, choices: dict | None = None):
        from engine.install import apply_install
        plan = plan or self.plan_install(source, choices)
        actor = actor or Actor.system("installer")
        apply_install(self.db, plan, actor, confirm_destructive=confirm_destructive, hooks=self.install_hooks,
                      records_factory=lambda model: RecordService(
                          self.db, lambda: model, bus=None, crypto=self.crypto, files=self.files,
                          api_factory=lambda a: self.sandbox_api(a)),
                      progress=progress)
        # the plan's candidate model is exactly what was just published: adopt it, don't rebuild
        with self.db.connect() as conn:
            plan.model.revision = store.revision(conn)
        self._adopt(plan.model)
        return plan

    def publish(self, app: str, kind: str, key: str, body: dict, actor: Actor, *, expected_version=None,
                **options):
        """Publish one changed definition (designer, admin): validated, migrated, audited."""
        return self.publish_many(app, [(kind, key, body, expected_version)], actor, **options)[0]

    def publish_many(self, app: str, items, actor: Actor, **options):
        """Publish ``[(kind, key, body, expected_version)]`` together, all or nothing."""
        from engine.install import publish_definitions
        results = publish_definitions(self.db, app, items, actor, checkers=self.install_checks,
                                      hooks=self.publish_hooks, **options)
        if any(r.changed for r in results):
            self.reload(force=True)
        return results

    def extend(self, name: str, extension: object) -> None:
        self.extensions[name] = extension

    def dispose(self) -> None:
        for ext in self.extensions.values():
            stop = getattr(ext, "stop", None)
            if stop:
                stop()
        self.db.dispose()


#: ``attach(loom)`` functions called with every new Loom, in this order. A package that is not
#: there (yet) is skipped, so the engine runs with whatever packages are present.
EXTENSIONS: list[str] = [
    "engine.sandbox.extension:attach",
    "engine.security.extension:attach",
    "engine.workflow.extension:attach",
    "engine.reports.extension:attach",
    "engine.rules.extension:attach",
    "plugins.extension:attach",
    "designer.extension:attach",
]


def _default_extensions():
    import importlib
    out = []
    for dotted in EXTENSIONS:
        module, _, attr = dotted.partition(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # the package is not present
            raise
        out.append(getattr(mod, attr))
    return out
