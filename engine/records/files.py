"""Attachments: files kept under ``instance/files`` by content hash, with size and type limits.

A file is uploaded first (``store``) and the record then holds its descriptor
``{"sha256", "name", "size", "type"}``; the same content is stored once however many records
refer to it. The record service checks on every write that the file exists and that its type and
size are allowed for that field.
"""
from __future__ import annotations

import hashlib
import mimetypes
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from engine.forms import messages

DEFAULT_ACCEPT = ["image/png", "image/jpeg", "application/pdf", "text/plain", "text/csv",
                  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                  "application/vnd.openxmlformats-officedocument.wordprocessingml.document"]


class FileStore:
    def __init__(self, root: Path, max_mb: int = 20):
        self.root = Path(root)
        self.max_bytes = max_mb * 1024 * 1024

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a content hash")
        return self.root / sha256[:2] / sha256

    def store(self, stream: BinaryIO, name: str, content_type: str | None = None) -> dict:
        self.root.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.root)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(1 << 16):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise ValueError(f"file is larger than {self.max_bytes // (1024 * 1024)} MB")
                    h.update(chunk)
                    out.write(chunk)
            digest = h.hexdigest()
            final = self.path(digest)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        ctype = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        return {"sha256": digest, "name": os.path.basename(name), "size": size, "type": ctype}

    def check(self, value, spec: dict, locale: str) -> list[str]:
        items = value if isinstance(value, list) else [value]
        problems = []
        accept = spec.get("accept") or DEFAULT_ACCEPT
        max_mb = spec.get("max_size_mb")
        for item in items:
            if not isinstance(item, dict) or "sha256" not in item:
                problems.append(messages.render("attachment_missing", locale))
                continue
            try:
                p = self.path(str(item["sha256"]))
            except ValueError:
                problems.append(messages.render("attachment_missing", locale))
                continue
            if not p.exists():
                problems.append(messages.render("attachment_missing", locale))
                continue
            if item.get("type") not in accept and not any(
                    a.endswith("/*") and str(item.get("type", "")).startswith(a[:-1]) for a in accept):
                problems.append(messages.render("attachment_type", locale, value=item.get("type")))
            if max_mb and p.stat().st_size > max_mb * 1024 * 1024:
                problems.append(messages.render("attachment_size", locale, max=max_mb))
        return problems
