"""The generated staff screens through the Flask test client: what a user sees and can do."""
from __future__ import annotations

import re

import pytest

from engine.security import Actor
from engine.security.users import create_user, users


def csrf_of(page: str) -> str | None:
    m = re.search(r'name="csrf-token" content="([^"]+)"', page)
    return m.group(1) if m else None


class FormClient:
    """A browser-like test client: every POST carries the page's CSRF token, as the forms do."""

    def __init__(self, client):
        self.client = client
        self.token = csrf_of(client.get("/login").get_data(as_text=True))

    def get(self, url, **kw):
        r = self.client.get(url, **kw)
        self.token = csrf_of(r.get_data(as_text=True)) or self.token
        return r

    def post(self, url, data=None, **kw):
        data = dict(data or {})
        if self.token:
            data.setdefault("csrf_token", self.token)
        return self.client.post(url, data=data, **kw)


@pytest.fixture
def client(app, mini):
    with mini.db.begin() as conn:
        create_user(conn, "bob", "bob-pass-123", is_admin=True, locale="zh-CN", display_name="Bob")
    c = FormClient(app.test_client())
    r = c.post("/login", data={"username": "bob", "password": "bob-pass-123"})
    assert r.status_code == 302
    c.get("/")     # the session (and its CSRF token) is new after logging in
    return c


def _branch_id(mini, code="BJ01"):
    res = mini.query.list(mini.model.entity("mini.branch"), Actor.system(),
                          __import__("engine.records", fromlist=["ListRequest"]).ListRequest(filters=[("code", "eq", code)]))
    return res["items"][0]["id"]


def _form(**extra):
    data = {"name": "王五", "mobile": "13700137000", "risk_level": "C3", "aum": "1,234,567.8",
            "is_professional": ["false", "true"], "_table": ["accounts", "accounts[0].positions"],
            "accounts[0].number": "A-001", "accounts[0].balance": "10.5",
            "accounts[0].positions[0].symbol": "600519", "accounts[0].positions[0].qty": "100"}
    data.update(extra)
    return data


def test_login_page_shows_errors_in_chinese(app, mini):
    c = FormClient(app.test_client())
    r = c.get("/r/mini/customer")
    assert r.status_code == 302 and "/login" in r.location
    page = c.get("/login").get_data(as_text=True)
    assert "登录" in page and 'name="password"' in page
    r = c.post("/login", data={"username": "nobody", "password": "x"})
    assert r.status_code == 401
    assert "用户名或密码错误" in r.get_data(as_text=True)


def test_home_lists_apps_and_menus(client):
    page = client.get("/").get_data(as_text=True)
    assert "迷你客户" in page
    assert 'href="/r/mini/customer"' in page and "营业部" in page


def test_nav_entries_added_by_other_modules(app, client):
    app.extensions["loom_nav"].append({"url": "/inbox", "label": {"zh-CN": "待办", "en": "Inbox"}, "order": 1,
                                       "visible": lambda actor: actor.username == "bob"})
    app.extensions["loom_nav"].append({"url": "/secret", "label": {"zh-CN": "机密", "en": "Secret"},
                                       "visible": lambda actor: False})
    page = client.get("/").get_data(as_text=True)
    assert 'href="/inbox"' in page and "待办" in page
    assert "/secret" not in page


def test_list_shows_titles_option_labels_and_decimals(client, mini):
    page = client.get("/r/mini/customer").get_data(as_text=True)
    # columns from list.columns, link shown by title, select by its label, decimals formatted
    for text in ["姓名", "手机号", "风险等级", "张三", "北京营业部", "稳健型", "1,000,000.50"]:
        assert text in page
    assert "共 2 条" in page


