"""Sensitive fields encrypted at rest, still searchable by exact value.

Values are encrypted with AES-256-GCM (random nonce, so equal values give different ciphertexts)
and stored as ``v1:<base64>``; beside each, a keyed HMAC-SHA256 "blind index" of the normalised
value supports exact-match search and uniqueness without revealing the value. Both keys derive
from ``LOOM_FIELD_KEY`` with HKDF, so one secret in the environment protects them.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "v1:"


def _derive(secret: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"loom-field-crypto", info=info).derive(secret.encode())


class FieldCrypto:
    def __init__(self, secret: str):
        if not secret:
            raise ValueError("LOOM_FIELD_KEY is empty")
        self._aead = AESGCM(_derive(secret, b"encrypt"))
        self._mac_key = _derive(secret, b"blind-index")

    @staticmethod
    def normalize(value) -> str:
        return str(value).strip().upper()

    def encrypt(self, value, context: str = "") -> str:
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, str(value).encode("utf-8"), context.encode())
        return PREFIX + base64.b64encode(nonce + ct).decode("ascii")

    def decrypt(self, token: str | None, context: str = "") -> str | None:
        if token is None:
            return None
        if not str(token).startswith(PREFIX):
            return token  # written before the field was marked sensitive
        raw = base64.b64decode(token[len(PREFIX):])
        return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode("utf-8")

    def blind_index(self, value, context: str = "") -> str | None:
        if value is None or value == "":
            return None
        msg = (context + "\0" + self.normalize(value)).encode("utf-8")
        return hmac.new(self._mac_key, msg, hashlib.sha256).hexdigest()
