"""Metadata, the OpenAPI document and its docs page, and attachment files."""
from __future__ import annotations

import io

from openapi_spec_validator import validate


def test_meta_lists_apps_entities_and_fields_in_both_languages(api):
    apps = api.get("/api/v1/meta/apps").get_json()["items"]
    assert [a["key"] for a in apps] == ["mini"] and apps[0]["title"]["zh-CN"] == "迷你客户"
    ents = {e["key"]: e for e in api.get("/api/v1/meta/mini/entities").get_json()["items"]}
    assert set(ents) == {"customer", "branch"}
    cust = api.get("/api/v1/meta/mini/customer").get_json()
    fields = {f["key"]: f for f in cust["fields"]}
    assert fields["risk_level"]["label"] == {"zh-CN": "风险等级", "en": "Risk level"}
    assert fields["risk_level"]["options"][0] == {"value": "C1", "label": {"zh-CN": "保守型", "en": "Conservative"}}
    positions = {f["key"]: f for f in fields["accounts"]["fields"]}["positions"]
    assert [f["key"] for f in positions["fields"]] == ["symbol", "qty"]
    assert api.get("/api/v1/meta/nosuch/entities").status_code == 404
    assert api.post("/api/v1/meta/apps").status_code in {404, 405}      # read-only


def test_openapi_document_is_valid_and_describes_each_entity(api):
    r = api.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.get_json()
    validate(doc)                                     # OpenAPI 3.1 meta-schema
    assert doc["openapi"].startswith("3.1")
    assert {"/api/v1/mini/customer", "/api/v1/mini/customer/{id}", "/api/v1/mini/branch",
            "/api/v1/mini/customer/import", "/api/v1/mini/customer/export"} <= set(doc["paths"])
    schemas = doc["components"]["schemas"]
    cust = schemas["mini_customer"]["properties"]
    assert cust["aum"]["type"] == ["string", "null"] and cust["aum"]["pattern"].startswith("^-?\\d{1,16}")
    assert cust["risk_level"]["enum"][:5] == ["C1", "C2", "C3", "C4", "C5"]
    assert cust["risk_level"]["x-labels"]["C1"]["zh-CN"] == "保守型"
    assert cust["branch"]["type"] == ["integer", "null"]
    assert cust["accounts"]["type"] == "array"
    row = schemas[cust["accounts"]["items"]["$ref"].rsplit("/", 1)[1]]
    assert row["properties"]["positions"]["type"] == "array"
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "cookie"}
    assert doc["paths"]["/api/v1/mini/customer/{id}"]["patch"]["responses"]["409"]["$ref"].endswith("/Problem")


def test_docs_page_loads_swagger_ui_from_the_vendor_route(app, api):
    page = app.test_client().get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/static/vendor/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert app.test_client().get("/static/vendor/swagger-ui-dist/swagger-ui-bundle.js").status_code == 200
    assert "/api/v1/openapi.json" in app.test_client().get("/api/v1/docs/init.js").get_data(as_text=True)


def test_file_upload_and_download_only_through_a_readable_record(api, app, mini):
    r = api.post("/api/v1/files", data={"file": (io.BytesIO(b"hello loom"), "note.txt")},
                 content_type="multipart/form-data")
    assert r.status_code == 201
    desc = r.get_json()
    assert desc["size"] == 10 and len(desc["sha256"]) == 64
    # not referenced by any record yet: not downloadable
    assert api.get(f"/api/v1/files/{desc['sha256']}").status_code == 404
    assert api.get("/api/v1/files/not-a-hash").status_code == 404
    assert app.test_client().get(f"/api/v1/files/{desc['sha256']}").status_code == 401


def test_attachment_downloadable_once_a_readable_record_refers_to_it(loom, bundle_copy, token_for):
    from engine.runtime.app import create_app
    bundle = bundle_copy("mini")
    with open(bundle / "entities" / "customer.yaml", "a", encoding="utf-8") as f:
        f.write("  - {key: contract, type: attachment, label: {zh-CN: 合同, en: Contract}}\n")
    loom.install(bundle)
    client = create_app(loom, {"TESTING": True}).test_client()
    h = {"Authorization": f"Bearer {token_for(loom)}"}
    desc = client.post("/api/v1/files", data={"file": (io.BytesIO(b"%PDF-1.4 test"), "c.pdf")},
                       content_type="multipart/form-data", headers=h).get_json()
    assert client.get(f"/api/v1/files/{desc['sha256']}", headers=h).status_code == 404
    r = client.post("/api/v1/mini/customer", json={"name": "签约", "risk_level": "C1", "contract": desc}, headers=h)
    assert r.status_code == 201, r.get_json()
    got = client.get(f"/api/v1/files/{desc['sha256']}", headers=h)
    assert got.status_code == 200 and got.data == b"%PDF-1.4 test"
    assert "c.pdf" in got.headers["Content-Disposition"]
