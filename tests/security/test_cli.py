"""`loom user`, `loom token`, `loom org` and `loom audit export` from the command line."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine.runtime import cli
from tests.conftest import BUNDLES


@pytest.fixture
def run(loom, monkeypatch):
    loom.install(BUNDLES / "secure")
    monkeypatch.setattr(cli, "_loom", lambda: loom)
    runner = CliRunner()

    def invoke(*args, ok=True):
        r = runner.invoke(cli.main, list(args), catch_exceptions=False)
        assert (r.exit_code == 0) == ok, r.output
        return r.output
    return invoke


def test_users_roles_and_tokens(run, loom):
    from engine.security.identity import check_login
    run("org", "add", "B9", "九部", "--kind", "branch")
    out = run("user", "add", "zhang", "--role", "secure.advisor", "--org-unit", "B9", "--password", "Zhang-pass-01")
    assert "created user `zhang`" in out
    assert "unknown role `secure.boss`" in run("user", "add", "li", "--role", "secure.boss", "--password",
                                               "Li-pass-0001", ok=False)
    assert "at least 10 characters" in run("user", "add", "wang", "--password", "short", ok=False)
    assert "granted secure.compliance" in run("user", "grant", "zhang", "secure.compliance")
    listing = json.loads(run("user", "list", "--json"))
    assert [u["roles"] for u in listing if u["username"] == "zhang"] == [["secure.advisor", "secure.compliance"]]
    assert "revoked" in run("user", "revoke", "zhang", "secure.compliance")
    run("user", "set-password", "zhang", "--password", "New-password-2")
    with loom.db.begin() as conn:
        assert check_login(conn, "zhang", "New-password-2").ok
    out = run("token", "issue", "zhang", "--name", "etl", "--role", "secure.advisor", "--days", "30")
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("loom_")
    listed = run("token", "list", "--user", "zhang")
    assert "etl" in listed and "active" in listed and secret not in listed
    token_id = listed.split()[0]
    run("token", "revoke", token_id)
    assert "revoked" in run("token", "list")
    assert "no user `ghost`" in run("user", "grant", "ghost", "secure.advisor", ok=False)
    with loom.db.connect() as conn:
        from engine.audit import AuditFilter, search
        actions = [e["action"] for e in search(conn, AuditFilter(), limit=100)[0]]
    for a in ("org_unit_create", "user_create", "role_grant", "role_revoke", "password_set", "token_issue",
              "token_revoke"):
        assert a in actions


def test_audit_export_file_reverifies(run, loom, tmp_path):
    from engine.audit import verify_entries
    from engine.audit.export import read_csv
    run("user", "add", "zhao", "--password", "Zhao-pass-001")
    out_csv, out_jl = tmp_path / "a.csv", tmp_path / "a.jsonl"
    run("audit", "export", "--format", "csv", "-o", str(out_csv))
    run("audit", "export", "-o", str(out_jl))
    assert verify_entries(read_csv(out_csv.read_text(encoding="utf-8")))[0]
    lines = [json.loads(x) for x in out_jl.read_text(encoding="utf-8").splitlines()]
    assert lines and verify_entries(lines)[0]
    only = run("audit", "export", "--action", "user_create")
    assert [json.loads(x)["action"] for x in only.splitlines()] == ["user_create"]
    assert "not a date" in run("audit", "export", "--since", "soon", ok=False)
