"""``attach(loom)``: the designer adds no tables or hooks of its own (drafts and versions live in
the definition store); it registers itself so ``loom.extensions["designer"]`` names its service."""
from __future__ import annotations


def attach(loom) -> None:
    from designer import service
    loom.extend("designer", service)
