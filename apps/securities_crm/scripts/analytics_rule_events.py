# Turns the bundle's trade and transfer records into monitoring events for the rules engine.
#
# Why a script: the rules engine knows events, not the CRM. What a rule needs beyond the record
# itself is joined here once, so the rules stay declarative:
#   * `customer` = the customer number (the group key of the `aml` rule set) and `party`
#     (individual / institution, for 0502 versus 0503/0504);
#   * `link_group` / `group_size`: customers linked by the same identity number, mobile, bank card
#     or device (a union-find over those keys), the group key of the `linked` rule set;
#   * `counter_linked`: the trade's counterparty account belongs to the same linked group;
#   * `minute` (local HHMM, +08:00) and `dev` (price versus the day's average price of the same
#     security over the other customers' trades) for marking the close -- in production these come
#     from the market-data feed;
#   * `account_age_days`: days since the customer opened the account (a dormancy period needs an
#     account at least that old);
#   * `insider`: the customer is a director, supervisor or senior manager (relationship flags) of
#     the issuer of the traded security.
#   * `lv_code`: the large-value report code a transfer counts towards (0501 cash, 0502 non-natural
#     person, 0503 natural person domestic, 0504 natural person cross-border), so the rules read
#     their thresholds from the aml_threshold reference rows;
# Transfer `kind` is renamed `flow` (`kind` is the event kind of the ingestion format).
#
# Inputs: customers, capital_accounts, securities_accounts, relationships, trades, transfers
# (record dicts as the record service returns them). Result: a list of events for
# engine.rules.service(loom).ingest, in time order.


def local_minute(ts):
    t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    if t.tzinfo is not None:
        t = t.astimezone(timezone(timedelta(hours=8)))
    return t.hour * 100 + t.minute, t.date().isoformat()


def account_age(c, day):
    if not c.get("opened_on"):
        return None
    return (date.fromisoformat(day) - date.fromisoformat(c["opened_on"][:10])).days


def link_groups(customers, capital_accounts):
    parent = {}

    def find(x):
        while parent.get(x, x) != x:
            x = parent.get(x, x)
        return x

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    first = {}
    cards = {}
    for acc in capital_accounts:
        cards.setdefault(acc["customer"], []).append(acc)
    for c in customers:
        keys = [("id", c.get("id_number")), ("mobile", c.get("mobile"))]
        for acc in cards.get(c["id"], []):
            keys.append(("card", acc.get("bank_card")))
            keys.append(("device", acc.get("device_id")))
        for k in keys:
            if not k[1]:
                continue
            if k in first:
                union(first[k], c["id"])
            else:
                first[k] = c["id"]
    members = {}
    for c in customers:
        members.setdefault(find(c["id"]), []).append(c["id"])
    out = {}
    by_id = {c["id"]: c for c in customers}
    for root, ids in members.items():
        name = "G" + by_id[min(ids)]["customer_no"] if len(ids) > 1 else by_id[ids[0]]["customer_no"]
        for i in ids:
            out[i] = (name, len(ids))
    return out


def lv_code(party, flow):
    if flow == "cash":
        return "0501"
    if party != "individual":
        return "0502"
    return "0504" if flow == "cross_border" else "0503"


def build_events(customers, capital_accounts, securities_accounts, relationships, trades, transfers):
    by_id = {c["id"]: c for c in customers}
    groups = link_groups(customers, capital_accounts)
    account_owner = {a["account_no"]: a["customer"] for a in securities_accounts}
    insiders = {}
    for r in relationships:
        if r.get("related_company_code") and (r.get("is_director") or r.get("is_supervisor")
                                              or r.get("is_senior_manager")):
            insiders.setdefault(r["customer"], set()).add(r["related_company_code"])
    # the day's average price per security over all trades, and each customer's own share of it
    day_sum, day_qty, own = {}, {}, {}
    local = {}
    for t in trades:
        minute, day = local_minute(t["trade_time"])
        local[t["trade_no"]] = (minute, day)
        k = (t["security_code"], day)
        amt, qty = Decimal(str(t["amount"])), Decimal(t["quantity"])
        day_sum[k] = day_sum.get(k, Decimal(0)) + amt
        day_qty[k] = day_qty.get(k, Decimal(0)) + qty
        ok = (t["security_code"], day, t["customer"])
        prev = own.get(ok, (Decimal(0), Decimal(0)))
        own[ok] = (prev[0] + amt, prev[1] + qty)
    events = []
    for t in trades:
        c = by_id.get(t["customer"])
        if c is None:
            continue
        minute, day = local[t["trade_no"]]
        k = (t["security_code"], day)
        mine = own[(t["security_code"], day, t["customer"])]
        qty = day_qty[k] - mine[1]
        dev = 0.0
        if qty > 0:
            vwap = (day_sum[k] - mine[0]) / qty
            dev = float(Decimal(str(t["price"])) / vwap - 1) if vwap > 0 else 0.0
        group, size = groups[c["id"]]
        counter = account_owner.get(t.get("counter_account") or "")
        events.append({
            "id": "trade:" + t["trade_no"], "kind": "trade", "ts": t["trade_time"],
            "customer": c["customer_no"], "party": c["customer_type"], "security_code": t["security_code"],
            "side": t["side"], "quantity": int(t["quantity"]), "price": float(t["price"]),
            "amount": float(t["amount"]), "commission": float(t.get("commission") or 0),
            "minute": minute, "dev": round(dev, 6), "link_group": group, "group_size": size,
            "counter_linked": counter is not None and counter != c["id"] and groups.get(counter, ("",))[0] == group,
            "insider": t["security_code"] in insiders.get(c["id"], set()),
            "account_age_days": account_age(c, day),
            "device_id": t.get("device_id") or ""})
    for f in transfers:
        c = by_id.get(f["customer"])
        if c is None:
            continue
        group, size = groups[c["id"]]
        day = local_minute(f["transfer_time"])[1]
        events.append({
            "id": "transfer:" + f["transfer_no"], "kind": "transfer", "ts": f["transfer_time"],
            "customer": c["customer_no"], "party": c["customer_type"], "direction": f["direction"],
            "flow": f["kind"], "amount": float(f["amount"]), "currency": f.get("currency") or "CNY",
            "counterparty_account": f.get("counterparty_account") or "", "same_name": bool(f.get("same_name")),
            "link_group": group, "group_size": size, "account_age_days": account_age(c, day),
            "lv_code": lv_code(c["customer_type"], f["kind"])})
    events.sort(key=lambda e: (datetime.fromisoformat(e["ts"].replace("Z", "+00:00")), e["id"]))
    return events


result = build_events(customers, capital_accounts, securities_accounts, relationships, trades, transfers)
