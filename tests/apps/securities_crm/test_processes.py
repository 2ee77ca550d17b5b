"""The bundle's processes through the API: onboarding end to end, the suitability warning and
refusal, a complaint escalating at 70% of its working-day SLA on a controlled clock.

Automated steps that read what a person just saved run on the scheduler after that step commits
(a one-second timer), so the scenarios move the frozen clock on and call ``loom.workflow.tick()``.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from freezegun import freeze_time as _freeze_time

from engine.security import Actor
from engine.security.users import add_org_unit, create_user, issue_token
from engine.workflow.tables import notifications, outbox
from tests.apps.securities_crm.conftest import BUNDLE

APP = "securities_crm"
SYSTEM = Actor.system("tests")
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)        # a Tuesday, 10:00 in Beijing


def freeze_time(when):
    # the model-reload clock stays real: a frozen jump would reload the model mid-request
    return _freeze_time(when, ignore=["engine.runtime.loom"])


class Client:
    def __init__(self, client, token):
        self.client, self.token = client, token

    def open(self, method, url, **kw):
        return self.client.open(url, method=method, headers={"Authorization": f"Bearer {self.token}"}, **kw)

    def get(self, url, **kw):
        return self.open("GET", url, **kw)

    def post(self, url, **kw):
        return self.open("POST", url, **kw)


def valid_id_number(birthday: str, male: bool = True, region: str = "110101") -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    first = region + birthday.replace("-", "") + ("123" if male else "124")
    return first + "10X98765432"[sum(int(c) * w for c, w in zip(first, weights)) % 11]


@pytest.fixture
def world(crm):
    """Branch BJ01 with a manager, two advisors, operations and compliance logins, as API clients."""
    from engine.runtime.app import create_app
    branch = crm.query.list(crm.records.entity(f"{APP}.branch"), SYSTEM,
                            _req({"code": "BJ01"}))["items"][0]
    people = {"ops": ("operations", "operations"), "adv": ("advisor", "advisor"), "adv2": ("advisor", "advisor"),
              "comp": ("compliance", "compliance"), "mgr": ("branch_manager", "branch_manager")}
    users, employees, clients = {}, {}, {}
    app = create_app(crm, {"TESTING": True})
    with crm.db.begin() as conn:
        hq = add_org_unit(conn, "HQ", {"zh-CN": "总部", "en": "HQ"}, "hq", None)
        unit = add_org_unit(conn, "BJ01", {"zh-CN": branch["name"], "en": "BJ01"}, "branch", hq)
        for name, (role, _title) in people.items():
            users[name] = create_user(conn, name, "secret-pass-1", roles=[f"{APP}.{role}"], locale="zh-CN",
                                      org_unit_id=hq if role == "compliance" else unit)
            clients[name] = Client(app.test_client(), issue_token(conn, users[name], "tests"))
    for i, (name, (_role, title)) in enumerate(people.items()):
        employees[name] = crm.records.create(f"{APP}.employee", {
            "code": f"E{i:03d}", "name": name, "title": title, "branch": branch["id"], "user_id": users[name],
            "username": name}, SYSTEM)["id"]
    return {"branch": branch["id"], "users": users, "employees": employees, "clients": clients, "loom": crm}


def _req(where):
    from engine.records.query import ListRequest
    return ListRequest.from_params(where)


def find(lm, entity, where=None):
    return lm.query.list(lm.records.entity(f"{APP}.{entity}"), SYSTEM, _req(where or {}))["items"]


def group_tasks(client):
    return client.get("/api/v1/tasks?view=group").get_json()["items"]


def task_of(client, bpmn_id):
    tasks = [t for t in group_tasks(client) if t["bpmn_id"] == bpmn_id]
    assert tasks, f"no {bpmn_id} task in {[t['bpmn_id'] for t in group_tasks(client)]}"
    return tasks[0]


def complete(client, task, data=None, variables=None):
    body = {"data": data or {}}
    if variables:
        body["variables"] = variables
    r = client.post(f"/api/v1/tasks/{task['id']}/complete", json=body)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


class Clock:
    """A frozen clock that moves forward on demand; ``tick`` runs the scheduler a little later."""

    def __init__(self, lm, start):
        self.lm, self.now = lm, start

    def __enter__(self):
        self._f = freeze_time(self.now)
        self.frozen = self._f.start()
        return self

    def __exit__(self, *exc):
        self._f.stop()

    def advance(self, delta):
        self.now += delta
        self.frozen.move_to(self.now)

    def tick(self, delta=timedelta(seconds=5)):
        self.advance(delta)
        return self.lm.workflow.tick()


def answers(best: bool) -> dict:
    """One answer per question of the bundle's questionnaire: the highest-scoring or the lowest non-forcing option."""
    q = yaml.safe_load((BUNDLE / "fixtures" / "questionnaire.yaml").read_text("utf-8"))["records"][0]
    out = {}
    for question in q["questions"]:
        opts = [o for o in question["options"] if not o.get("forces_lowest")]
        pick = max(opts, key=lambda o: o["score"]) if best else min(opts, key=lambda o: o["score"])
        out[question["code"]] = pick["value"]
    return out


