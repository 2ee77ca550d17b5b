"""Identity and permissions (no HTTP here): actors, the policy every path asks, masking.

``RolePolicy`` compiles the published roles (scopes -> SQL via ``scopes``); ``admin`` holds the
audited user/role/token operations shared by the CLI and the admin API; ``login`` the lockout
and rate-limit rules.
"""
from engine.security.actor import Actor
from engine.security.policy import ACTIONS, AllowAll, Policy, RolePolicy

__all__ = ["Actor", "ACTIONS", "AllowAll", "Policy", "RolePolicy"]
