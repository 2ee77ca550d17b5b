"""Signed packages, dependencies between bundles, diffs between environments, Frappe import."""
from __future__ import annotations

import json
import shutil
import zipfile

import pytest
import yaml

from engine.errors import InvalidInput
from engine.install.diff import compare, definitions_from_bundle
from engine.install.frappe import convert
from engine.install.package import generate_keypair, pack
from engine.meta import store
from tests.conftest import BUNDLES


@pytest.fixture
def keys(tmp_path, settings):
    partner_key, partner_pub = generate_keypair("partner", tmp_path / "partner")
    rogue_key, _ = generate_keypair("rogue", tmp_path / "rogue")
    settings.trust_store.mkdir(parents=True, exist_ok=True)
    shutil.copy(partner_pub, settings.trust_store / "partner.pub")
    return partner_key, rogue_key


def require_signed(loom):
    object.__setattr__(loom.settings, "require_signed", True)


def installed_apps(loom):
    with loom.db.connect() as conn:
        return [d.app for d in store.current(conn)]


def test_signed_package_from_a_trusted_partner_installs(loom, keys, tmp_path):
    require_signed(loom)
    pkg = tmp_path / "mini.zip"
    pack(BUNDLES / "mini", pkg, keys[0])
    loom.install(pkg)
    assert "mini" in installed_apps(loom)


def test_package_signed_by_an_untrusted_key_is_refused(loom, keys, tmp_path):
    require_signed(loom)
    pkg = tmp_path / "mini.zip"
    pack(BUNDLES / "mini", pkg, keys[1])
    with pytest.raises(InvalidInput) as exc:
        loom.install(pkg)
    [p] = exc.value.problems
    assert p.code == "untrusted" and "not in the trust store" in p.message
    assert installed_apps(loom) == []


def test_unsigned_package_is_refused_when_signatures_are_required(loom, keys, tmp_path):
    require_signed(loom)
    pkg = tmp_path / "mini.zip"
    pack(BUNDLES / "mini", pkg)
    with pytest.raises(InvalidInput) as exc:
        loom.install(pkg)
    assert exc.value.problems[0].code == "unsigned"
    with pytest.raises(InvalidInput) as exc:                      # a plain folder neither
        loom.install(BUNDLES / "mini")
    assert exc.value.problems[0].code == "unsigned"


def test_tampered_package_names_the_changed_file(loom, keys, tmp_path):
    pkg = tmp_path / "mini.zip"
    pack(BUNDLES / "mini", pkg, keys[0])
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(pkg) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "roles.yaml":
                data = data.replace(b"scope: own", b"scope: all")     # a sneaky privilege change
            dst.writestr(item, data)
        dst.writestr("scripts/extra.py", "x = 1\n")
    with pytest.raises(InvalidInput) as exc:
        loom.install(tampered)
    found = {(p.file, p.code) for p in exc.value.problems}
    assert ("roles.yaml", "tampered") in found and ("scripts/extra.py", "tampered") in found
    assert installed_apps(loom) == []