# -- onboarding --------------------------------------------------------------------------------------

def test_onboard_a_high_aml_risk_customer_end_to_end(world):
    lm, c = world["loom"], world["clients"]
    with Clock(lm, T0) as clock:
        r = c["ops"].post(f"/api/v1/processes/{APP}.onboarding/start", json={"data": {}})
        assert r.status_code == 201, r.get_json()
        iid = r.get_json()["id"]
        # the KYC form is operations' task, not the advisor's
        assert [t["bpmn_id"] for t in group_tasks(c["adv"])] == []
        kyc = task_of(c["ops"], "kyc")
        complete(c["ops"], kyc, {
            "customer_no": "C900001", "name": "王小明", "customer_type": "individual", "id_type": "id_card",
            "id_number": valid_id_number("1985-03-12"), "gender": "M", "birthday": "1985-03-12",
            "mobile": "13800138000", "advisor": world["employees"]["adv"], "branch": world["branch"],
            "aml_risk": "high", "horizon": "long", "varieties": ["equity", "fixed_income"]})
        cust = find(lm, "customer", {"customer_no": "C900001"})[0]
        # the identity check runs on the scheduler once the KYC is saved; it links the advisor's login
        clock.tick()
        cust = lm.records.get(f"{APP}.customer", cust["id"], SYSTEM)
        assert cust["status"] == "onboarding" and cust["advisor_user"] == world["users"]["adv"]
        q = task_of(c["adv"], "questionnaire")
        complete(c["adv"], q, {"risk_answers": answers(best=True)})
        clock.tick()
        cust = lm.records.get(f"{APP}.customer", cust["id"], SYSTEM)
        assert cust["risk_level"] == "C5" and cust["assessment_date"] == "2026-12-01"
        assert cust["assessment_expiry"] == "2028-11-30"          # 730 days (parameter assessment_validity_days)
        assessment = find(lm, "assessment", {"customer": cust["id"]})
        assert len(assessment) == 1 and assessment[0]["risk_level"] == "C5" and len(assessment[0]["answers"]) == 10
        complete(c["adv"], task_of(c["adv"], "classify"), {"investor_class": "ordinary"})
        complete(c["ops"], task_of(c["ops"], "agreement"), {
            "customer": cust["id"], "agreement_type": "brokerage", "signed_on": "2026-12-01", "status": "signed"})
        # AML risk high: compliance reviews before activation
        assert lm.records.get(f"{APP}.customer", cust["id"], SYSTEM)["status"] == "onboarding"
        complete(c["comp"], task_of(c["comp"], "review"), {"compliance_approved": True, "aml_review_date": "2026-12-01"})
        clock.tick()
        cust = lm.records.get(f"{APP}.customer", cust["id"], SYSTEM)
        assert cust["status"] == "active" and cust["opened_on"] == "2026-12-01"
        with lm.db.connect() as conn:
            sms = [r.payload for r in conn.execute(sa.select(outbox).where(outbox.c.channel == "sms"))]
        assert {"template": "welcome", "customer": cust["id"]} in sms
        # the callback is the advisor's, due within a month (parameter new_account_callback_days = 30)
        cb = task_of(c["adv"], "callback")
        due = datetime.fromisoformat(cb["due_at"].replace("Z", "+00:00"))
        assert timedelta(days=29) < due - clock.now <= timedelta(days=30, minutes=1)
        done = complete(c["adv"], cb, {"customer": cust["id"], "kind": "callback", "purpose": "new_account_callback",
                                       "occurred_at": "2026-12-02T02:00:00Z", "subject": "新开户回访"})
        assert done["status"] == "completed"
    assert lm.workflow.instance(iid)["status"] == "completed"
    # an advisor sees only their own customers: the other advisor cannot open this one
    assert c["adv"].get(f"/api/v1/{APP}/customer/{cust['id']}").status_code == 200
    assert c["adv2"].get(f"/api/v1/{APP}/customer/{cust['id']}").status_code == 404