def test_list_search_sort_filter_and_htmx_partial(client):
    r = client.get("/r/mini/customer?q=李", headers={"HX-Request": "true", "HX-Target": "list-region"})
    body = r.get_data(as_text=True)
    assert "<html" not in body and "李四" in body and "张三" not in body
    body = client.get("/r/mini/customer?sort=aum").get_data(as_text=True)
    assert body.index("李四") < body.index("张三")
    body = client.get("/r/mini/customer?sort=-aum").get_data(as_text=True)
    assert body.index("张三") < body.index("李四")
    body = client.get("/r/mini/customer?risk_level=C1").get_data(as_text=True)
    assert "李四" in body and "张三" not in body
    body = client.get("/r/mini/customer?aum__gte=10000").get_data(as_text=True)
    assert "张三" in body and "李四" not in body


def test_switch_language_is_remembered_on_the_user(client, mini):
    r = client.post("/locale/en", data={"next": "/r/mini/customer"})
    assert r.status_code == 302 and r.location.endswith("/r/mini/customer")
    page = client.get("/r/mini/customer").get_data(as_text=True)
    assert "Risk level" in page and "Balanced" in page and "Search" in page and "风险等级" not in page
    with mini.db.connect() as conn:
        assert conn.execute(users.select().where(users.c.username == "bob")).mappings().one()["locale"] == "en"


def test_create_form_renders_sections_widgets_and_children(client):
    page = client.get("/r/mini/customer/new").get_data(as_text=True)
    assert "基本信息" in page and "资产" in page
    assert '<select class="input" id="f-risk_level" name="risk_level"' in page
    assert 'type="date"' in page and 'inputmode="decimal"' in page
    assert 'name="_table" value="accounts"' in page
    assert "/r/mini/customer/_row?chain=accounts" in page
    assert re.search(r'hx-get="/r/mini/customer/_lookup/branch"', page)


def test_create_with_nested_child_rows(client, mini):
    bj = _branch_id(mini)
    r = client.post("/r/mini/customer/new", data=_form(branch=str(bj), tags=["", "vip", "new"]))
    assert r.status_code == 302, r.get_data(as_text=True)
    rid = int(re.search(r"/r/mini/customer/(\d+)", r.location).group(1))
    rec = mini.records.get("mini.customer", rid, Actor.system())
    assert rec["aum"] == "1234567.80" and rec["is_professional"] is True and rec["tags"] == ["vip", "new"]
    assert rec["accounts"][0]["number"] == "A-001"
    assert rec["accounts"][0]["positions"][0]["symbol"] == "600519"
    detail = client.get(r.location).get_data(as_text=True)
    for text in ["王五", "A-001", "600519", "北京营业部", "1,234,567.80", "变更历史", "bob"]:
        assert text in detail


def test_validation_errors_shown_at_fields_in_chinese(client, mini):
    data = _form(name="", mobile="12345", **{"accounts[0].positions[0].symbol": ""})
    r = client.post("/r/mini/customer/new", data=data)
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    mobile = page[page.index('data-path="mobile"'):]
    assert mobile.index("不是有效的手机号码") < mobile.index("</div>\n</div>") + 200
    assert re.search(r'data-path="name".*?必填', page, re.S)
    assert re.search(r'data-path="accounts\[0\]\.positions\[0\]\.symbol".*?必填', page, re.S)
    # what the user typed is kept
    assert 'value="A-001"' in page and 'value="12345"' in page
    total = mini.query.list(mini.model.entity("mini.customer"), Actor.system(),
                            __import__("engine.records", fromlist=["ListRequest"]).ListRequest())["total"]
    assert total == 2


