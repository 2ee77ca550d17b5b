"""Single-file bundle packages: checksums, Ed25519 signatures, a trust store of partner keys.

A package is a zip of the bundle's files plus ``MANIFEST.json`` (app, version, SHA-256 of every
file) and, when signed, ``SIGNATURE`` (Ed25519 over the exact bytes of MANIFEST.json, with the
signing key's id). Installing verifies every checksum -- a changed, added or missing file is named
-- and, when the firm requires signatures, that the signature is valid and made by a key in its
trust store (``<instance>/trusted_keys/*.pub``).
"""
from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from engine.errors import Problem
from engine.meta.bundle import read_bundle

MANIFEST = "MANIFEST.json"
SIGNATURE = "SIGNATURE"


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(name: str, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    key_path, pub_path = folder / f"{name}.key", folder / f"{name}.pub"
    key_path.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    key_path.chmod(0o600)
    pub_path.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo))
    return key_path, pub_path


def pack(source: str | Path, output: str | Path, signing_key: str | Path | None = None) -> dict:
    """Build a package from a bundle folder (validated structurally first by the caller)."""
    bundle = read_bundle(source)
    files = {n: d for n, d in bundle.files.items() if n not in {MANIFEST, SIGNATURE}}
    manifest = {"format": 1, "app": bundle.key, "version": bundle.version,
                "publisher": bundle.manifest.get("publisher"),
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "files": {n: hashlib.sha256(d).hexdigest() for n, d in sorted(files.items())}}
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(files.items()):
            zf.writestr(name, data)
        zf.writestr(MANIFEST, manifest_bytes)
        if signing_key:
            private = serialization.load_pem_private_key(Path(signing_key).read_bytes(), password=None)
            if not isinstance(private, Ed25519PrivateKey):
                raise ValueError(f"{signing_key}: not an Ed25519 private key")
            sig = {"algorithm": "ed25519", "key_id": key_id(private.public_key()),
                   "signature": base64.b64encode(private.sign(manifest_bytes)).decode("ascii")}
            zf.writestr(SIGNATURE, json.dumps(sig, indent=1))
    return manifest


def load_trust_store(folder: Path) -> dict[str, tuple[str, Ed25519PublicKey]]:
    """key id -> (file name, public key) for every ``*.pub`` in the trust-store folder."""
    keys = {}
    for p in sorted(Path(folder).glob("*.pub")) if Path(folder).exists() else []:
        try:
            public = serialization.load_pem_public_key(p.read_bytes())
        except ValueError:
            continue
        if isinstance(public, Ed25519PublicKey):
            keys[key_id(public)] = (p.name, public)
    return keys


def verify_files(files: dict[str, bytes], source: str, trust_store: Path | None,
                 require_signature: bool) -> list[Problem]:
    """Problems with a package's integrity or signature (empty when it may be installed).

    A plain folder or zip without MANIFEST.json is accepted only when signatures are not required.
    """
    if MANIFEST not in files:
        if require_signature:
            return [Problem("this firm installs only signed packages, and this bundle is not one "
                            "(build it with `loom app pack --sign`)", file=source, code="unsigned")]
        return []
    problems = []
    try:
        manifest = json.loads(files[MANIFEST])
        listed = manifest["files"]
    except (ValueError, KeyError, TypeError):
        return [Problem("MANIFEST.json is unreadable", file=MANIFEST, code="manifest")]
    for name, digest in listed.items():
        if name not in files:
            problems.append(Problem("listed in the manifest but missing from the package", file=name, code="tampered"))
        elif hashlib.sha256(files[name]).hexdigest() != digest:
            problems.append(Problem("checksum does not match the manifest: the file was changed after packing",
                                    file=name, code="tampered"))
    for name in files:
        if name not in listed and name not in {MANIFEST, SIGNATURE}:
            problems.append(Problem("not listed in the manifest: the file was added after packing",
                                    file=name, code="tampered"))
    if SIGNATURE in files:
        try:
            sig = json.loads(files[SIGNATURE])
            signature = base64.b64decode(sig["signature"])
            kid = sig["key_id"]
        except (ValueError, KeyError, TypeError):
            return problems + [Problem("SIGNATURE is unreadable", file=SIGNATURE, code="signature")]
        trusted = load_trust_store(trust_store) if trust_store else {}
        if kid not in trusted:
            if require_signature:
                problems.append(Problem(f"signed with key {kid}, which is not in the trust store", file=SIGNATURE,
                                        code="untrusted"))
        else:
            name, public = trusted[kid]
            try:
                public.verify(signature, files[MANIFEST])
            except InvalidSignature:
                problems.append(Problem(f"the signature does not verify with trusted key {name} ({kid}): "
                                        "the manifest was altered", file=SIGNATURE, code="bad_signature"))
    elif require_signature:
        problems.append(Problem("the package is not signed, and this firm requires signed packages",
                                file=source, code="unsigned"))
    return problems