def test_an_invalid_identity_number_sends_the_kyc_back(world):
    lm, c = world["loom"], world["clients"]
    with Clock(lm, T0) as clock:
        c["ops"].post(f"/api/v1/processes/{APP}.onboarding/start", json={"data": {}})
        good = valid_id_number("1990-01-01")
        bad = good[:-1] + ("0" if good[-1] != "0" else "1")
        complete(c["ops"], task_of(c["ops"], "kyc"), {
            "customer_no": "C900002", "name": "李四", "customer_type": "individual", "id_type": "id_card",
            "id_number": bad, "gender": "M", "birthday": "1990-01-01", "advisor": world["employees"]["adv"],
            "branch": world["branch"]})
        clock.tick()
        assert task_of(c["ops"], "fix_kyc")
        assert group_tasks(c["adv"]) == []


# -- suitability ---------------------------------------------------------------------------------------

def _customer(lm, world, no, **fields):
    data = {"customer_no": no, "name": f"客户{no}", "customer_type": "individual", "id_type": "id_card",
            "id_number": valid_id_number("1980-05-05", region="3101" + no[-2:]), "status": "active",
            "advisor": world["employees"]["adv"], "advisor_user": world["users"]["adv"], "branch": world["branch"],
            "assessment_date": "2026-06-01", "assessment_expiry": "2028-06-01", "horizon": "long",
            "varieties": ["cash", "fixed_income", "equity", "hybrid", "derivatives", "alternatives", "structured"],
            **fields}
    return lm.records.create(f"{APP}.customer", data, SYSTEM)["id"]


def _product(lm, rating):
    rows = [p for p in find(lm, "product", {"risk_rating": rating}) if p.get("status") in (None, "on_sale", "active")]
    return (rows or find(lm, "product", {"risk_rating": rating}))[0]


def _buy(client, customer_id, product_id):
    r = client.post(f"/api/v1/processes/{APP}.suitability_check/start",
                    json={"data": {"customer_id": customer_id, "product_id": product_id, "amount": "100000"}})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_a_c2_buying_an_r4_product_must_sign_the_special_risk_warning(world):
    lm, c = world["loom"], world["clients"]
    cid = _customer(lm, world, "C800001", risk_level="C2")
    product = _product(lm, "R4")
    with Clock(lm, T0) as clock:
        inst = _buy(c["adv"], cid, product["id"])
        assert inst["status"] == "waiting"
        rec = find(lm, "suitability", {"customer": cid})[0]
        assert rec["result"] == "warn" and rec["warning_required"] is True and rec["product_rating"] == "R4"
        sign = task_of(c["adv"], "sign")
        # not signed yet: the check sends the task back
        complete(c["adv"], sign, {"signature_ref": "pending"})
        clock.tick()
        sign = task_of(c["adv"], "sign")
        complete(c["adv"], sign, {"warning_signed": True, "signature_time": "2026-12-01T02:10:00Z",
                                  "signature_ref": "SIG-001"})
        clock.tick()
    detail = lm.workflow.instance(inst["id"], detail=True)
    assert detail["status"] == "completed" and "end_signed" in detail["completed"]
    assert lm.records.get(f"{APP}.suitability", rec["id"], SYSTEM)["warning_signed"] is True


def test_a_lowest_category_customer_is_refused_above_r1(world):
    lm, c = world["loom"], world["clients"]
    cid = _customer(lm, world, "C800002", risk_level="C1", lowest_category=True)
    inst = _buy(c["adv"], cid, _product(lm, "R2")["id"])
    assert inst["status"] == "completed" and inst.get("tasks", []) == []
    rec = find(lm, "suitability", {"customer": cid})[0]
    assert rec["result"] == "refuse"
    assert any(r["code"] == "lowest_category" for r in rec["reasons"])
    with lm.db.connect() as conn:
        titles = [r.title for r in conn.execute(sa.select(notifications).where(notifications.c.role == f"{APP}.compliance"))]
    assert any("C800002" in t or str(cid) in t for t in titles)
    # R1 is fine for the same customer
    inst = _buy(c["adv"], cid, _product(lm, "R1")["id"])
    assert inst["status"] == "completed"
    assert sorted(r["result"] for r in find(lm, "suitability", {"customer": cid})) == ["match", "refuse"]


