"""Deterministic demo data for the securities CRM: `loom demo [--seed N] [--size small|large]`.

Plain Python (a data generator run by the CLI, not app logic). Every business row goes through
``loom.records.import_rows`` in batches -- validated, computed fields filled, audited -- and staff
logins and the org hierarchy through ``engine.security.users``. The same seed and ``as_of`` date
give the same data. Customers are scored with the bundle's own sandboxed questionnaire script, so
the demo cannot drift from the scoring rules.

AML and manipulation episodes are injected on purpose and labelled in ``episodes.json`` (written
to ``<instance>/demo/``) for the monitoring-rules engineers: which typology, which customers,
accounts, trades and transfers, and the time window.

THE DEMO LOGINS (advisor1, manager1, compliance1, ...; password ``demo1234``) ARE FOR THE DEMO ONLY.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

APP = "securities_crm"
DEMO_PASSWORD = "demo1234"
CST = timezone(timedelta(hours=8))

SIZES = {
    # customers, advisors per team, trades per active customer per year (mean), transfers per customer
    "small": {"customers": 300, "advisors_per_team": 2, "trades_per_customer": 14, "transfers_per_customer": 5,
              "complaints": 30, "interactions_per_customer": 2},
    "large": {"customers": 3000, "advisors_per_team": 5, "trades_per_customer": 95, "transfers_per_customer": 10,
              "complaints": 300, "interactions_per_customer": 3},
}

#: region codes (GB/T 2260) used for identity numbers, one list per branch city
REGIONS = {"BJ01": ["110101", "110102", "110105", "110108"], "SH01": ["310101", "310104", "310115", "310112"],
           "SZ01": ["440303", "440304", "440305", "440306"], "CD01": ["510104", "510105", "510107", "510108"]}
MOBILE_PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
                   "156", "157", "158", "159", "166", "177", "180", "181", "182", "183", "185", "186", "187",
                   "188", "189", "199"]
BANKS = [("中国工商银行", "622202"), ("中国建设银行", "621700"), ("招商银行", "622588"), ("中国银行", "621661"),
         ("交通银行", "622260"), ("中国农业银行", "622848")]
ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ID_CHECK = "10X98765432"
CENT = Decimal("0.01")


def id_check_char(first17: str) -> str:
    """GB 11643-1999 check character (the same rule as scripts/id_check.py)."""
    return ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS)) % 11]


def money(x) -> str:
    return str(Decimal(x).quantize(CENT, ROUND_HALF_UP))


def iso_dt(d: date, t: time) -> str:
    return datetime.combine(d, t, CST).isoformat()


@dataclass
class Ctx:
    loom: object
    actor: object
    rng: random.Random
    fake: object
    as_of: date
    size: str
    echo: object
    ids: dict = field(default_factory=dict)
    episodes: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    seq: dict = field(default_factory=dict)

    def next(self, name: str) -> int:
        self.seq[name] = self.seq.get(name, 0) + 1
        return self.seq[name]


# -- reading reference data (through the query layer) -----------------------------------------------

def read_all(loom, entity: str, actor) -> list[dict]:
    from engine.records.query import ListRequest
    ent = loom.model.entity(f"{APP}.{entity}")
    out, page = [], 1
    while True:
        res = loom.query.list(ent, actor, ListRequest(page=page, page_size=500, with_total=False))
        out.extend(res["items"])
        if not res.get("has_more"):
            return out
        page += 1


def has_data(loom) -> bool:
    """Whether the bundle's customer table already has rows (``loom demo --if-empty`` then does nothing)."""
    from engine.security import Actor
    if f"{APP}.customer" not in loom.model.entities:
        return False
    return count(loom, "customer", Actor.system("loom-demo")) > 0


def count(loom, entity: str, actor) -> int:
    from engine.records.query import ListRequest
    ent = loom.model.entity(f"{APP}.{entity}")
    return loom.query.list(ent, actor, ListRequest(page=1, page_size=1))["total"]


