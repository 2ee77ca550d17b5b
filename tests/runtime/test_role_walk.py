"""Log in as each role of the `secure` bundle and walk every GET endpoint and screen the app has.

Routes are discovered from ``app.url_map``, so endpoints added later are walked too. For every
response: no 500, no value of a record outside the user's scope, and no hidden or masked value in
clear (CSV, JSON, HTML and XLSX bodies alike). Detail URLs of records outside the scope must
answer 403 or 404.
"""
from __future__ import annotations

import io
import zipfile

import pytest
from werkzeug.routing import IntegerConverter

from tests.conftest import BUNDLES
from tests.security.world import CARDS, ID_NUMBERS, MOBILES, NOTES, World, build_world, login, make_app

SKIP_ENDPOINTS = {"static", "assets.vendor", "screens.logout", "auth.login", "api_docs.docs_init"}
ENTITIES = ("customer", "account", "trade")
LINKS = {"customer": [], "account": ["customer"], "trade": ["account"]}
#: which of the customer's values each role may see only masked / hidden
RESTRICTED = {
    "adv1": ("id_number", "bank_card"), "adv2": ("id_number", "bank_card"), "adv3": ("id_number", "bank_card"),
    "mgr1": ("id_number", "bank_card"), "comp": ("mobile", "notes", "bank_card"), "root": (), "sysadmin": (),
}


def _values(c: str) -> dict[str, str]:
    return {"name": f"Customer {c}", "id_number": ID_NUMBERS[c], "mobile": MOBILES[c], "notes": NOTES[c],
            "bank_card": CARDS[c], "account_no": f"A-{c}", "symbol": f"60000{c[-1]}",
            "id_masked": ID_NUMBERS[c][:3] + "*" * 11 + ID_NUMBERS[c][-4:]}


def forbidden_strings(user: str) -> dict[str, str]:
    """text -> why it must not appear in any response body for ``user``."""
    visible = World.VISIBLE.get(user, set())
    out = {}
    for c in ("c1", "c2", "c3"):
        vals = _values(c)
        if c not in visible:
            for k, v in vals.items():
                out[v] = f"{k} of out-of-scope {c}"
        else:
            for k in RESTRICTED[user]:
                out[vals[k]] = f"{k} of {c} in clear"
    return out


def _urls(app, world) -> list[tuple[str, str, bool]]:
    """(url, endpoint, out_of_scope_record) for every GET route, with its arguments filled in."""
    out = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in SKIP_ENDPOINTS:
            continue
        args = list(rule.arguments)
        variants = [{}]
        if "app" in args:
            variants = [dict(v, app="secure") for v in variants]
        if "entity" in args:
            variants = [dict(v, entity=e) for v in variants for e in ENTITIES]
        for name in args:
            if name in {"app", "entity"}:
                continue
            conv = rule._converters[name]
            new = []
            for v in variants:
                if name == "record_id":
                    table = {"customer": world.customers, "account": world.accounts, "trade": world.trades}[v["entity"]]
                    new += [dict(v, record_id=table[c], _c=c) for c in ("c1", "c3")]
                elif name == "chain":
                    new += [dict(v, chain=f) for f in LINKS[v["entity"]]]
                elif name == "key":
                    new += [dict(v, key=k) for k in ("customer_contacts", "trades_by_account")]
                elif isinstance(conv, IntegerConverter):
                    new.append(dict(v, **{name: 1}))
                else:
                    new.append(dict(v, **{name: "x"}))
            variants = new
        for v in variants:
            c = v.pop("_c", None)
            try:
                url = rule.build(v, append_unknown=False)[1]
            except Exception:      # noqa: BLE001 -- an argument we cannot fill: reported below
                continue
            out.append((url, rule.endpoint, c))
            if "entity" in v and LINKS[v["entity"]] and rule.endpoint.endswith(("list_records", "read_record")):
                out.append((f"{url}?expand={','.join(LINKS[v['entity']])}", rule.endpoint, c))
            if rule.rule.endswith("/export"):
                for fmt in ("csv", "xlsx", "jsonl", "json"):
                    out.append((f"{url}?format={fmt}", rule.endpoint, c))
    return out


def _text(resp) -> str:
    data = resp.get_data()
    if data[:2] == b"PK":           # xlsx: the cells are in the zipped XML
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                return "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
        except zipfile.BadZipFile:
            pass
    return data.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    from engine.runtime.loom import Loom
    from tests.conftest import make_settings
    settings = make_settings(tmp_path_factory.mktemp("walk"))
    loom = Loom(settings)
    loom.init_db()
    world = build_world(loom, BUNDLES)
    app = make_app(loom, LOOM_LOGIN_RATE=1000, PROPAGATE_EXCEPTIONS=False)    # a 500 is a finding, not a crash
    yield app, world
    loom.dispose()
    if settings.db_schema:
        from engine.db import drop_schema
        drop_schema(settings.database_url, settings.db_schema)


@pytest.mark.parametrize("user", ["anonymous", *World.ROLES])
def test_walk_every_endpoint_as_each_role(walk, user):
    app, world = walk
    client = app.test_client()
    if user != "anonymous":
        login(client, user)
    bad = forbidden_strings(user) if user != "anonymous" else {
        v: "any value, anonymously" for c in ("c1", "c2", "c3") for v in _values(c).values()}
    visible = World.VISIBLE.get(user, set())
    problems, walked = [], 0
    for url, endpoint, c in _urls(app, world):
        resp = client.get(url)
        walked += 1
        if resp.status_code >= 500:
            problems.append(f"{url}: {resp.status_code}")
            continue
        body = _text(resp)
        for text, why in bad.items():
            if text in body:
                problems.append(f"{url} ({resp.status_code}) shows {why}: {text}")
        if c is not None and c not in visible and resp.status_code < 300 and endpoint.endswith(
                ("read_record", "detail", "edit")):
            problems.append(f"{url}: {resp.status_code} for a record outside the scope")
        if user == "anonymous" and resp.status_code == 200 and endpoint not in {
                "healthz", "api_docs.docs", "api_docs.openapi_json"}:
            if url.startswith("/api/"):
                problems.append(f"{url}: 200 without logging in")
    assert walked > 30, "the walk found too few endpoints: route discovery is broken"
    assert not problems, "\n".join(problems[:50])


def test_what_each_role_sees_through_the_api(walk):
    """The API answers for each role exactly as the policy says (the same rows as the engine)."""
    app, world = walk
    for user, visible in World.VISIBLE.items():
        client = app.test_client()
        login(client, user)
        for entity, table in (("customer", world.customers), ("account", world.accounts), ("trade", world.trades)):
            r = client.get(f"/api/v1/secure/{entity}")
            assert r.status_code == 200, (user, entity, r.get_data(as_text=True))
            assert {i["id"] for i in r.get_json()["items"]} == {table[c] for c in visible}, (user, entity)
        one = client.get(f"/api/v1/secure/customer/{world.customers['c1']}")
        if "c1" not in visible:
            assert one.status_code == 404
            continue
        rec = one.get_json()
        if "id_number" in RESTRICTED[user]:
            assert rec["id_number"] == "110***********1234"
        else:
            assert rec["id_number"] == ID_NUMBERS["c1"]
        if "mobile" in RESTRICTED[user]:
            assert rec["mobile"] == "138****5678"
        assert ("notes" in rec) == ("notes" not in RESTRICTED[user])