def test_an_expired_assessment_blocks_products_above_r1(world):
    lm, c = world["loom"], world["clients"]
    cid = _customer(lm, world, "C800003", risk_level="C5", assessment_date="2024-01-01", assessment_expiry="2026-01-01")
    _buy(c["adv"], cid, _product(lm, "R3")["id"])
    rec = find(lm, "suitability", {"customer": cid})[0]
    assert rec["result"] == "refuse"


def test_a_lower_risk_level_rematches_the_holdings(world):
    lm = world["loom"]
    cid = _customer(lm, world, "C800004", risk_level="C5")
    product = _product(lm, "R5")
    lm.records.create(f"{APP}.holding", {"customer": cid, "product": product["id"], "security_code": product["code"],
                                         "quantity": "100", "as_of": "2026-11-30"}, SYSTEM)
    lm.records.update(f"{APP}.customer", cid, {"risk_level": "C2"}, SYSTEM)
    with lm.db.connect() as conn:
        titles = [r.title for r in conn.execute(sa.select(notifications).where(notifications.c.role == f"{APP}.compliance"))]
    assert any("1" in t and "mismatch" in t for t in titles), titles


# -- complaints ---------------------------------------------------------------------------------------

def test_a_complaint_escalates_at_70_percent_of_its_working_day_sla(world):
    lm, c = world["loom"], world["clients"]
    cid = _customer(lm, world, "C700001", risk_level="C3")
    with Clock(lm, T0) as clock:
        r = c["ops"].post(f"/api/v1/{APP}/complaint", json={
            "complaint_no": "TS-0001", "customer": cid, "request_type": "complaint", "channel": "csrc_12386",
            "platform_ref": "12386-2026-0001", "business_line": "wealth", "category": "service_attitude",
            "description": "客服态度差", "received_at": T0.isoformat(), "branch": world["branch"]})
        assert r.status_code == 201, r.get_json()
        comp = r.get_json()
        # 15 working days on the holiday calendar; 70% = 10.5 working days
        rec = lm.records.get(f"{APP}.complaint", comp["id"], SYSTEM)
        assert rec["ack_due"] == "2026-12-02" and rec["respond_due"] == "2026-12-22"
        ack = task_of(c["ops"], "acknowledge")
        assert ack["due_at"]
        complete(c["ops"], ack, {"acknowledged_at": T0.isoformat(), "status": "acknowledged"})
        # 10 working days later (Dec 15, 10:00 Beijing): below 70%, nothing fires
        assert clock.tick(timedelta(days=14))["fired"] == 0
        assert lm.records.get(f"{APP}.complaint", comp["id"], SYSTEM)["escalated"] is False
        # half a working day more: 70% reached, the branch manager is told, the work goes on
        result = clock.tick(timedelta(hours=12, minutes=1))
        assert result["fired"] == 1
        with lm.db.connect() as conn:
            rows = conn.execute(sa.select(notifications).where(notifications.c.username == "mgr")).all()
        assert len(rows) == 1 and "TS-0001" in rows[0].title and "70%" in rows[0].title
        assert lm.records.get(f"{APP}.complaint", comp["id"], SYSTEM)["escalated"] is True
        assert task_of(c["mgr"], "assign")                     # non-interrupting: the task is still open
        assert clock.tick(timedelta(hours=1))["fired"] == 0    # once, not again
        # on breach (after Dec 22, 10:00): escalated again, to the manager and compliance
        assert clock.tick(timedelta(days=7))["fired"] == 1
        with lm.db.connect() as conn:
            rows = conn.execute(sa.select(notifications.c.title, notifications.c.username, notifications.c.role)).all()
        assert sum(1 for r in rows if r.username == "mgr") == 2
        assert any(r.role == f"{APP}.compliance" and "TS-0001" in r.title for r in rows)