def test_altered_manifest_fails_the_signature(loom, keys, tmp_path):
    require_signed(loom)
    pkg = tmp_path / "mini.zip"
    pack(BUNDLES / "mini", pkg, keys[0])
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(pkg) as src, zipfile.ZipFile(forged, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "MANIFEST.json":
                m = json.loads(data)
                m["version"] = "9.9.9"
                data = json.dumps(m).encode()
            dst.writestr(item, data)
    with pytest.raises(InvalidInput) as exc:
        loom.install(forged)
    assert exc.value.problems[0].code == "bad_signature"


def _addon(tmp_path, depends):
    root = tmp_path / "addon"
    (root / "entities").mkdir(parents=True)
    (root / "app.yaml").write_text(yaml.safe_dump({"key": "addon", "version": "1.0.0", "title": "Addon",
                                                   "depends": depends}), encoding="utf-8")
    (root / "entities" / "visit.yaml").write_text(yaml.safe_dump({
        "key": "visit", "label": "Visit", "fields": [{"key": "customer", "type": "link", "entity": "mini.customer"},
                                                     {"key": "note", "type": "text"}]}), encoding="utf-8")
    return root


def test_dependencies_are_checked_before_anything_is_applied(loom, tmp_path):
    addon = _addon(tmp_path, {"mini": ">=1.0,<2"})
    with pytest.raises(InvalidInput) as exc:
        loom.install(addon)
    assert "needs bundle `mini` >=1.0,<2, which is not installed" in exc.value.problems[0].message
    assert exc.value.problems[0].file == "app.yaml" and exc.value.problems[0].line
    loom.install(BUNDLES / "mini")
    loom.install(addon)                                              # links across bundles work
    assert loom.model.entity("addon", "visit").fields["customer"].target == "mini.customer"
    assert loom.model.entity("addon", "visit").table.name == "addon_visit"   # namespaced by bundle


def test_a_version_outside_the_range_is_refused(loom, tmp_path):
    loom.install(BUNDLES / "mini")
    with pytest.raises(InvalidInput) as exc:
        loom.install(_addon(tmp_path, {"mini": ">=2.0"}))
    assert "but 1.0.0 is installed" in exc.value.problems[0].message


def test_an_upgrade_that_breaks_a_dependent_is_refused(loom, tmp_path, bundle_copy):
    loom.install(BUNDLES / "mini")
    loom.install(_addon(tmp_path, {"mini": "~=1.0"}))
    path = bundle_copy()
    (path / "app.yaml").write_text((path / "app.yaml").read_text(encoding="utf-8").replace("1.0.0", "2.0.0"),
                                   encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        loom.install(path)
    assert "installed bundle `addon` needs mini ~=1.0" in exc.value.problems[0].message


def test_diff_between_a_bundle_and_a_changed_copy(bundle_copy):
    path = bundle_copy()
    text = (path / "entities" / "branch.yaml").read_text(encoding="utf-8")
    (path / "entities" / "branch.yaml").write_text(text.replace("{zh-CN: 名称, en: Name}", "{zh-CN: 名称, en: Title}"),
                                                   encoding="utf-8")
    (path / "forms" / "customer.yaml").unlink()
    _, left = definitions_from_bundle(BUNDLES / "mini")
    _, right = definitions_from_bundle(path)
    diffs = {(d.kind, d.key): d for d in compare(left, right)}
    assert diffs[("form", "customer_form")].status == "removed"
    assert diffs[("entity", "branch")].details == ["~ /fields[key=name]/label/en: 'Name' -> 'Title'"]


FRAPPE_CUSTOMER = {
    "doctype": "DocType", "name": "Broker Customer", "title_field": "customer_name",
    "fields": [
        {"fieldname": "customer_name", "fieldtype": "Data", "label": "Customer Name", "reqd": 1, "in_list_view": 1},
        {"fieldname": "email_id", "fieldtype": "Data", "options": "Email", "label": "Email"},
        {"fieldname": "cb1", "fieldtype": "Column Break"},
        {"fieldname": "risk", "fieldtype": "Select", "options": "Low\nMedium\nHigh", "default": "Low"},
        {"fieldname": "sb_money", "fieldtype": "Section Break", "label": "Money"},
        {"fieldname": "aum", "fieldtype": "Currency", "label": "AUM"},
        {"fieldname": "accounts", "fieldtype": "Table", "options": "Broker Account", "label": "Accounts"},
        {"fieldname": "html_1", "fieldtype": "HTML"},
        {"fieldname": "sig", "fieldtype": "Signature"},
    ]}
FRAPPE_ACCOUNT = {"doctype": "DocType", "name": "Broker Account", "istable": 1, "fields": [
    {"fieldname": "account_no", "fieldtype": "Data", "reqd": 1}, {"fieldname": "opened", "fieldtype": "Date"}]}


def test_frappe_doctypes_become_an_installable_bundle(loom, tmp_path):
    paths = []
    for name, doc in (("customer.json", FRAPPE_CUSTOMER), ("account.json", FRAPPE_ACCOUNT)):
        (tmp_path / name).write_text(json.dumps(doc), encoding="utf-8")
        paths.append(tmp_path / name)
    entities, forms, notes = convert(paths)
    [ent] = entities
    fields = {f["key"]: f for f in ent["fields"]}
    assert fields["email_id"]["type"] == "email" and fields["aum"]["type"] == "decimal"
    assert fields["risk"]["default"] == "Low" and [o["value"] for o in fields["risk"]["options"]] == ["Low", "Medium", "High"]
    assert [f["key"] for f in fields["accounts"]["fields"]] == ["account_no", "opened"]
    assert any("Signature" in n for n in notes)
    assert forms[0]["sections"][0]["columns"] == 2 and forms[0]["sections"][1]["label"] == {"en": "Money"}
    root = tmp_path / "imported"
    (root / "entities").mkdir(parents=True)
    (root / "forms").mkdir()
    (root / "app.yaml").write_text("key: imported\nversion: 1.0.0\ntitle: Imported\n", encoding="utf-8")
    (root / "entities" / "e.yaml").write_text(yaml.safe_dump(ent, allow_unicode=True), encoding="utf-8")
    (root / "forms" / "f.yaml").write_text(yaml.safe_dump(forms[0], allow_unicode=True), encoding="utf-8")
    loom.install(root)
    from engine.security import Actor
    rec = loom.records.create("imported.broker_customer", {"customer_name": "Acme", "aum": "10",
                                                           "accounts": [{"account_no": "1"}]}, Actor.system())
    assert rec["risk"] == "Low"
