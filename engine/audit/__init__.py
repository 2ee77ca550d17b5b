"""Tamper-evident, hash-chained audit log written in the same transaction as each change.

``append`` / ``verify`` (log.py); append-only triggers (triggers.py); search and regulator
exports that can be re-verified offline (export.py).
"""
from engine.audit.export import AuditFilter, iter_entries, search, to_csv, to_jsonl, verify_entries
from engine.audit.log import VerifyResult, append, audit_log, verify
from engine.audit.triggers import install_triggers

__all__ = ["append", "verify", "VerifyResult", "audit_log", "install_triggers", "AuditFilter", "search",
           "iter_entries", "to_csv", "to_jsonl", "verify_entries"]
