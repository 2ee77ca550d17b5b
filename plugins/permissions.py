"""Who may install, enable, configure and change plugin scripts.

Scripts run inside every request, so changing them is its own right, apart from ordinary data
rights: a system administrator, the engine itself (``loom plugin`` at the console acts as a system
actor), or a user holding a ``script_admin`` role of any app (``crm.script_admin``). The bundle
``admin`` role of the test bundles grants ``administer`` on entities; that alone does not make
someone a script administrator.
"""
from __future__ import annotations

from engine.errors import Forbidden, Problem

ROLE = "script_admin"


def can_administer(actor) -> bool:
    if actor is None:
        return False
    if actor.is_system or actor.is_admin:
        return True
    return any(r == ROLE or r.endswith("." + ROLE) for r in actor.roles)


def require_administer(actor, what: str = "change plugins") -> None:
    if not can_administer(actor):
        raise Forbidden(f"{getattr(actor, 'username', '?')} may not {what}",
                        problems=[Problem(f"{what} needs the `{ROLE}` role or an administrator", code="forbidden")])
