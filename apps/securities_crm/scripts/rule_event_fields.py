# The live counterpart of analytics_rule_events.py: the fields the rules need beyond a trade or
# transfer record, joined for the events the `monitor` rule set makes of records as they are saved
# (forms, REST API, bulk imports) -- so live events look like the batch adapter's events and a rule
# sees the same thing either way:
#   * `link_group` / `group_size`: the customers linked to this one by the same identity number,
#     mobile, bank card or device (followed transitively, as the adapter's union-find does), named
#     "G" + the customer number of the earliest customer when more than one -- the group key of the
#     `linked` rule set (wash trades among linked accounts);
#   * `counter_linked`: the trade's counterparty securities account belongs to that group;
#   * `minute` (local HHMM, +08:00), `account_age_days`, `insider` (director, supervisor or senior
#     manager of the issuer), `lv_code` (the large-value report code a transfer counts towards, so
#     0501-0504 read their thresholds from the aml_threshold reference rows);
#   * numbers as numbers (quantity, price, amount, commission).
# Not joined live: `dev` (price versus the day's average price) needs the whole day's market data.
#
# Inputs: `events` (ingestion format, as the rule set's `records` mapping built them) and `saved`
# (the records, same order). Result: one dict of extra fields per event. A single save looks up
# only what it needs; a large batch (a bulk import) reads the customers and accounts once instead.

APP = "securities_crm"
customers = {}
links = {}          # customer id -> (group name, size, member ids)
owners = {}         # securities account number -> customer id
insiders = {}


def link_id(v):
    if isinstance(v, dict):
        return v.get("id")
    return v


PRELOAD_FROM = 100          # events in one batch from which everything is read once
by_key = {}                 # (field, value) -> customer ids, when preloaded
accounts_of = {}            # customer id -> capital accounts, when preloaded
preloaded = []


def every(entity):
    out, last = [], 0
    while True:
        page = records.find(APP + "." + entity, {"id__gt": last}, order_by="id", limit=500)
        out.extend(page)
        if len(page) < 500:
            return out
        last = page[-1]["id"]


def preload():
    for c in every("customer"):
        customers[c["id"]] = c
        for f in ("id_number", "mobile"):
            if c.get(f):
                by_key.setdefault((f, c[f]), []).append(c["id"])
    for a in every("capital_account"):
        cid = link_id(a["customer"])
        accounts_of.setdefault(cid, []).append(a)
        for f in ("bank_card", "device_id"):
            if a.get(f):
                by_key.setdefault((f, a[f]), []).append(cid)
    for a in every("securities_account"):
        owners[a["account_no"]] = link_id(a["customer"])
    for r in every("relationship"):
        cid = link_id(r["customer"])
        insiders.setdefault(cid, set())
        if r.get("related_company_code") and (r.get("is_director") or r.get("is_supervisor")
                                              or r.get("is_senior_manager")):
            insiders[cid].add(r["related_company_code"])
    preloaded.append(True)


def customer(cid):
    if cid not in customers:
        customers[cid] = records.get(APP + ".customer", cid)
    return customers[cid]


def keys_of(cid):
    c = customer(cid)
    out = []
    accounts = accounts_of.get(cid, []) if preloaded else records.find(APP + ".capital_account", {"customer": cid},
                                                                       limit=500)
    if c.get("id_number"):
        out.append(("id_number", c["id_number"]))
    if c.get("mobile"):
        out.append(("mobile", c["mobile"]))
    for acc in accounts:
        if acc.get("bank_card"):
            out.append(("bank_card", acc["bank_card"]))
        if acc.get("device_id"):
            out.append(("device_id", acc["device_id"]))
    return out


def holders(key):
    field, value = key
    if preloaded:
        return by_key.get(key, [])
    if field in ("id_number", "mobile"):
        return [c["id"] for c in records.find(APP + ".customer", {field: value}, limit=500)]
    return [link_id(a["customer"]) for a in records.find(APP + ".capital_account", {field: value}, limit=500)]


def group(cid):
    if cid in links:
        return links[cid]
    members = {cid}
    todo = [cid]
    seen_keys = set()
    while todo:
        nxt = todo.pop()
        for k in keys_of(nxt):
            if k in seen_keys:
                continue
            seen_keys.add(k)
            for other in holders(k):
                if other is not None and other not in members:
                    members.add(other)
                    todo.append(other)
    first = min(members)
    name = "G" + customer(first)["customer_no"] if len(members) > 1 else customer(cid)["customer_no"]
    found = (name, len(members), members)
    for m in members:
        links[m] = found
    return found


def owner(account_no):
    if not account_no:
        return None
    if account_no not in owners and not preloaded:
        hit = records.find(APP + ".securities_account", {"account_no": account_no}, limit=1)
        owners[account_no] = link_id(hit[0]["customer"]) if hit else None
    return owners.get(account_no)


def insider_of(cid):
    if cid not in insiders and preloaded:
        return set()
    if cid not in insiders:
        codes = set()
        for r in records.find(APP + ".relationship", {"customer": cid}, limit=500):
            if r.get("related_company_code") and (r.get("is_director") or r.get("is_supervisor")
                                                  or r.get("is_senior_manager")):
                codes.add(r["related_company_code"])
        insiders[cid] = codes
    return insiders[cid]


def local_day_minute(ts):
    t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    if t.tzinfo is not None:
        t = t.astimezone(timezone(timedelta(hours=8)))
    return t.hour * 100 + t.minute, t.date()


def age(c, day):
    if not c.get("opened_on"):
        return None
    return (day - date.fromisoformat(c["opened_on"][:10])).days


def lv_code(party, flow):
    if flow == "cash":
        return "0501"
    if party != "individual":
        return "0502"
    return "0504" if flow == "cross_border" else "0503"


def number(v):
    return float(v) if v is not None and v != "" else None


if len(events) >= PRELOAD_FROM:
    preload()
result = []
for e, rec in zip(events, saved):
    cid = link_id(rec.get("customer"))
    if cid is None:
        result.append({})
        continue
    c = customer(cid)
    name, size, members = group(cid)
    extra = {"link_group": name, "group_size": size}
    if e["kind"] == "trade":
        minute, day = local_day_minute(rec["trade_time"])
        counter = owner(rec.get("counter_account") or "")
        extra.update(minute=minute, account_age_days=age(c, day),
                     counter_linked=counter is not None and counter != cid and counter in members,
                     insider=rec.get("security_code") in insider_of(cid),
                     quantity=int(rec.get("quantity") or 0), price=number(rec.get("price")),
                     amount=number(rec.get("amount")), commission=number(rec.get("commission")) or 0.0,
                     device_id=rec.get("device_id") or "")
    else:
        minute, day = local_day_minute(rec["transfer_time"])
        extra.update(account_age_days=age(c, day), lv_code=lv_code(c.get("customer_type"), rec.get("kind")),
                     amount=number(rec.get("amount")), currency=rec.get("currency") or "CNY",
                     counterparty_account=rec.get("counterparty_account") or "",
                     same_name=bool(rec.get("same_name")))
    result.append(extra)
