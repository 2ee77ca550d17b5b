"""Give scripts the engine -- through the one road, with the acting user's rights.

``attach(loom)`` sets ``loom.sandbox_api_factory``: every evaluation the record service (or a
workflow, a rule, a plugin) runs for an actor gets a ``records`` API whose reads go through
``Query`` (row scopes, field masking) and whose writes go through ``RecordService`` (permissions,
validation, audit). Other packages add their own functions (``workflow.start``, ``notify``) with
``loom.extensions["sandbox"].add_api(provider)``, where ``provider(loom, actor) -> dict``.

The prepared API is cached per actor, so the per-evaluation cost is a dictionary lookup.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

from engine.sandbox.api import PreparedApi, api_namespace, prepare_api

MAX_PAGE = 500


class SandboxExtension:
    def __init__(self, loom):
        self.loom = loom
        self.providers: list = [records_api]
        self._cache: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def add_api(self, provider) -> None:
        """``provider(loom, actor) -> dict`` of names to functions, namespaces or plain values."""
        with self._lock:
            self.providers.append(provider)
            self._cache.clear()

    def api_for(self, actor) -> PreparedApi:
        key = actor
        try:
            hash(key)
        except TypeError:
            key = None
        with self._lock:
            if key is not None and key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            providers = list(self.providers)
        merged: dict = {}
        for provider in providers:
            merged.update(provider(self.loom, actor))
        api = prepare_api(merged)
        if key is not None:
            with self._lock:
                self._cache[key] = api
                while len(self._cache) > 256:
                    self._cache.popitem(last=False)
        return api


def records_api(loom, actor) -> dict:
    """``records.get/find/create/update`` for scripts, acting as ``actor``."""
    from engine.records.query import ListRequest

    def get(entity: str, record_id: int) -> dict:
        return loom.records.get(entity, int(record_id), actor)

    def find(entity: str, where: dict | None = None, *, search: str | None = None, order_by: str | None = None,
             limit: int = 50) -> list:
        """Records matching ``where`` (``{"status": "open", "aum__gte": "100"}``), at most ``limit``."""
        req = ListRequest.from_params({k: v for k, v in (where or {}).items()})
        req.search = search
        req.sort = [(s.lstrip("-"), s.startswith("-")) for s in (order_by or "").split(",") if s]
        req.page_size = max(1, min(int(limit), MAX_PAGE))
        req.with_total = False
        model = loom.records.entity(entity)
        return loom.query.list(model, actor, req)["items"]

    def create(entity: str, data: dict) -> dict:
        return loom.records.create(entity, dict(data), actor)

    def update(entity: str, record_id: int, data: dict, expected_version: int | None = None) -> dict:
        return loom.records.update(entity, int(record_id), dict(data), actor, expected_version=expected_version)

    return {"records": api_namespace("records", get=get, find=find, create=create, update=update)}


def attach(loom) -> None:
    ext = SandboxExtension(loom)
    loom.extend("sandbox", ext)
    loom.sandbox_api_factory = lambda lm, actor: ext.api_for(actor)