def test_a_suitability_complaint_goes_to_compliance_and_closes(world):
    lm, c = world["loom"], world["clients"]
    cid = _customer(lm, world, "C700002", risk_level="C3")
    with Clock(lm, T0):
        r = c["ops"].post(f"/api/v1/{APP}/complaint", json={
            "complaint_no": "TS-0002", "customer": cid, "request_type": "complaint", "channel": "phone",
            "business_line": "wealth", "category": "suitability", "description": "被推荐高风险产品",
            "received_at": T0.isoformat(), "branch": world["branch"]})
        assert r.status_code == 201, r.get_json()
        complete(c["ops"], task_of(c["ops"], "acknowledge"), {"status": "acknowledged"})
        complete(c["mgr"], task_of(c["mgr"], "assign"), {"assigned_to": world["employees"]["mgr"], "status": "assigned"})
        assert [t["bpmn_id"] for t in group_tasks(c["mgr"])] == []
        complete(c["comp"], task_of(c["comp"], "investigate_compliance"), {"root_cause": "未充分揭示风险",
                                                                            "reasonable": "reasonable", "status": "investigating"})
        complete(c["mgr"], task_of(c["mgr"], "respond"), {"resolution": "已致歉并调整", "responded_at": T0.isoformat(),
                                                          "status": "responded"})
        complete(c["ops"], task_of(c["ops"], "callback"), {"satisfaction": "satisfied", "status": "callback"})
        done = complete(c["ops"], task_of(c["ops"], "close"), {"closed_at": T0.isoformat(), "status": "closed"})
    assert done["status"] == "completed"
    assert lm.records.get(f"{APP}.complaint", r.get_json()["id"], SYSTEM)["status"] == "closed"


# -- definitions ----------------------------------------------------------------------------------------

def test_script_tasks_embed_the_bundle_scripts_verbatim():
    """A script task that runs a bundle script carries it verbatim: edit scripts/*.py, then the BPMN."""
    found = 0
    for bpmn in sorted((BUNDLE / "workflows").glob("*.bpmn")):
        text = bpmn.read_text("utf-8")
        for name, body in re.findall(r"# ---- begin scripts/(\w+)\.py[^\n]*\n(.*?)# ---- end scripts/", text, re.S):
            from xml.sax.saxutils import unescape
            source = (BUNDLE / "scripts" / f"{name}.py").read_text("utf-8").rstrip()
            body = unescape(body).rstrip()
            if "entry line not used" in body:      # the re-match calls the function once per holding
                source = source.rsplit("\n", 1)[0]
                body = body.rsplit("\n", 1)[0]
            assert body == source, f"{bpmn.name}: scripts/{name}.py changed; update the script task"
            found += 1
    assert found >= 4


def test_every_process_has_a_diagram():
    from lxml import etree
    ns = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL", "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI"}
    for bpmn in sorted((BUNDLE / "workflows").glob("*.bpmn")):
        root = etree.parse(str(bpmn)).getroot()
        drawn = {e.get("bpmnElement") for e in root.iterfind(".//bpmndi:BPMNShape", ns)} | \
                {e.get("bpmnElement") for e in root.iterfind(".//bpmndi:BPMNEdge", ns)}
        for proc in root.iterfind("bpmn:process", ns):
            for el in proc:
                if el.get("id") and etree.QName(el).localname not in {"laneSet", "documentation", "extensionElements"}:
                    assert el.get("id") in drawn, f"{bpmn.name}: {el.get('id')} has no shape"


# -- customer 360 ---------------------------------------------------------------------------------------

def _browser(app, username):
    from tests.runtime.test_screens import FormClient
    c = FormClient(app.test_client())
    assert c.post("/login", data={"username": username, "password": "secret-pass-1"}).status_code == 302
    c.get("/")
    return c


def test_customer_360_detail_lists_the_linked_records(world):
    """The customer detail screen is the 360 view: every record linking to the customer, by section."""
    from engine.runtime.app import create_app
    lm = world["loom"]
    cid = _customer(lm, world, "C600001", risk_level="C4")
    product = _product(lm, "R3")
    lm.records.create(f"{APP}.holding", {"customer": cid, "product": product["id"], "security_code": product["code"],
                                         "quantity": "1000", "as_of": "2026-11-30"}, SYSTEM)
    lm.records.create(f"{APP}.complaint", {"complaint_no": "TS-360", "customer": cid, "channel": "app",
                                           "business_line": "brokerage", "category": "fees", "description": "佣金",
                                           "received_at": "2026-11-30T02:00:00Z", "status": "closed",
                                           "closed_at": "2026-11-30T03:00:00Z"}, SYSTEM)
    lm.records.create(f"{APP}.interaction", {"customer": cid, "kind": "call", "occurred_at": "2026-11-30T02:00:00Z",
                                             "subject": "季度回访"}, SYSTEM)
    app = create_app(lm, {"TESTING": True})
    page = _browser(app, "adv").get(f"/r/{APP}/customer/{cid}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for entity in ("relationship", "capital_account", "securities_account", "holding", "trade", "transfer",
                   "assessment", "suitability", "agreement", "complaint", "interaction"):
        other = lm.model.entity(f"{APP}.{entity}")
        assert f"{other.title('zh-CN')} · {other.fields['customer'].title('zh-CN')}" in html, entity
    assert "TS-360" in html and "季度回访" in html
    # the other advisor cannot open it at all
    assert _browser(app, "adv2").get(f"/r/{APP}/customer/{cid}").status_code in (403, 404)


