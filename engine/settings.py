"""Settings, read once from the environment.

Every knob has a documented default so that a fresh clone runs with nothing set: a SQLite file
under ``instance/``, tasks run in-process, a secret key generated on first use and kept under
``instance/``. Production sets ``LOOM_DATABASE_URL`` (PostgreSQL), ``LOOM_BROKER_URL`` (Redis)
and the keys.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

#: name -> (default, description); the README's settings table is generated from this.
DOCUMENTED = {
    "LOOM_INSTANCE_PATH": ("./instance", "Folder for the SQLite database, secret key, uploaded files."),
    "LOOM_DATABASE_URL": ("sqlite:///<instance>/loom.db", "SQLAlchemy URL of the database."),
    "LOOM_DB_SCHEMA": ("", "PostgreSQL schema to use (tests use one per run)."),
    "LOOM_BROKER_URL": ("", "Celery broker (e.g. redis://127.0.0.1:6379/0); empty runs tasks in-process."),
    "LOOM_SECRET_KEY": ("generated into <instance>/secret_key", "Flask session signing key."),
    "LOOM_FIELD_KEY": ("generated into <instance>/field_key", "Key for sensitive fields encrypted at rest."),
    "LOOM_DEFAULT_LOCALE": ("zh_CN", "UI language for new users (zh_CN or en)."),
    "LOOM_MAX_UPLOAD_MB": ("20", "Largest attachment accepted."),
    "LOOM_SMTP_URL": ("", "smtp://host:port for outgoing mail; empty keeps mail in the outbox."),
    "LOOM_SCHEDULER": ("embedded", "embedded (timers run inside `loom serve`) or beat (Celery beat)."),
    "LOOM_SECURE_COOKIES": ("0", "1 to mark session cookies Secure (behind HTTPS)."),
    "LOOM_LOCKOUT_ATTEMPTS": ("5", "Failed logins before an account is locked."),
    "LOOM_LOCKOUT_MINUTES": ("15", "How long a locked account stays locked."),
    "LOOM_LOGIN_RATE": ("20", "Login attempts per minute per client address (per process)."),
    "LOOM_SESSION_IDLE_MINUTES": ("60", "Idle time after which a session ends."),
    "LOOM_EMBEDDED_SCHEDULER": ("1", "0 to not run timers inside `loom serve` (use `loom beat` instead)."),
    "LOOM_REQUIRE_SIGNED": ("0", "1 to install only packages signed by a key in the trust store."),
    "LOOM_TRUST_STORE": ("<instance>/trusted_keys", "Folder of partners' Ed25519 public keys (*.pub)."),
}


def _read_or_create_key(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # Write atomically so two processes starting at once agree on one key.
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(key)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    os.chmod(path, 0o600)
    return path.read_text().strip()


@dataclass(frozen=True)
class Settings:
    instance_path: Path
    database_url: str
    db_schema: str = ""
    broker_url: str = ""
    secret_key: str = ""
    field_key: str = ""
    default_locale: str = "zh_CN"
    max_upload_mb: int = 20
    smtp_url: str = ""
    scheduler: str = "embedded"
    secure_cookies: bool = False
    require_signed: bool = False
    trust_store: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def files_path(self) -> Path:
        return self.instance_path / "files"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: dict | None = None, **overrides) -> "Settings":
        env = dict(os.environ if env is None else env)
        instance = Path(overrides.pop("instance_path", None) or env.get("LOOM_INSTANCE_PATH") or "instance").resolve()
        instance.mkdir(parents=True, exist_ok=True)
        url = env.get("LOOM_DATABASE_URL") or f"sqlite:///{instance / 'loom.db'}"
        values = dict(
            instance_path=instance,
            database_url=url,
            db_schema=env.get("LOOM_DB_SCHEMA", ""),
            broker_url=env.get("LOOM_BROKER_URL", ""),
            secret_key=env.get("LOOM_SECRET_KEY") or _read_or_create_key(instance / "secret_key"),
            field_key=env.get("LOOM_FIELD_KEY") or _read_or_create_key(instance / "field_key"),
            default_locale=env.get("LOOM_DEFAULT_LOCALE", "zh_CN"),
            max_upload_mb=int(env.get("LOOM_MAX_UPLOAD_MB", "20")),
            smtp_url=env.get("LOOM_SMTP_URL", ""),
            scheduler=env.get("LOOM_SCHEDULER", "embedded"),
            secure_cookies=env.get("LOOM_SECURE_COOKIES", "0") == "1",
            require_signed=env.get("LOOM_REQUIRE_SIGNED", "0") == "1",
            trust_store=Path(env.get("LOOM_TRUST_STORE") or instance / "trusted_keys"),
        )
        values.update(overrides)
        return cls(**values)
