"""The records REST API on the `mini` bundle: CRUD with child rows, filters, search, pagination,
stale updates, validation errors in both languages."""
from __future__ import annotations

import pytest

URL = "/api/v1/mini/customer"


def _create(api, **data):
    body = {"name": "王五", "risk_level": "C2", **data}
    r = api.post(URL, json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_crud_with_nested_child_rows(api):
    rec = _create(api, aum="1,234.5", tags=["vip"], accounts=[
        {"number": "A-1", "balance": "10", "positions": [{"symbol": "600000", "qty": 100}, {"symbol": "000001", "qty": 5}]},
        {"number": "A-2"}])
    rid = rec["id"]
    r = api.get(f"{URL}/{rid}")
    assert r.status_code == 200
    assert r.headers["ETag"] == '"1"'
    body = r.get_json()
    assert body["aum"] == "1234.50"
    assert [a["number"] for a in body["accounts"]] == ["A-1", "A-2"]
    assert [p["symbol"] for p in body["accounts"][0]["positions"]] == ["600000", "000001"]

    r = api.patch(f"{URL}/{rid}", json={"version": 1, "notes": "VIP 客户"})
    assert r.status_code == 200 and r.get_json()["version"] == 2 and r.headers["ETag"] == '"2"'
    # If-Match instead of a body version
    r = api.patch(f"{URL}/{rid}", json={"accounts": [{"number": "B-1"}]}, headers={"If-Match": '"2"'})
    assert r.status_code == 200
    assert [a["number"] for a in api.get(f"{URL}/{rid}").get_json()["accounts"]] == ["B-1"]

    r = api.delete(f"{URL}/{rid}", headers={"If-Match": '"2"'})
    assert r.status_code == 409 and r.get_json()["current_version"] == 3
    assert api.delete(f"{URL}/{rid}", headers={"If-Match": '"3"'}).status_code == 204
    r = api.get(f"{URL}/{rid}")
    assert r.status_code == 404 and r.content_type == "application/problem+json"


def test_stale_update_is_409_with_current_version_and_changes_nothing(api):
    rec = _create(api)
    rid = rec["id"]
    assert api.patch(f"{URL}/{rid}", json={"version": 1, "notes": "first"}).status_code == 200
    r = api.patch(f"{URL}/{rid}", json={"version": 1, "notes": "second"})
    assert r.status_code == 409
    assert r.content_type == "application/problem+json"
    assert r.get_json()["current_version"] == 2
    assert api.get(f"{URL}/{rid}").get_json()["notes"] == "first"


def test_update_without_a_version_is_refused(api):
    rid = _create(api)["id"]
    r = api.patch(f"{URL}/{rid}", json={"notes": "x"})
    assert r.status_code == 428
    assert r.get_json()["errors"][0]["field"] == "version"
    assert api.get(f"{URL}/{rid}").get_json()["notes"] is None


@pytest.mark.parametrize("how,expect", [
    ({"query": "?lang=en"}, "option `C9` is not one of"),
    ({"headers": {"Accept-Language": "en-US,en;q=0.9"}}, "option `C9` is not one of"),
    ({"query": "?lang=zh-CN"}, "不是可选值"),
    ({}, "不是可选值"),                       # the user's own language (zh-CN)
])
def test_validation_errors_are_422_per_field_in_the_requested_language(api, how, expect):
    r = api.post(URL + how.get("query", ""), json={"name": "", "risk_level": "C9", "aum": "abc",
                                                   "accounts": [{"positions": [{"symbol": "X", "qty": "1.5"}]}]},
                 headers=how.get("headers"))
    assert r.status_code == 422
    assert r.content_type == "application/problem+json"
    errors = {e["field"]: e for e in r.get_json()["errors"]}
    assert {"name", "risk_level", "aum", "accounts[0].positions[0].qty"} <= set(errors)
    assert expect in errors["risk_level"]["message"]
    # nothing was written
    assert api.get(URL + "?q=X").get_json()["total"] == 0


def test_filters_sort_search_and_field_selection(api):
    for i, (risk, aum) in enumerate([("C1", "10"), ("C2", "200"), ("C3", "3000"), ("C5", None)]):
        _create(api, name=f"测试{i}", risk_level=risk, **({"aum": aum} if aum else {}), email=f"u{i}@ex.cn")

    def names(query):
        r = api.get(URL + query)
        assert r.status_code == 200, r.get_json()
        return [x["name"] for x in r.get_json()["items"]]

    assert names("?q=测试&sort=name") == ["测试0", "测试1", "测试2", "测试3"]
    assert names("?q=测试&aum__gte=200&sort=-aum") == ["测试2", "测试1"]
    assert names("?q=测试&aum__between=5,300&sort=aum") == ["测试0", "测试1"]
    assert names("?q=测试&risk_level__in=C1,C3&sort=name") == ["测试0", "测试2"]
    assert names("?q=测试&risk_level__ne=C1&sort=name") == ["测试1", "测试2", "测试3"]
    assert names("?q=测试&aum__isnull=true") == ["测试3"]
    assert names("?email__contains=U2") == ["测试2"]
    assert names("?q=测试&aum__lt=200") == ["测试0"]
    assert names("?q=u3@ex") == ["测试3"]
    item = api.get(URL + "?q=测试0&fields=name").get_json()["items"][0]
    assert set(item) == {"id", "version", "name"}
    # fixtures link customers to branches: expand the link
    zs = api.get(URL + "?name=张三&expand=branch").get_json()["items"][0]
    assert zs["branch"]["code"] == "BJ01"


def test_bad_list_parameters_name_the_parameter(api):
    r = api.get(URL + "?aum__near=5")
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "aum__near"
    r = api.get(URL + "?nosuch=1")
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "nosuch"
    r = api.get(URL + "?aum__gt=lots")
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "aum"


def test_cursor_pagination_walks_every_record_once(api):
    for i in range(7):
        _create(api, name=f"翻页{i}", aum=str(i % 3))
    seen, cursor, pages = [], None, 0
    while True:
        r = api.get(URL + "?q=翻页&sort=aum&page_size=3" + (f"&cursor={cursor}" if cursor else ""))
        page = r.get_json()
        seen += [x["name"] for x in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert pages == 3
    assert sorted(seen) == sorted(f"翻页{i}" for i in range(7)) and len(seen) == 7
    # page numbers too
    p2 = api.get(URL + "?q=翻页&sort=name&page_size=3&page=2").get_json()
    assert [x["name"] for x in p2["items"]] == ["翻页3", "翻页4", "翻页5"] and p2["total"] == 7


def test_unknown_entity_is_404_problem(api):
    r = api.get("/api/v1/mini/nosuch")
    assert r.status_code == 404 and r.content_type == "application/problem+json"
