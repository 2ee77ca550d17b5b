"""Sandboxed script plugins: one folder each (``plugin.yaml`` + restricted Python files).

``read_plugin(folder)`` checks a plugin (manifest schema, every script compiled in the sandbox,
hooks against the functions they name) and ``store`` installs it, versioned and audited;
``extension.attach`` wires enabled plugins into the engine's hook points. See README.md.
"""
from plugins.manifest import Manifest, check_manifest, read_plugin
from plugins.permissions import can_administer, require_administer

__all__ = ["Manifest", "read_plugin", "check_manifest", "can_administer", "require_administer"]