def test_edit_saves_and_stale_edit_offers_reload(client, mini):
    rec = mini.records.create("mini.customer", {"name": "赵六", "risk_level": "C2", "accounts": [
        {"number": "Z-1", "positions": [{"symbol": "000001", "qty": 5}]}]}, Actor.system())
    page = client.get(f"/r/mini/customer/{rec['id']}/edit").get_data(as_text=True)
    assert 'value="赵六"' in page and 'value="Z-1"' in page and 'value="000001"' in page
    assert 'name="_version" value="1"' in page
    row_id = rec["accounts"][0]["id"]
    form = {"name": "赵六六", "risk_level": "C4", "_version": "1", "_table": ["accounts", "accounts[0].positions"],
            "accounts[0].id": str(row_id), "accounts[0].number": "Z-1",
            "accounts[0].positions[0].symbol": "000001", "accounts[0].positions[0].qty": "7"}
    r = client.post(f"/r/mini/customer/{rec['id']}/edit", data=form)
    assert r.status_code == 302
    now = mini.records.get("mini.customer", rec["id"], Actor.system())
    assert now["name"] == "赵六六" and now["version"] == 2 and now["accounts"][0]["positions"][0]["qty"] == 7
    detail = client.get(f"/r/mini/customer/{rec['id']}").get_data(as_text=True)
    assert "赵六" in detail and "相对积极型" in detail and "修改了记录" in detail
    # the same (now stale) form again: a clear message and a reload link, nothing changed
    r = client.post(f"/r/mini/customer/{rec['id']}/edit", data={**form, "name": "过期"})
    assert r.status_code == 409
    body = r.get_data(as_text=True)
    assert "其他人已修改了此记录" in body and "重新加载最新版本" in body and 'value="过期"' in body
    assert mini.records.get("mini.customer", rec["id"], Actor.system())["name"] == "赵六六"


def test_removing_all_child_rows_clears_them(client, mini):
    rec = mini.records.create("mini.customer", {"name": "钱七", "risk_level": "C2",
                                                "accounts": [{"number": "Q-1"}]}, Actor.system())
    r = client.post(f"/r/mini/customer/{rec['id']}/edit",
                    data={"name": "钱七", "risk_level": "C2", "_version": "1", "_table": ["accounts"]})
    assert r.status_code == 302
    assert mini.records.get("mini.customer", rec["id"], Actor.system())["accounts"] == []


def test_delete_with_version(client, mini):
    rec = mini.records.create("mini.customer", {"name": "孙八", "risk_level": "C1"}, Actor.system())
    page = client.get(f"/r/mini/customer/{rec['id']}").get_data(as_text=True)
    assert "data-confirm=" in page
    r = client.post(f"/r/mini/customer/{rec['id']}/delete", data={"_version": "1"})
    assert r.status_code == 302
    assert "孙八" not in client.get("/r/mini/customer").get_data(as_text=True)


def test_field_rules_hidden_masked_readonly(client, mini, monkeypatch):
    rules = {"email": "hidden", "mobile": "masked", "aum": "readonly"}
    original = mini.records._rules
    monkeypatch.setattr(mini.records, "_rules",
                        lambda actor, ent: rules if ent.key == "customer" and not actor.is_system else original(actor, ent))
    rec = mini.records.create("mini.customer", {"name": "周九", "risk_level": "C2", "mobile": "13512345678",
                                                "email": "zhou@example.com", "aum": "5.00"}, Actor.system())
    page = client.get(f"/r/mini/customer/{rec['id']}/edit").get_data(as_text=True)
    assert "zhou@example.com" not in page and 'data-path="email"' not in page
    assert "******" in page and "13512345678" not in page and 'name="mobile"' not in page
    assert re.search(r'id="f-aum" name=""[^>]*disabled', page)
    # a tampered post cannot change the read-only field: it is not taken from the form
    r = client.post(f"/r/mini/customer/{rec['id']}/edit",
                    data={"name": "周九", "risk_level": "C2", "aum": "999", "_version": "1", "_table": ["accounts"]})
    assert r.status_code == 302
    assert mini.records.get("mini.customer", rec["id"], Actor.system())["aum"] == "5.00"
    detail = client.get(f"/r/mini/customer/{rec['id']}").get_data(as_text=True)
    assert "******" in detail and "13512345678" not in detail and "zhou@example.com" not in detail


class Expr:
    """Stands in for a compiled sandbox expression (same interface: evaluate(variables, api))."""

    def __init__(self, fn):
        self.fn = fn
        self.calls = 0

    def evaluate(self, variables, api=None):
        self.calls += 1
        return self.fn(variables)