# -- rating adjustment and automations --------------------------------------------------------------------

def test_a_rating_adjustment_needs_compliance_approval(world):
    lm, c = world["loom"], world["clients"]
    cid = _customer(lm, world, "C500001", risk_level="C3")
    with Clock(lm, T0) as clock:
        for approve, expected in ((False, "C3"), (True, "C4")):
            r = c["adv"].post(f"/api/v1/processes/{APP}.rating_adjustment/start", json={"data": {"customer_id": cid}})
            assert r.status_code == 201, r.get_json()
            complete(c["adv"], task_of(c["adv"], "ra_request"), {"requested_risk_level": "C4",
                                                                  "rating_adjustment_reason": "新增金融资产证明"})
            assert lm.records.get(f"{APP}.customer", cid, SYSTEM)["risk_level"] == "C3"     # not before approval
            complete(c["comp"], task_of(c["comp"], "ra_approve"), {"rating_adjustment_approved": approve})
            clock.tick()
            assert lm.records.get(f"{APP}.customer", cid, SYSTEM)["risk_level"] == expected


def test_birthday_care_runs_daily_from_its_timer_cycle(world):
    lm = world["loom"]
    cid = _customer(lm, world, "C500002", risk_level="C3", birthday="1980-12-03")
    _customer(lm, world, "C500003", risk_level="C3", birthday="1980-12-04")
    with Clock(lm, datetime(2026, 12, 3, 0, 30, tzinfo=timezone.utc)) as clock:
        clock.tick(timedelta(seconds=1))          # schedules catch up to today
        with lm.db.connect() as conn:
            conn.execute(outbox.delete())
            conn.commit()
        clock.tick(timedelta(hours=1))            # 09:30 Beijing: today's run
        with lm.db.connect() as conn:
            sms = [r.payload for r in conn.execute(sa.select(outbox).where(outbox.c.channel == "sms"))]
    birthday = [p for p in sms if p.get("template") == "birthday"]
    assert len(birthday) == 1 and [x["customer"] for x in birthday[0]["customers"]] == [cid]



def _payloads(lm, template):
    with lm.db.connect() as conn:
        return [r.payload for r in conn.execute(sa.select(outbox)) if (r.payload or {}).get("template") == template]


def test_dormant_customers_and_expiring_agreements_get_their_reminders(world):
    lm = world["loom"]
    old = _customer(lm, world, "C500010", risk_level="C3", opened_on="2025-01-02")
    _customer(lm, world, "C500011", risk_level="C3", opened_on="2026-11-01")          # too new to be dormant
    lm.records.create(f"{APP}.agreement", {"customer": old, "agreement_type": "advisory", "signed_on": "2025-12-10",
                                           "expires_on": "2026-12-20", "status": "signed"}, SYSTEM)
    lm.records.create(f"{APP}.agreement", {"customer": old, "agreement_type": "margin", "signed_on": "2025-12-10",
                                           "expires_on": "2027-12-20", "status": "signed"}, SYSTEM)
    # Monday 7 December 2026, 02:00 UTC: the weekly reactivation and the daily renewal run (after catching up)
    with Clock(lm, datetime(2026, 12, 7, 1, 59, tzinfo=timezone.utc)) as clock:
        clock.tick(timedelta(seconds=1))
        with lm.db.connect() as conn:
            conn.execute(outbox.delete())
            conn.commit()
        clock.tick(timedelta(minutes=2))
    dormant = _payloads(lm, "reactivation")
    assert len(dormant) == 1 and [d["customer"] for d in dormant[0]["customers"]] == [old]
    renewal = _payloads(lm, "agreement_renewal")
    assert len(renewal) == 1 and [a["type"] for a in renewal[0]["agreements"]] == ["advisory"]
