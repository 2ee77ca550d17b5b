"""The designer: business analysts change forms and entities, processes and reports in the browser.

Public surface: :mod:`designer.service` (load, save_drafts, check, diff, publish, history,
rollback, check_expression, preview_report, can_design) -- no HTTP here; the Flask side is
:mod:`designer.web`, imported only by :mod:`engine.runtime.web.designer`.
"""
from designer.service import (can_design, check, check_expression, diff, history, load, preview_report, publish,
                              require_design, rollback, save_drafts)

__all__ = ["can_design", "check", "check_expression", "diff", "history", "load", "preview_report", "publish",
           "require_design", "rollback", "save_drafts"]