def bulk(ctx: Ctx, entity: str, rows: list[dict], batch_size: int = 1000) -> list[int]:
    """Import through the record service, with a progress line every few batches."""
    total = len(rows)
    if not total:
        return []
    step = max(batch_size * 10, total // 10)
    shown = {"next": step}

    def progress(n):
        if n >= shown["next"] and n < total:
            ctx.echo(f"    {entity}: {n:,}/{total:,}")
            shown["next"] += step
    result = ctx.loom.records.import_rows(f"{APP}.{entity}", list(enumerate(rows, start=1)), ctx.actor,
                                          batch_size=batch_size, progress=progress)
    ctx.counts[entity] = ctx.counts.get(entity, 0) + result.inserted
    ctx.echo(f"  {entity}: {result.inserted:,} rows")
    return result.ids


# -- the steps -------------------------------------------------------------------------------------

def make_org(ctx: Ctx, branches: list[dict], teams: list[dict]) -> dict:
    """Org units HQ > branch > team, staff logins and employee records."""
    import sqlalchemy as sa
    from engine.security.users import add_org_unit, create_user, org_units, users
    loom, rng, fake = ctx.loom, ctx.rng, ctx.fake
    cfg = SIZES[ctx.size]
    staff: list[dict] = []
    logins: list[tuple[str, str, str]] = []
    with loom.db.begin() as conn:
        def unit(code, name, kind, parent):
            found = conn.execute(sa.select(org_units.c.id).where(org_units.c.code == code)).scalar()
            return found if found is not None else add_org_unit(conn, code, name, kind, parent)
        taken = {r[0] for r in conn.execute(sa.select(users.c.username))}

        def user(username, display, role, org_unit):
            if username in taken:
                raise RuntimeError(f"user `{username}` already exists: run the demo on a fresh database")
            uid = create_user(conn, username, DEMO_PASSWORD, display_name=display, roles=[f"{APP}.{role}"],
                              org_unit_id=org_unit, locale="zh-CN")
            logins.append((username, role, display))
            return uid

        hq = unit("HQ", {"zh-CN": "总部", "en": "Headquarters"}, "hq", None)
        branch_units = {b["code"]: unit(b["code"], {"zh-CN": b["name"], "en": b["code"]}, "branch", hq) for b in branches}
        team_units = {t["code"]: unit(t["code"], {"zh-CN": t["name"], "en": t["code"]}, "team",
                                      branch_units[_branch_code(t, branches)]) for t in teams}
        n_adv = n_mgr = 0
        for b in branches:
            n_mgr += 1
            name = fake.name()
            uid = user(f"manager{n_mgr}", name, "branch_manager", branch_units[b["code"]])
            staff.append({"code": f"E{len(staff) + 1:04d}", "name": name, "title": "branch_manager", "branch": b["id"],
                          "user_id": uid, "username": f"manager{n_mgr}"})
            for t in [t for t in teams if t["branch"] == b["id"]]:
                for _ in range(cfg["advisors_per_team"]):
                    n_adv += 1
                    name = fake.name()
                    uid = user(f"advisor{n_adv}", name, "advisor", team_units[t["code"]])
                    staff.append({"code": f"E{len(staff) + 1:04d}", "name": name, "title": "advisor", "branch": b["id"],
                                  "team": t["id"], "user_id": uid, "username": f"advisor{n_adv}",
                                  "license_no": f"S{rng.randint(10**11, 10**12 - 1)}"})
        for username, title, role in (("compliance1", "compliance", "compliance"),
                                      ("operations1", "operations", "operations"), ("hq1", "hq_manager", "hq_manager")):
            name = fake.name()
            uid = user(username, name, role, hq)
            staff.append({"code": f"E{len(staff) + 1:04d}", "name": name, "title": title, "user_id": uid,
                          "username": username})
    for s in staff:
        s.update(mobile=mobile(rng), hire_date=(ctx.as_of - timedelta(days=rng.randint(200, 4000))).isoformat(),
                 email=f"{s['username']}@demo.example.com")
    for b in branches:
        ctx.loom.records.update(f"{APP}.branch", b["id"], {"org_unit_id": branch_units[b["code"]]}, ctx.actor)
    for t in teams:
        ctx.loom.records.update(f"{APP}.team", t["id"], {"org_unit_id": team_units[t["code"]]}, ctx.actor)
    ids = bulk(ctx, "employee", staff)
    for s, i in zip(staff, ids):
        s["id"] = i
    return {"staff": staff, "logins": logins}


def _branch_code(team: dict, branches: list[dict]) -> str:
    return next(b["code"] for b in branches if b["id"] == team["branch"])


def mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randint(0, 10**8 - 1):08d}"


def id_number(rng: random.Random, region: str, birthday: date, sex: str) -> str:
    seq = rng.randint(0, 99)
    last = rng.choice([1, 3, 5, 7, 9]) if sex == "M" else rng.choice([0, 2, 4, 6, 8])
    first17 = f"{region}{birthday:%Y%m%d}{seq:02d}{last}"
    return first17 + id_check_char(first17)


def uscc(rng: random.Random) -> str:
    chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    return "91" + "".join(rng.choice(chars) for _ in range(16))


class Scorer:
    """The bundle's questionnaire script, run in the sandbox, compiled once."""

    def __init__(self, loom, questionnaire: dict, bands: list[dict]):
        from engine.sandbox import compile_script
        src = (Path(__file__).resolve().parent.parent / "scripts" / "score_questionnaire.py").read_text("utf-8")
        self.code = compile_script(src, f"{APP}.score_questionnaire")
        self.questionnaire = questionnaire
        self.bands = bands

    def __call__(self, answers: dict, override_lowest: bool = False) -> dict:
        return self.code.execute({"questionnaire": self.questionnaire, "answers": answers, "bands": self.bands,
                                  "override_lowest": override_lowest})["result"]


class Matcher:
    """The bundle's suitability script, run in the sandbox, compiled once."""

    def __init__(self, matrix: list[dict], params: dict):
        from engine.sandbox import compile_script
        src = (Path(__file__).resolve().parent.parent / "scripts" / "suitability_match.py").read_text("utf-8")
        self.code = compile_script(src, f"{APP}.suitability_match")
        self.matrix = matrix
        self.params = {k: params.get(k) for k in ("expired_assessment_max_rating", "lowest_category_max_rating")}

    def __call__(self, customer: dict, product: dict, today: date) -> dict:
        keys = ("investor_class", "risk_level", "lowest_category", "assessment_expiry", "horizon", "varieties")
        return self.code.execute({"customer": {k: customer.get(k) for k in keys}, "product": product,
                                  "matrix": self.matrix, "today": today, "params": self.params})["result"]


def answers_for(rng: random.Random, questionnaire: dict, appetite: float, lowest: bool) -> dict:
    """Answers drawn around an 'appetite' in [0, 1]; ``lowest`` picks a lowest-category option."""
    out = {}
    for q in questionnaire["questions"]:
        opts = sorted([o for o in q["options"] if not o.get("forces_lowest")], key=lambda o: o["score"])
        idx = min(len(opts) - 1, max(0, int(round(appetite * (len(opts) - 1) + rng.uniform(-1.2, 1.2)))))
        out[q["code"]] = opts[idx]["value"]
    if lowest:
        q = next(q for q in questionnaire["questions"] if any(o.get("forces_lowest") for o in q["options"]))
        out[q["code"]] = next(o["value"] for o in q["options"] if o.get("forces_lowest"))
    return out


