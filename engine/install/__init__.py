"""Bundles in and out: validate, plan, install all-or-nothing, export, uninstall."""
from engine.install.apply import apply_install
from engine.install.export import export_bundle, uninstall
from engine.install.plan import InstallPlan, plan_install, validate_deep
from engine.install.publish import PublishResult, live_bundle, publish_definition, publish_definitions

__all__ = ["InstallPlan", "plan_install", "validate_deep", "apply_install", "export_bundle", "uninstall",
           "publish_definition", "publish_definitions", "PublishResult", "live_bundle"]
