"""The `secure` fixture bundle installed with an org tree, one user per role and a few records.

HQ
├── B1 (branch)  ── T1 (team): adv1      ── T2 (team): adv2        mgr1 sits on B1 itself
└── B2 (branch)  ── T3 (team): adv3
comp (compliance) and root (bundle admin role) sit at HQ; sysadmin is a system administrator.

c1 (adv1), c2 (adv2, co-advisor adv1), c3 (adv3); one account per customer, one trade per account.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.security import Actor
from engine.security.users import add_org_unit, create_user

BUNDLE = "secure"
PASSWORD = "Correct-Horse-9"

ID_NUMBERS = {"c1": "110101199003071234", "c2": "310101198512125678", "c3": "440301197701019876"}
MOBILES = {"c1": "13812345678", "c2": "13987654321", "c3": "13700001111"}
CARDS = {"c1": "6222021234567890123", "c2": "6222029876543210987", "c3": "6222020000111122223"}
NOTES = {"c1": "secret-note-c1", "c2": "secret-note-c2", "c3": "secret-note-c3"}


@dataclass
class World:
    loom: object
    users: dict = field(default_factory=dict)        # username -> id
    units: dict = field(default_factory=dict)        # code -> id
    customers: dict = field(default_factory=dict)    # c1 -> id
    accounts: dict = field(default_factory=dict)     # c1 -> account id
    trades: dict = field(default_factory=dict)       # c1 -> trade id

    def actor(self, username: str) -> Actor:
        from engine.runtime.web.auth import actor_for_user
        with self.loom.db.connect() as conn:
            return actor_for_user(conn, self.users[username], loom=self.loom)

    # what each role must see (customer keys)
    VISIBLE = {
        "adv1": {"c1", "c2"}, "adv2": {"c2"}, "adv3": {"c3"}, "mgr1": {"c1", "c2"},
        "comp": {"c1", "c2", "c3"}, "root": {"c1", "c2", "c3"}, "sysadmin": {"c1", "c2", "c3"},
    }
    ROLES = {"adv1": ["secure.advisor"], "adv2": ["secure.advisor"], "adv3": ["secure.advisor"],
             "mgr1": ["secure.branch_manager"], "comp": ["secure.compliance"], "root": ["secure.admin"],
             "sysadmin": []}


def build_world(loom, bundles_path) -> World:
    loom.install(bundles_path / BUNDLE)
    w = World(loom)
    with loom.db.begin() as conn:
        hq = add_org_unit(conn, "HQ", {"zh-CN": "总部", "en": "HQ"}, "hq")
        b1 = add_org_unit(conn, "B1", {"zh-CN": "一部", "en": "Branch 1"}, "branch", hq)
        b2 = add_org_unit(conn, "B2", {"zh-CN": "二部", "en": "Branch 2"}, "branch", hq)
        t1 = add_org_unit(conn, "T1", {"en": "Team 1"}, "team", b1)
        t2 = add_org_unit(conn, "T2", {"en": "Team 2"}, "team", b1)
        t3 = add_org_unit(conn, "T3", {"en": "Team 3"}, "team", b2)
        w.units = {"HQ": hq, "B1": b1, "B2": b2, "T1": t1, "T2": t2, "T3": t3}
        where = {"adv1": t1, "adv2": t2, "adv3": t3, "mgr1": b1, "comp": hq, "root": hq, "sysadmin": hq}
        for name, roles in World.ROLES.items():
            w.users[name] = create_user(conn, name, PASSWORD, roles=roles, org_unit_id=where[name],
                                        is_admin=(name == "sysadmin"), locale="en")
    system = Actor.system("fixture")
    owners = {"c1": ("adv1", None), "c2": ("adv2", "adv1"), "c3": ("adv3", None)}
    for c, (adv, co) in owners.items():
        rec = loom.records.create("secure.customer", {
            "name": f"Customer {c}", "id_number": ID_NUMBERS[c], "mobile": MOBILES[c], "risk_level": "C3",
            "advisor": w.users[adv], "co_advisor": w.users[co] if co else None, "notes": NOTES[c]}, system)
        w.customers[c] = rec["id"]
        acc = loom.records.create("secure.account", {"account_no": f"A-{c}", "customer": rec["id"],
                                                     "bank_card": CARDS[c], "balance": "1000.00"}, system)
        w.accounts[c] = acc["id"]
        tr = loom.records.create("secure.trade", {"account": acc["id"], "symbol": f"60000{c[-1]}", "qty": 100,
                                                  "amount": "1234.50"}, system)
        w.trades[c] = tr["id"]
    return w


def clear_values() -> list[str]:
    """Values no restricted role may see in clear (they are masked or hidden for them)."""
    return list(ID_NUMBERS.values()) + list(CARDS.values())


def make_app(loom, **config):
    from engine.runtime.app import create_app
    return create_app(loom, {"TESTING": True, **config})


def login(client, username: str, password: str = PASSWORD):
    """Log in through the JSON API; returns the CSRF token for later unsafe requests."""
    r = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["csrf_token"]
