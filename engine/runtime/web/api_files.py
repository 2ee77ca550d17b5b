"""Attachment files: ``POST /api/v1/files`` stores an upload and returns its descriptor (which a
record's attachment field then holds); ``GET /api/v1/files/<sha256>`` downloads it.

A download is allowed only when the caller may read some record that refers to the file (through
the same row scopes as every read), so knowing a hash is not enough to fetch someone else's file.
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, jsonify, request, send_file

from engine.errors import InvalidInput, NotFound, Problem
from engine.runtime.web.api_common import api_actor

bp = Blueprint("api_files", __name__, url_prefix="/api/v1/files")


def _loom():
    from engine.runtime.app import get_loom
    return get_loom()


@bp.post("")
def upload():
    loom = _loom()
    api_actor()
    upload = request.files.get("file")
    if upload is None:
        raise InvalidInput(problems=[Problem("send the file as multipart/form-data field `file`", field="file",
                                             code="required")])
    try:
        desc = loom.files.store(upload.stream, upload.filename or "upload", upload.mimetype or None)
    except ValueError as exc:
        raise InvalidInput(problems=[Problem(str(exc), field="file", code="attachment_size")]) from None
    return jsonify(desc), 201


def _root_ids(sub, cond):
    """A SELECT of top-level record ids whose (possibly nested) child rows match ``cond``."""
    q = sa.select(sub.table.c.parent_id if sub.is_child else sub.table.c.id).where(cond)
    while sub.is_child:
        parent = sub.parent
        if parent.is_child:
            q = sa.select(parent.table.c.parent_id).where(parent.table.c.id.in_(q))
        sub = parent
    return q


def readable_reference(loom, actor, sha256: str) -> dict | None:
    """The descriptor of ``sha256`` as held by some record the actor may read, or None."""
    model = loom.model
    policy = loom.records.policy
    with loom.db.connect() as conn:
        for ent in model.entities.values():
            if not actor.is_system and not actor.is_admin and not policy.can(actor, ent, "read"):
                continue
            rules = loom.records._rules(actor, ent)
            for sub in ent.walk():
                for f in sub.column_fields:
                    if f.type != "attachment" or rules.get(f.key) == "hidden":
                        continue
                    col = sub.table.c[f.key]
                    cond = sa.cast(col, sa.Text).like(f"%{sha256}%")
                    ids = _root_ids(sub, cond) if sub is not ent else sa.select(ent.table.c.id).where(cond)
                    q = loom.query.scoped_select(ent, actor, "read", columns=[ent.table.c.id]).where(
                        ent.table.c.id.in_(ids)).limit(1)
                    if conn.execute(q).first() is None:
                        continue
                    # find the descriptor itself for the name and type
                    value_q = sa.select(col).where(cond).limit(1)
                    value = conn.execute(value_q).scalar()
                    for item in value if isinstance(value, list) else [value]:
                        if isinstance(item, dict) and item.get("sha256") == sha256:
                            return item
                    return {"sha256": sha256}
    return None


@bp.get("/<sha256>")
def download(sha256: str):
    loom = _loom()
    actor = api_actor()
    try:
        path = loom.files.path(sha256)
    except ValueError:
        raise NotFound("no such file") from None
    desc = readable_reference(loom, actor, sha256)
    if desc is None or not path.exists():
        raise NotFound("no such file, or no record you may read refers to it")
    return send_file(path, mimetype=desc.get("type") or "application/octet-stream",
                     download_name=desc.get("name") or sha256, as_attachment=True)
