"""Administrators upload a package, see its plan (with conflicts), apply it, and see the history."""
from __future__ import annotations

import io
import zipfile

import sqlalchemy as sa

from engine.install.package import pack
from engine.meta import store
from engine.security.users import create_user, issue_token
from tests.conftest import BUNDLES
from tests.runtime.conftest import ApiClient


def upgraded_package(tmp_path, bundle_copy, label_en="Client"):
    path = bundle_copy()
    for name, old, new in (("app.yaml", "version: 1.0.0", "version: 1.1.0"),
                           ("entities/customer.yaml", "label: {zh-CN: 客户, en: Customer}",
                            "label: {zh-CN: 客户, en: %s}" % label_en)):
        p = path / name
        p.write_text(p.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    pkg = tmp_path / "mini-1.1.0.zip"
    pack(path, pkg)
    return pkg


def test_plan_then_apply_an_upgrade_through_the_api(api, mini, tmp_path, bundle_copy):
    pkg = upgraded_package(tmp_path, bundle_copy)
    r = api.post("/api/v1/admin/bundles/plan", data={"package": (io.BytesIO(pkg.read_bytes()), "mini.zip")})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["plan"]["installed_version"] == "1.0.0" and body["plan"]["version"] == "1.1.0"
    assert [(d["kind"], d["key"], d["change"]) for d in body["plan"]["definitions"]] == [("entity", "customer", "changed")]
    r = api.post("/api/v1/admin/bundles/apply", data={"digest": body["digest"]})
    assert r.status_code == 200, r.get_json()
    assert mini.model.entity("mini", "customer").label["en"] == "Client"
    with mini.db.connect() as conn:
        assert conn.execute(sa.select(store.apps.c.version).where(store.apps.c.key == "mini")).scalar() == "1.1.0"


def test_a_conflict_is_shown_and_resolved_by_choice(api, mini, tmp_path, bundle_copy):
    from engine.security import Actor
    with mini.db.connect() as conn:
        body = store.get(conn, "mini", "entity", "customer").body
    mini.publish("mini", "entity", "customer", {**body, "label": {"zh-CN": "客户", "en": "Holder"}}, Actor.system())
    pkg = upgraded_package(tmp_path, bundle_copy)
    r = api.post("/api/v1/admin/bundles/plan", data={"package": (io.BytesIO(pkg.read_bytes()), "mini.zip")})
    plan = r.get_json()
    [definition] = plan["plan"]["definitions"]
    assert definition["change"] == "merged"
    assert definition["conflicts"] == [{"path": "/label/en", "base": "Customer", "ours": "Holder", "theirs": "Client"}]
    r = api.post("/api/v1/admin/bundles/apply", data={"digest": plan["digest"]})
    assert r.status_code == 422 and r.get_json()["errors"][0]["code"] == "merge_conflict"
    r = api.post("/api/v1/admin/bundles/apply",
                 data={"digest": plan["digest"], "resolve:entity:customer:/label/en": "theirs"})
    assert r.status_code == 200
    assert mini.model.entity("mini", "customer").label["en"] == "Client"


def test_a_tampered_package_is_refused_naming_the_file(api, mini, tmp_path, bundle_copy):
    pkg = upgraded_package(tmp_path, bundle_copy)
    buf = io.BytesIO()
    with zipfile.ZipFile(pkg) as src, zipfile.ZipFile(buf, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data.replace(b"scope: own", b"scope: all") if item.filename == "roles.yaml" else data)
    r = api.post("/api/v1/admin/bundles/plan", data={"package": (io.BytesIO(buf.getvalue()), "mini.zip")})
    assert r.status_code == 422
    assert {"file": "roles.yaml", "code": "tampered"}.items() <= r.get_json()["errors"][0].items()


def test_only_administrators_may_install(app, mini, tmp_path, bundle_copy):
    with mini.db.begin() as conn:
        uid = create_user(conn, "clerk", "secret-pass-1", roles=["mini.advisor"])
        clerk = ApiClient(app.test_client(), issue_token(conn, uid, "t"))
    pkg = upgraded_package(tmp_path, bundle_copy)
    r = clerk.post("/api/v1/admin/bundles/plan", data={"package": (io.BytesIO(pkg.read_bytes()), "mini.zip")})
    assert r.status_code == 403


def test_the_screen_shows_installed_bundles_and_history(api):
    page = api.get("/admin/bundles")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "mini" in html and "1.0.0" in html and "install" in html