def make_customers(ctx: Ctx, staff: list[dict], branches: list[dict], scorer: Scorer, validity_days: int) -> list[dict]:
    rng, fake, as_of = ctx.rng, ctx.fake, ctx.as_of
    cfg = SIZES[ctx.size]
    advisors = [s for s in staff if s["title"] == "advisor"]
    branch_code = {b["id"]: b["code"] for b in branches}
    customers, assessments = [], []
    for i in range(cfg["customers"]):
        adv = advisors[i % len(advisors)] if i < len(advisors) else rng.choice(advisors)
        institution = rng.random() < 0.05
        appetite = rng.betavariate(2.2, 2.2)
        lowest = (not institution) and rng.random() < 0.025
        opened = as_of - timedelta(days=rng.randint(30, 3650))
        c = {"customer_no": f"C{100000 + i + 1}", "customer_type": "institution" if institution else "individual",
             "advisor": adv["id"], "advisor_user": adv["user_id"], "branch": adv["branch"], "team": adv.get("team"),
             "status": "active", "opened_on": opened.isoformat(), "aml_risk": rng.choices(["low", "medium", "high"], [85, 12, 3])[0],
             "address": fake.address()[:200], "nationality": "CHN"}
        if institution:
            c.update(name=fake.company(), id_type="uscc", id_number=uscc(rng), legal_rep=fake.name(),
                     net_assets=money(rng.uniform(5e6, 5e8)), industry=rng.choice(["制造业", "信息技术", "批发零售", "房地产", "金融"]),
                     investor_class=rng.choice(["ordinary", "professional_b", "professional_a"]),
                     mobile=mobile(rng))
            c["annual_income"] = money(Decimal(c["net_assets"]) * Decimal("0.1"))
        else:
            sex = rng.choice("MF")
            age = rng.randint(20, 78)
            birthday = date(as_of.year - age, rng.randint(1, 12), rng.randint(1, 28))
            name = fake.name_male() if sex == "M" else fake.name_female()
            income = rng.choice([60_000, 120_000, 200_000, 350_000, 600_000, 1_200_000]) * rng.uniform(0.8, 1.3)
            assets = income * rng.uniform(0.5, 12)
            c.update(name=name, gender=sex, birthday=birthday.isoformat(), id_type="id_card",
                     id_number=id_number(rng, rng.choice(REGIONS[branch_code[adv["branch"]]]), birthday, sex),
                     id_expiry=(as_of + timedelta(days=rng.randint(100, 7000))).isoformat(),
                     mobile=mobile(rng), email=f"c{100000 + i + 1}@example.com",
                     occupation=("retired" if age >= 60 else rng.choice(["enterprise_staff", "professional", "business_owner",
                                                                         "civil_servant", "freelancer", "finance_professional"])),
                     education=rng.choice(["secondary", "college", "bachelor", "bachelor", "master"]),
                     annual_income=money(income), financial_assets=money(assets),
                     investment_years=rng.randint(0, min(30, age - 18)),
                     investor_class="professional_c" if assets > 3_000_000 and rng.random() < 0.3 else "ordinary",
                     horizon=rng.choice(["short", "medium", "long"]),
                     varieties=sorted(rng.sample(["cash", "fixed_income", "equity", "hybrid", "derivatives", "alternatives"],
                                                 rng.randint(1, 4))),
                     objective=rng.choice(["preservation", "income", "growth", "speculation"]))
        if opened > as_of - timedelta(days=60):
            c["tags"] = ["new"]
        # the risk assessment, scored by the bundle's script
        assessed = max(opened, as_of - timedelta(days=rng.randint(0, 900)))
        scored = scorer(answers_for(rng, scorer.questionnaire, appetite, lowest))
        expiry = assessed + timedelta(days=validity_days)
        c.update(risk_level=scored["risk_level"], lowest_category=scored["lowest_category"],
                 assessment_date=assessed.isoformat(), assessment_expiry=expiry.isoformat())
        customers.append(c)
        assessments.append({"questionnaire_version": scored["questionnaire_version"], "answers": scored["answers"],
                            "score": scored["score"], "lowest_category": scored["lowest_category"],
                            "risk_level": scored["risk_level"], "assessed_on": assessed.isoformat(),
                            "validity_days": validity_days, "channel": rng.choice(["app", "counter", "web"]),
                            "assessed_by": adv["id"]})
    ids = bulk(ctx, "customer", customers)
    for c, i in zip(customers, ids):
        c["id"] = i
    q_id = scorer.questionnaire["id"]
    for c, a in zip(customers, assessments):
        a.update(customer=c["id"], questionnaire=q_id)
    bulk(ctx, "assessment", assessments)
    return customers


def make_accounts(ctx: Ctx, customers: list[dict]) -> None:
    rng, as_of = ctx.rng, ctx.as_of
    caps, secs = [], []
    for c in customers:
        bank, bin_ = rng.choice(BANKS)
        c["bank_card"] = bin_ + f"{rng.randint(0, 10**13 - 1):013d}"
        c["bank_name"] = bank
        c["device_id"] = f"DEV-{rng.getrandbits(48):012x}"
        caps.append({"account_no": f"1{ctx.next('cap'):09d}", "customer": c["id"], "currency": "CNY", "bank_name": bank,
                     "bank_card": c["bank_card"], "bank_card_holder": c["name"], "status": "active",
                     "opened_on": c["opened_on"], "balance": money(rng.uniform(1_000, 500_000)),
                     "margin_enabled": rng.random() < 0.08, "device_id": c["device_id"]})
    cap_ids = bulk(ctx, "capital_account", caps)
    for c, cap_id, cap in zip(customers, cap_ids, caps):
        c["capital_account"] = cap_id
        c["capital_account_no"] = cap["account_no"]
        boards = ["main"]
        years = (as_of - date.fromisoformat(c["opened_on"])).days / 365
        if years > 2 and rng.random() < 0.5:
            boards.append("chinext")
        if years > 2 and rng.random() < 0.25:
            boards.append("star")
        if rng.random() < 0.1:
            boards.append("hk_connect")
        c["boards"] = boards
        for market, prefix in (("SH", "A"), ("SZ", "0")):
            secs.append({"account_no": f"{prefix}{ctx.next('sec' + market):09d}", "customer": c["id"],
                         "capital_account": cap_id, "market": market, "status": "active", "opened_on": c["opened_on"],
                         "boards": boards})
    sec_ids = bulk(ctx, "securities_account", secs)
    for i, c in enumerate(customers):
        c["sec_SH"], c["sec_SZ"] = sec_ids[2 * i], sec_ids[2 * i + 1]
        c["sec_no_SH"], c["sec_no_SZ"] = secs[2 * i]["account_no"], secs[2 * i + 1]["account_no"]