def test_live_state_visibility_and_computed(client, mini):
    from engine.forms.model import FieldModel
    ent = mini.model.entity("mini.customer")
    ent.fields["notes"].visible_if = Expr(lambda v: bool(v["is_professional"]))
    ent.fields["accounts"].children.fields["balance"].visible_if = Expr(lambda v: v["number"] != "HIDE")
    doubled = Expr(lambda v: v["aum"] * 2 if v["aum"] is not None else None)
    ent.fields["aum_x2"] = FieldModel("aum_x2", "computed", {"scale": 2}, {"zh-CN": "双倍", "en": "Double"},
                                      expression=doubled, result="decimal")
    page = client.get("/r/mini/customer/new").get_data(as_text=True)
    assert 'hx-post="/r/mini/customer/_state"' in page
    assert re.search(r'class="field[^"]*is-hidden" data-path="notes"', page)   # initially not professional
    r = client.post("/r/mini/customer/_state", data={"aum": "1000.5", "is_professional": ["false", "true"],
                                                    "_table": ["accounts"], "accounts[0].number": "HIDE",
                                                    "accounts[1].number": "SHOW"})
    body = r.get_data(as_text=True)
    hidden = re.search(r"data-hidden='([^']*)'", body).group(1)
    assert '"notes"' not in hidden and '"accounts[0].balance"' in hidden and "accounts[1].balance" not in hidden
    assert 'id="f-aum_x2" hx-swap-oob="true">2,001.00</output>' in body
    body = client.post("/r/mini/customer/_state", data={"is_professional": ["false"], "aum": "oops"}).get_data(as_text=True)
    assert '"notes"' in re.search(r"data-hidden='([^']*)'", body).group(1)
    assert 'id="f-aum_x2" hx-swap-oob="true"></output>' in body


def test_new_row_and_lookup_fragments(client, mini):
    body = client.get("/r/mini/customer/_row?chain=accounts&prefix=accounts").get_data(as_text=True)
    idx = re.search(r'name="accounts\[(\d+)\]\.number"', body).group(1)
    assert f'name="_table" value="accounts[{idx}].positions"' in body
    nested = client.get(f"/r/mini/customer/_row?chain=accounts.positions&prefix=accounts[{idx}].positions").get_data(as_text=True)
    assert re.search(rf'name="accounts\[{idx}\]\.positions\[\d+\]\.symbol"', nested)
    assert client.get("/r/mini/customer/_row?chain=nope&prefix=x").status_code == 404
    body = client.get("/r/mini/customer/_lookup/branch?_lookup=上海").get_data(as_text=True)
    assert "上海营业部" in body and "北京营业部" not in body
    assert f'data-id="{_branch_id(mini, "SH01")}"' in body


def test_reverse_links_on_detail(client, mini):
    page = client.get(f"/r/mini/branch/{_branch_id(mini)}").get_data(as_text=True)
    assert "客户 · 营业部" in page and "张三" in page and "李四" not in page


def test_errors_render_as_pages_in_the_users_language(client):
    r = client.get("/r/mini/nothing")
    assert r.status_code == 404 and "未找到" in r.get_data(as_text=True)
    r = client.get("/r/mini/customer/99999")
    assert r.status_code == 404 and "<html" in r.get_data(as_text=True)
    r = client.get("/r/mini/customer?nofield=1")
    assert r.status_code == 422 and "nofield" in r.get_data(as_text=True)


def test_catalogs_compiled_and_all_areas_listed(app):
    from engine.runtime.web.i18n import ROOT, translation_directories
    dirs = translation_directories()
    assert ROOT / "engine" / "runtime" / "translations" in dirs
    assert (ROOT / "engine/runtime/translations/zh_CN/LC_MESSAGES/messages.mo").exists()
    assert all(str(d) in app.config["BABEL_TRANSLATION_DIRECTORIES"] for d in dirs)
