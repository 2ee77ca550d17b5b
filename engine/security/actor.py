"""Who is acting: a person, an API token, or the engine itself (installs, timers, rules)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    username: str
    roles: frozenset[str] = frozenset()          # role keys, inheritance already expanded
    locale: str = "zh-CN"
    org_unit: int | None = None                 # the user's own org unit (team or branch)
    branch: int | None = None
    team: int | None = None
    address: str | None = None                  # client IP, for the audit log
    is_system: bool = False                     # engine-internal work: bypasses permission checks
    is_admin: bool = False
    attributes: dict = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def system(cls, purpose: str = "system", locale: str = "zh-CN") -> "Actor":
        return cls(user_id=None, username=purpose, is_system=True, is_admin=True, locale=locale)

    def with_locale(self, locale: str) -> "Actor":
        from dataclasses import replace
        return replace(self, locale=locale)

    def has_role(self, *roles: str) -> bool:
        return self.is_admin or bool(self.roles.intersection(roles))