def trading_days(start: date, end: date, closed: set[date]) -> list[date]:
    out, d = [], start
    while d <= end:
        if d.weekday() < 5 and d not in closed:
            out.append(d)
        d += timedelta(days=1)
    return out


def price_paths(rng: random.Random, products: list[dict], days: list[date]) -> dict:
    """A seeded random walk of closing prices per tradable security."""
    paths = {}
    for p in products:
        price = float(p.get("reference_price") or 10)
        series = {}
        for d in days:
            price = max(0.01, price * (1 + rng.gauss(0.0002, 0.018)))
            series[d] = price
        paths[p["code"]] = series
    return paths


def trade_time(rng: random.Random, d: date, late: bool = False) -> str:
    if late:
        minute = rng.randint(50 * 60, 59 * 60 + 50)      # 14:50:00-14:59:50
        return iso_dt(d, time(14, minute // 60, minute % 60))
    secs = rng.randint(0, 4 * 3600 - 1)
    base = 9 * 3600 + 30 * 60 + secs if secs < 2 * 3600 else 13 * 3600 + secs - 2 * 3600
    return iso_dt(d, time(base // 3600, (base // 60) % 60, base % 60))


class TradeBook:
    """Collects trades and transfers, tracking positions so sells never exceed holdings."""

    def __init__(self, ctx: Ctx, products: dict, paths: dict):
        self.ctx, self.products, self.paths = ctx, products, paths
        self.trades: list[dict] = []
        self.transfers: list[dict] = []
        self.positions: dict = {}     # (customer id, code) -> [qty, cost]

    def price(self, code: str, d: date, bump: float = 0.0) -> Decimal:
        return Decimal(str(self.paths[code][d] * (1 + bump))).quantize(Decimal("0.01"))

    def trade(self, c: dict, code: str, side: str, qty: int, d: date, *, when: str | None = None,
              price: Decimal | None = None, channel: str | None = None, counter: str | None = None,
              device: str | None = None) -> str:
        rng = self.ctx.rng
        p = self.products[code]
        price = price if price is not None else self.price(code, d, rng.uniform(-0.004, 0.004))
        market = "SH" if code.startswith(("6", "5", "2", "0195")) else "SZ"
        amount = price * qty
        no = f"T{d:%Y%m%d}{self.ctx.next('trade'):08d}"
        row = {"trade_no": no, "customer": c["id"], "securities_account": c[f"sec_{market}"], "product": p["id"],
               "security_code": code, "side": side, "quantity": qty, "price": str(price),
               "commission": money(max(Decimal(5), amount * Decimal("0.00025"))), "trade_time": when or trade_time(rng, d),
               "channel": channel or rng.choice(["app", "app", "app", "pc", "phone"]),
               "device_id": device or c["device_id"], "ip_address": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"}
        if counter:
            row["counter_account"] = counter
        self.trades.append(row)
        pos = self.positions.setdefault((c["id"], code), [0, Decimal(0)])
        if side == "buy":
            pos[1] = (pos[1] * pos[0] + amount) / (pos[0] + qty)
            pos[0] += qty
        else:
            pos[0] -= qty
        return no

    def transfer(self, c: dict, direction: str, amount, d: date, *, kind: str = "bank_transfer",
                 counterparty: tuple[str, str] | None = None, when: str | None = None) -> str:
        rng = self.ctx.rng
        no = f"F{d:%Y%m%d}{self.ctx.next('transfer'):08d}"
        name, account = counterparty or (c["name"], c["bank_card"])
        self.transfers.append({
            "transfer_no": no, "customer": c["id"], "capital_account": c["capital_account"], "direction": direction,
            "kind": kind, "amount": money(amount), "currency": "CNY",
            "transfer_time": when or iso_dt(d, time(rng.randint(9, 15), rng.randint(0, 59), rng.randint(0, 59))),
            "counterparty_name": name, "counterparty_account": account, "counterparty_bank": c["bank_name"],
            "same_name": counterparty is None, "channel": "counter" if kind == "cash" else rng.choice(["app", "bank"]),
            "device_id": c["device_id"]})
        return no


def allowed_codes(c: dict, products: list[dict]) -> list[str]:
    boards = set(c.get("boards") or ["main"])
    out = []
    for p in products:
        if p["product_type"] not in {"stock", "etf", "gold", "convertible"}:
            continue
        if p.get("board") not in boards:
            continue
        out.append(p["code"])
    return out


def make_activity(ctx: Ctx, customers: list[dict], products: list[dict], days: list[date], book: TradeBook,
                  reserved: set[int]) -> None:
    """Ordinary trading and transfers for everybody not reserved for an episode."""
    rng = ctx.rng
    cfg = SIZES[ctx.size]
    for c in customers:
        if c["id"] in reserved:
            continue
        # opening deposit, then a few transfers in and out during the year
        book.transfer(c, "in", rng.uniform(20_000, 400_000), days[0])
        for _ in range(max(0, int(rng.gauss(cfg["transfers_per_customer"], 2)))):
            book.transfer(c, rng.choice(["in", "in", "out"]), rng.uniform(2_000, 150_000), rng.choice(days))
        if rng.random() < 0.2:      # some customers never trade: dormant candidates
            continue
        codes = allowed_codes(c, products)
        n = max(1, int(rng.expovariate(1 / cfg["trades_per_customer"])))
        for d in sorted(rng.choice(days) for _ in range(n)):
            code = rng.choice(codes)
            held = book.positions.get((c["id"], code), [0])[0]
            if held >= 100 and rng.random() < 0.45:
                qty = max(100, (rng.randint(1, max(1, held // 100))) * 100)
                book.trade(c, code, "sell", min(qty, held), d)
            else:
                price = book.paths[code][d]
                lots = max(1, int(rng.uniform(5_000, 120_000) / (price * 100)))
                book.trade(c, code, "buy", lots * 100, d)


# -- episodes (injected, labelled) -------------------------------------------------------------------

def label(ctx: Ctx, typology: str, title: str, customers: list[dict], start: date, end: date, *,
          trades=(), transfers=(), expected_rule: str | None = None, notes: str = "") -> None:
    ctx.episodes.append({
        "id": f"EP{len(ctx.episodes) + 1:03d}", "typology": typology, "title": title,
        "expected_rule": expected_rule or typology,
        "customers": [c["customer_no"] for c in customers], "customer_ids": [c["id"] for c in customers],
        "capital_accounts": [c["capital_account_no"] for c in customers],
        "trades": list(trades), "transfers": list(transfers),
        "window": [start.isoformat(), end.isoformat()], "notes": notes})


def inject_episodes(ctx: Ctx, pool: list[dict], days: list[date], book: TradeBook, thresholds: dict) -> None:
    rng = ctx.rng
    cash_limit = Decimal(thresholds.get("0501", "50000"))
    late = days[-40:]
    it = iter(pool)

    # S1 structuring: 4 cash deposits in 8 days, each 90-100% of the 0501 threshold
    c = next(it)
    d0 = late[5]
    nos = [book.transfer(c, "in", cash_limit * Decimal(str(rng.uniform(0.905, 0.995))), late[5 + k * 2], kind="cash")
           for k in range(4)]
    label(ctx, "S1", "拆分现金存入规避大额报告 / cash structuring", [c], d0, late[11], transfers=nos)

    # S2 pass-through: 800k in, 90% out two days later, almost no trading
    c = next(it)
    a = book.transfer(c, "in", Decimal("800000"), late[10])
    b = book.transfer(c, "out", Decimal("720000"), late[12])
    label(ctx, "S2", "资金快进快出 / pass-through", [c], late[10], late[12], transfers=[a, b])

    # S3 dormant account with active cash: no trades all year, 6 transfers totalling ~330k in 20 days
    c = next(it)
    book.transfer(c, "in", Decimal("30000"), days[0])
    nos = [book.transfer(c, rng.choice(["in", "out"]), Decimal(rng.randint(45_000, 65_000)), late[15 + k * 3])
           for k in range(6)]
    label(ctx, "S3", "休眠账户资金活跃 / dormant account, active cash", [c], late[15], late[30], transfers=nos)

    # S4 dormant account suddenly trades: nothing for the year, then heavy buying in 5 days
    c = next(it)
    book.transfer(c, "in", Decimal("2500000"), late[20])
    nos = []
    for k in range(5):
        nos.append(book.trade(c, "600519", "buy", 300, late[21 + k]))
    label(ctx, "S4", "休眠账户突然大额交易 / dormant account suddenly trades", [c], late[20], late[25], trades=nos)

    # S6 fan-in then fan-out: 6 different payers in 5 days, then 5 different payees (also S7: not same-name)
    c = next(it)
    ins = [book.transfer(c, "in", Decimal(rng.randint(60_000, 150_000)), late[2 + k % 5],
                         counterparty=(ctx.fake.name(), f"6230{rng.randint(10**11, 10**12 - 1)}")) for k in range(6)]
    outs = [book.transfer(c, "out", Decimal(rng.randint(50_000, 120_000)), late[8 + k % 4],
                          counterparty=(ctx.fake.name(), f"6231{rng.randint(10**11, 10**12 - 1)}")) for k in range(5)]
    label(ctx, "S6", "分散转入集中转出 / fan-in, fan-out", [c], late[2], late[12], transfers=ins + outs,
          notes="counterparties are not same-name accounts: also S7")

    # S8 profile mismatch: declared income small, 30-day inflow far above 5 x income / 12
    c = next(it)
    income = Decimal(c.get("annual_income") or "60000")
    total = income / 12 * 5 * Decimal("2.5")
    nos = [book.transfer(c, "in", total / 3, late[20 + k * 4]) for k in range(3)]
    label(ctx, "S8", "资金规模与身份不符 / profile mismatch", [c], late[20], late[28], transfers=nos,
          notes=f"declared annual income {income}")

    # wash trades among linked accounts: three customers share a mobile, a device and a bank card
    group = [next(it), next(it), next(it)]
    shared_mobile, shared_device, shared_card = group[0]["mobile"], "DEV-LINKED-0001", group[0]["bank_card"]
    for g in group:
        g["mobile"], g["device_id"], g["bank_card"] = shared_mobile, shared_device, shared_card
        book.transfer(g, "in", Decimal("3000000"), late[0])
    code = "601899"
    nos = []
    for k in range(6):
        d = late[3 + k]
        qty = 300_000 + 10_000 * k
        px = book.price(code, d)
        when = trade_time(rng, d)
        seller, buyer = group[k % 3], group[(k + 1) % 3]
        if book.positions.get((seller["id"], code), [0])[0] < qty:
            nos.append(book.trade(seller, code, "buy", qty, late[1], device=shared_device))
        nos.append(book.trade(buyer, code, "buy", qty, d, when=when, price=px, counter=seller["sec_no_SH"],
                              device=shared_device))
        nos.append(book.trade(seller, code, "sell", qty, d, when=when, price=px, counter=buyer["sec_no_SH"],
                              device=shared_device))
    label(ctx, "WASH", "关联账户对倒 / wash trades among linked accounts", group, late[1], late[8], trades=nos,
          expected_rule="wash_trade", notes="same mobile, device and bank card across the three customers")

    # marking the close: buys after 14:50 at +2% over the last price, sold the next morning
    c = next(it)
    book.transfer(c, "in", Decimal("1500000"), late[10])
    code = "000858"
    nos = []
    for k in range(4):
        d, nxt = late[12 + 2 * k], late[13 + 2 * k]
        nos.append(book.trade(c, code, "buy", 2000, d, when=trade_time(rng, d, late=True), price=book.price(code, d, 0.021)))
        nos.append(book.trade(c, code, "sell", 2000, nxt))
    label(ctx, "MARKING_CLOSE", "尾市拉抬 / marking the close", [c], late[12], late[19], trades=nos,
          expected_rule="marking_the_close")

    # churning: the most conservative remaining customer's account turned over far beyond 6x a year
    levels = {"C1": 1, "C2": 2, "C3": 3, "C4": 4, "C5": 5}
    c = min(it, key=lambda x: (levels.get(x["risk_level"], 9), x["id"]))
    c_equity = Decimal("300000")
    book.transfer(c, "in", c_equity, days[0])
    nos = []
    code = "600036"
    for d in days[5::3][:70]:
        qty = 7000
        nos.append(book.trade(c, code, "buy", qty, d))
        nos.append(book.trade(c, code, "sell", qty, d + timedelta(days=0)))
    label(ctx, "CHURNING", "过度交易 / churning", [c], days[5], days[-1], trades=nos, expected_rule="churning",
          notes=f"equity about {c_equity}; turnover far above 6x")


def make_holdings(ctx: Ctx, customers: list[dict], book: TradeBook, products: dict, last_day: date) -> None:
    rows = []
    by_id = {c["id"]: c for c in customers}
    for (cid, code), (qty, cost) in sorted(book.positions.items()):
        if qty <= 0:
            continue
        c = by_id[cid]
        market = "SH" if code.startswith(("6", "5", "2", "0195")) else "SZ"
        rows.append({"customer": cid, "securities_account": c[f"sec_{market}"], "product": products[code]["id"],
                     "security_code": code, "quantity": str(qty), "cost_price": str(cost.quantize(Decimal("0.0001"))),
                     "market_price": str(book.price(code, last_day)), "as_of": last_day.isoformat()})
    bulk(ctx, "holding", rows)


def set_aum(ctx: Ctx, customers: list[dict], book: TradeBook, last_day: date) -> None:
    """Customer AUM = net transfers in + market value of holdings (never below zero), one transaction."""
    net: dict = {}
    for t in book.transfers:
        sign = 1 if t["direction"] == "in" else -1
        net[t["customer"]] = net.get(t["customer"], Decimal(0)) + sign * Decimal(t["amount"])
    for t in book.trades:
        amount = Decimal(t["price"]) * t["quantity"] + Decimal(t["commission"]) * (1 if t["side"] == "buy" else -1)
        net[t["customer"]] = net.get(t["customer"], Decimal(0)) + (-amount if t["side"] == "buy" else amount)
    for (cid, code), (qty, _) in book.positions.items():
        if qty > 0:
            net[cid] = net.get(cid, Decimal(0)) + book.price(code, last_day) * qty
    with ctx.loom.records.unit() as uow:
        for c in customers:
            ctx.loom.records.update(f"{APP}.customer", c["id"], {"aum": money(max(Decimal(0), net.get(c["id"], Decimal(0))))},
                                    ctx.actor, uow=uow)
    ctx.echo(f"  customer AUM: {len(customers):,} updated")


def add_working_days(d: date, n: int, closed: set[date], workdays: set[date]) -> date:
    while n > 0:
        d += timedelta(days=1)
        if (d.weekday() < 5 and d not in closed) or d in workdays:
            n -= 1
    return d


def make_service(ctx: Ctx, customers: list[dict], staff: list[dict], products: list[dict], days: list[date],
                 closed: set[date], workdays: set[date], sla: dict, matcher) -> None:
    """Complaints, interactions, agreements, suitability records, relationships, campaigns."""
    rng, fake, as_of = ctx.rng, ctx.fake, ctx.as_of
    cfg = SIZES[ctx.size]
    advisors = {s["id"]: s for s in staff}
    compliance = next(s for s in staff if s["title"] == "compliance")
    # complaints (some are 12386 referrals; some recent ones still open)
    rows = []
    for k in range(cfg["complaints"]):
        c = rng.choice(customers)
        d = days[int(len(days) * (k + 1) / (cfg["complaints"] + 1))]
        received = datetime.combine(d, time(rng.randint(9, 16), rng.randint(0, 59)), CST)
        channel = rng.choices(["phone", "counter", "app", "csrc_12386", "email"], [30, 15, 25, 20, 10])[0]
        category = rng.choice(["sales_misconduct", "suitability", "service_attitude", "fees", "system_failure",
                               "account_operation"])
        complexity = "complex" if rng.random() < 0.15 else "ordinary"
        respond_due = (received.date() + timedelta(days=sla.get("RESPOND-COMPLEX", 60)) if complexity == "complex"
                       else add_working_days(received.date(), sla.get("RESPOND-ORDINARY", 15), closed, workdays))
        age = (as_of - d).days
        status = ("closed" if age > 40 else rng.choice(["acknowledged", "assigned", "investigating", "responded"])
                  if age > 3 else "registered")
        row = {"complaint_no": f"TS{d:%Y%m%d}{k + 1:04d}", "customer": c["id"], "complainant_name": c["name"],
               "complainant_phone": c["mobile"], "request_type": "complaint", "channel": channel,
               "business_line": rng.choice(["brokerage", "wealth", "advisory", "it"]), "category": category,
               "complexity": complexity, "importance": rng.choice(["normal", "normal", "important"]),
               "description": rng.choice(["客户反映投顾推荐产品时未充分揭示风险。", "客户对佣金收取标准有异议。",
                                          "交易系统登录缓慢导致未能及时下单。", "客户反映营业部服务态度不佳。",
                                          "客户认为所购产品风险等级与其风险承受能力不匹配。"]),
               "received_at": received.isoformat(),
               "ack_due": add_working_days(received.date(), sla.get("ACKNOWLEDGE", 1), closed, workdays).isoformat(),
               "assign_due": add_working_days(received.date(), sla.get("ASSIGN", 2), closed, workdays).isoformat(),
               "respond_due": respond_due.isoformat(), "status": status, "assigned_to": c["advisor"],
               "branch": c["branch"]}
        if channel == "csrc_12386":
            row["platform_ref"] = f"12386-{d:%Y%m%d}-{rng.randint(1000, 9999)}"
            row["platform_due_date"] = add_working_days(received.date(), 15, closed, workdays).isoformat()
        if category in ("sales_misconduct", "suitability"):
            row["assigned_to"] = compliance["id"]
        if status == "closed":
            row.update(resolution="已核实并向客户答复处理意见。", reasonable=rng.choice(["reasonable", "partly", "unreasonable"]),
                       satisfaction=rng.choice(["satisfied", "satisfied", "neutral", "dissatisfied"]),
                       responded_at=(received + timedelta(days=rng.randint(2, 12))).isoformat(),
                       closed_at=(received + timedelta(days=rng.randint(13, 30))).isoformat())
        rows.append(row)
    bulk(ctx, "complaint", rows)
    # interactions
    rows = []
    for c in customers:
        for _ in range(cfg["interactions_per_customer"]):
            d = rng.choice(days)
            rows.append({"customer": c["id"], "employee": c["advisor"], "kind": rng.choice(["call", "wechat", "visit", "sms"]),
                         "purpose": rng.choice(["service", "service", "marketing", "annual_callback", "birthday"]),
                         "occurred_at": iso_dt(d, time(rng.randint(9, 18), rng.randint(0, 59))),
                         "subject": rng.choice(["市场观点交流", "产品到期提醒", "资产配置建议", "年度回访", "生日问候"]),
                         "outcome": rng.choice(["reached", "reached", "no_answer", "interested"])})
    bulk(ctx, "interaction", rows)
    # agreements
    rows = []
    for c in customers:
        for t in ("brokerage", "risk_disclosure", "third_party_custody"):
            rows.append({"customer": c["id"], "agreement_type": t, "version_label": "2024版", "status": "signed",
                         "signed_on": c["opened_on"], "signature_ref": f"CA-{rng.getrandbits(40):010x}"})
        if "star" in c.get("boards", []):
            rows.append({"customer": c["id"], "agreement_type": "star_market", "version_label": "2023版", "status": "signed",
                         "signed_on": c["opened_on"]})
    bulk(ctx, "agreement", rows)
    # relationships: households and insiders
    rows = []
    individuals = [c for c in customers if c["customer_type"] == "individual"]
    institutions = [c for c in customers if c["customer_type"] == "institution"]
    for k in range(0, min(len(individuals) - 1, len(individuals) // 5 * 2), 2):
        a, b = individuals[k], individuals[k + 1]
        hh = f"H{k // 2 + 1:05d}"
        rows.append({"customer": a["id"], "relation_type": "spouse", "related_customer": b["id"], "household_code": hh})
        rows.append({"customer": b["id"], "relation_type": "spouse", "related_customer": a["id"], "household_code": hh})
    for k, inst in enumerate(institutions):
        person = individuals[(k * 7) % len(individuals)]
        rows.append({"customer": person["id"], "relation_type": "related_company", "related_customer": inst["id"],
                     "is_director": k % 2 == 0, "is_senior_manager": k % 3 == 0, "is_supervisor": k % 5 == 0,
                     "share_pct": str(rng.choice([0, 2, 6, 30]))})
    for k in range(len(individuals) // 20):
        p = individuals[(k * 11 + 3) % len(individuals)]
        rows.append({"customer": p["id"], "relation_type": "employer", "related_name": rng.choice(["贵州茅台", "招商银行", "美的集团"]),
                     "related_company_code": rng.choice(["600519", "600036", "000333"]), "is_senior_manager": True})
    bulk(ctx, "relationship", rows)
    # suitability records for R3+ purchase requests, matched by the bundle's own script
    rows = []
    rated = [p for p in products if p["risk_rating"] in ("R3", "R4", "R5")]
    for c in rng.sample(customers, min(len(customers), cfg["customers"] // 3)):
        p = rng.choice(rated)
        when = datetime.combine(rng.choice(days), time(10, 30), CST)
        m = matcher(c, p, when.date())
        row = {"customer": c["id"], "product": p["id"], "customer_level": m["customer_level"],
               "product_rating": p["risk_rating"], "result": m["result"], "warning_required": m["warning_required"],
               "matched_at": when.isoformat(), "advisor": c["advisor"], "amount": money(rng.uniform(10_000, 300_000)),
               "trigger": "purchase", "reasons": m["reasons"]}
        if m["result"] == "warn" and rng.random() < 0.8:
            row.update(warning_signed=True, signature_time=(when + timedelta(minutes=5)).isoformat(),
                       signature_ref=f"SRW-{rng.getrandbits(32):08x}")
        rows.append(row)
    bulk(ctx, "suitability", rows)
    # campaigns
    prods = {p["code"]: p for p in products}
    rows = [
        {"code": "MKT2026-01", "name": "稳健理财季（收益凭证）", "objective": "product_sales", "product": prods["SN0001"]["id"],
         "max_product_rating": "R2", "channels": ["sms", "app"], "status": "running",
         "start_on": (as_of - timedelta(days=20)).isoformat(), "end_on": (as_of + timedelta(days=40)).isoformat(),
         "segment": {"risk_level__in": ["C2", "C3", "C4", "C5"], "aum__gte": 50000}, "budget": "50000.00"},
        {"code": "MKT2026-02", "name": "休眠客户唤醒", "objective": "reactivation", "channels": ["call", "wechat"],
         "status": "approved", "start_on": as_of.isoformat(), "end_on": (as_of + timedelta(days=30)).isoformat(),
         "segment": {"tags__contains": "dormant"}},
        {"code": "MKT2026-03", "name": "沪深300ETF定投推广", "objective": "aum_growth", "product": prods["510300"]["id"],
         "max_product_rating": "R3", "channels": ["app", "email"], "status": "finished",
         "start_on": (as_of - timedelta(days=120)).isoformat(), "end_on": (as_of - timedelta(days=60)).isoformat(),
         "targeted": 1200, "responded": 86, "aum_uplift": "3250000.00"},
    ]
    ids = bulk(ctx, "campaign", rows)
    # a bulk import starts no processes: start the ones saving these campaigns on a screen would
    # (build the segment, or launch a running campaign); they run on the scheduler a second later
    for cid, row in zip(ids, rows):
        proc = {"running": "campaign_launch", "approved": "campaign_segment"}.get(row["status"])
        if proc and row.get("segment"):
            ctx.loom.workflow.start(f"{APP}.{proc}", ctx.actor, {"campaign_id": cid}, subject=(f"{APP}.campaign", cid))
            ctx.echo(f"  campaign {row['code']}: {proc} started")


# -- entry point -----------------------------------------------------------------------------------

def run(loom, *, seed: int = 42, size: str = "small", as_of: date | None = None, echo=print,
        out_dir: str | Path | None = None) -> dict:
    """Generate the demo data set; returns a summary (counts, logins, episodes file)."""
    from faker import Faker

    from engine.security import Actor
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, not {size!r}")
    as_of = as_of or date.today()
    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    actor = Actor.system("loom-demo")
    ctx = Ctx(loom=loom, actor=actor, rng=rng, fake=fake, as_of=as_of, size=size, echo=echo)
    if count(loom, "customer", actor):
        raise RuntimeError("the customer table already has rows: the demo needs a fresh database")
    return _generate(ctx, seed, size, as_of, echo, out_dir)


def _generate(ctx: Ctx, seed: int, size: str, as_of: date, echo, out_dir) -> dict:
    loom, actor, rng = ctx.loom, ctx.actor, ctx.rng
    echo(f"generating the {size} demo data set (seed {seed}, as of {as_of})")
    branches = sorted(read_all(loom, "branch", actor), key=lambda r: r["code"])
    teams = sorted(read_all(loom, "team", actor), key=lambda r: r["code"])
    products = sorted(read_all(loom, "product", actor), key=lambda r: r["code"])
    params = {p["code"]: p["value"] for p in read_all(loom, "parameter", actor)}
    bands = read_all(loom, "risk_band", actor)
    thresholds = {t["code"]: t["cny_threshold"] for t in read_all(loom, "aml_threshold", actor)}
    sla = {s["code"]: s.get("working_days") or s.get("calendar_days") for s in read_all(loom, "complaint_sla", actor)}
    holidays = read_all(loom, "holiday", actor)
    questionnaire = next(q for q in read_all(loom, "questionnaire", actor) if q["status"] == "active"
                         and q["investor_type"] == "individual")
    questionnaire = loom.records.get(f"{APP}.questionnaire", questionnaire["id"], actor)
    closed = {date.fromisoformat(h["day"]) for h in holidays if h["kind"] == "holiday"}
    workdays = {date.fromisoformat(h["day"]) for h in holidays if h["kind"] == "workday"}
    if not branches or not products:
        raise RuntimeError("the bundle's reference data is missing: install apps/securities_crm first")

    org = make_org(ctx, branches, teams)
    scorer = Scorer(loom, questionnaire, bands)
    customers = make_customers(ctx, org["staff"], branches, scorer, int(params.get("assessment_validity_days", 730)))
    make_accounts(ctx, customers)

    days = trading_days(as_of - timedelta(days=365), as_of - timedelta(days=1), closed)
    tradable = [p for p in products if p["product_type"] in {"stock", "etf", "gold", "convertible"}]
    book = TradeBook(ctx, {p["code"]: p for p in products}, price_paths(rng, tradable, days))
    # episode customers: ordinary individuals picked deterministically, kept out of ordinary trading
    pool = [c for c in customers if c["customer_type"] == "individual" and not c.get("lowest_category")]
    pool = rng.sample(pool, 12)
    make_activity(ctx, customers, products, days, book, {c["id"] for c in pool})
    inject_episodes(ctx, pool, days, book, thresholds)
    # customer fields changed by episodes (shared mobiles for linked accounts)
    linked = [c for c in pool if c["device_id"] == "DEV-LINKED-0001"]
    for c in linked:
        loom.records.update(f"{APP}.customer", c["id"], {"mobile": c["mobile"]}, actor)
        loom.records.update(f"{APP}.capital_account", c["capital_account"],
                            {"bank_card": c["bank_card"], "device_id": c["device_id"]}, actor)
    echo(f"  writing {len(book.trades):,} trades and {len(book.transfers):,} transfers")
    book.transfers.sort(key=lambda r: r["transfer_time"])
    bulk(ctx, "transfer", book.transfers, batch_size=2000)
    book.trades.sort(key=lambda r: r["trade_time"])
    bulk(ctx, "trade", book.trades, batch_size=2000)
    make_holdings(ctx, customers, book, {p["code"]: p for p in products}, days[-1])
    make_service(ctx, customers, org["staff"], products, days, closed, workdays, sla,
                 Matcher(read_all(loom, "suitability_rule", actor), params))
    set_aum(ctx, customers, book, days[-1])

    episodes_file = None
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        episodes_file = out / "episodes.json"
        episodes_file.write_text(json.dumps({"seed": seed, "size": size, "as_of": as_of.isoformat(),
                                             "episodes": ctx.episodes}, ensure_ascii=False, indent=2), "utf-8")
    return {"seed": seed, "size": size, "as_of": as_of.isoformat(), "counts": dict(ctx.counts),
            "logins": org["logins"], "password": DEMO_PASSWORD, "episodes": ctx.episodes,
            "episodes_file": str(episodes_file) if episodes_file else None}
