# Campaign targeting: who in the segment may receive the campaign, and what to send (CSRC Order 130, Art. 20:
# a firm may not actively promote a product whose risk is above what an ordinary investor can bear).
#
# Restricted Python, run in the sandbox; plain functions over data passed in, no imports.
# Needs `match_suitability` from scripts/suitability_match.py, loaded before this script (the BPMN
# script tasks embed both; the suitability rules stay in one place, the matrix in reference data).
#   mode:      "build" (materialise the segment) or "launch" (also send to every eligible member)
#   campaign:  {"id", "code", "channels" [..], "content", "max_product_rating", "product"}
#   product:   the campaign's product {"code", "name", "risk_rating", "horizon", "variety"} or None
#   customers: the customers the segment filters select, each with "id", "status", "investor_class",
#              "risk_level", "lowest_category", "assessment_expiry", "horizon", "varieties", "aum",
#              "advisor", "advisor_user", "branch"
#   members:   the campaign's existing members {"id", "customer", "status", ...}
#   holdings:  {customer id: market value of the campaign product held now} (may be empty)
#   matrix, params, today: as for scripts/suitability_match.py
#   now:       ISO timestamp of the run
# Returns {"create": [member data], "update": [{"id", "data"}], "messages": [{"channel", "key", "payload"}],
#          "totals": {"targeted", "excluded", "sent", "responded", "converted"}}.
# Members already sent (or responded, converted) are history: never changed here, never sent again, and
# every message carries the key campaign:<id>:customer:<id>:<channel>, so a second launch sends nothing twice.

CONTACTED = ("sent", "responded", "converted")
BLOCKED_STATUSES = ("frozen", "closed")
# the reason recorded for an exclusion: the first of these found among the suitability reasons
REASON_ORDER = ["account_status", "lowest_category", "no_assessment", "assessment_expired", "risk_mismatch",
                "horizon_mismatch", "variety_mismatch"]
REASON_OF = {"lowest_category": "lowest_category", "no_assessment": "no_assessment",
             "assessment_expired": "assessment_expired", "level_above": "risk_mismatch",
             "level_refused": "risk_mismatch", "no_rule": "risk_mismatch", "horizon_mismatch": "horizon_mismatch",
             "variety_mismatch": "variety_mismatch"}


def campaign_rating(campaign, product):
    """The rating the suitability filter checks: the higher of the product's and the campaign's ceiling."""
    ratings = [r for r in ((product or {}).get("risk_rating"), campaign.get("max_product_rating")) if r]
    if not ratings:
        return None
    return sorted(ratings, key=lambda r: int(str(r)[1:]))[-1]


def assess(customer, campaign, product, matrix, params, today):
    """(status, excluded_reason, reasons, customer_level, rating) of one customer for this campaign."""
    rating = campaign_rating(campaign, product)
    if customer.get("status") in BLOCKED_STATUSES:
        reason = {"code": "account_status", "severity": "refuse",
                  "message": {"zh-CN": "账户状态为%s，不得营销" % customer.get("status"),
                              "en": "the account is %s: no marketing" % customer.get("status")}}
        return "excluded", "account_status", [reason], None, rating
    if rating is None:
        return "queued", None, [], customer.get("risk_level"), None
    p = dict(product or {})
    p["risk_rating"] = rating
    facts = {k: customer.get(k) for k in ("investor_class", "risk_level", "lowest_category", "assessment_expiry",
                                          "horizon", "varieties")}
    m = match_suitability(facts, p, matrix, today, params)
    bad = [r for r in m["reasons"] if r["severity"] != "match"]
    if m["result"] == "match":
        return "queued", None, [], m.get("customer_level"), rating
    codes = [REASON_OF.get(r["code"], "risk_mismatch") for r in bad]
    reason = [c for c in REASON_ORDER if c in codes][0]
    return "excluded", reason, bad, m.get("customer_level"), rating


def money(value):
    """Decimal text with two places, as the record API returns it (so unchanged values compare equal)."""
    return str(Decimal(str(value if value not in (None, "") else 0)).quantize(Decimal("0.01")))


def message_key(campaign_id, customer_id, channel):
    return "campaign:%s:customer:%s:%s" % (campaign_id, customer_id, channel)


def messages_for(campaign, customer_id):
    out = []
    for ch in campaign.get("channels") or []:
        out.append({"channel": ch, "key": message_key(campaign["id"], customer_id, ch),
                    "payload": {"template": "campaign", "campaign": campaign["id"], "campaign_code": campaign.get("code"),
                                "customer": customer_id, "channel": ch, "content": campaign.get("content")}})
    return out


def plan_campaign(mode, campaign, product, customers, members, holdings, matrix, params, today, now):
    launch = mode == "launch"
    holdings = holdings or {}
    by_customer = {}
    for m in members:
        by_customer[m["customer"]] = m
    create, update, messages = [], [], []
    final = {}                                   # customer id -> status after this run
    seen = set()
    for c in customers:
        cid = c["id"]
        if cid in seen:
            continue
        seen.add(cid)
        status, reason, reasons, level, rating = assess(c, campaign, product, matrix, params, today)
        current = by_customer.get(cid)
        if current is not None and current.get("status") in CONTACTED:
            final[cid] = current["status"]
            continue
        data = {"status": status, "excluded_reason": reason, "reasons": reasons, "customer_level": level,
                "product_rating": rating, "aum_at_start": money(c.get("aum")), "aum_now": money(c.get("aum")),
                "product_value_at_start": money(holdings.get(cid)), "product_value_now": money(holdings.get(cid)),
                "advisor": c.get("advisor"), "advisor_user": c.get("advisor_user"), "branch": c.get("branch")}
        if launch and status == "queued":
            data["status"] = "sent"
            data["sent_at"] = now
            data["channels"] = list(campaign.get("channels") or [])
            messages.extend(messages_for(campaign, cid))
        final[cid] = data["status"]
        if current is None:
            data.update({"campaign": campaign["id"], "customer": cid,
                         "member_key": "%s:%s" % (campaign["id"], cid)})
            create.append(data)
        else:
            changed = {k: v for k, v in data.items() if current.get(k) != v}
            if changed:
                update.append({"id": current["id"], "data": changed})
    for cid, m in by_customer.items():
        if cid in seen:
            continue
        if m.get("status") in CONTACTED:
            final[cid] = m["status"]
        elif m.get("status") != "dropped":
            update.append({"id": m["id"], "data": {"status": "dropped"}})
    statuses = list(final.values())
    totals = {"targeted": len(statuses), "excluded": statuses.count("excluded"),
              "sent": len([s for s in statuses if s in CONTACTED]),
              "responded": len([s for s in statuses if s in ("responded", "converted")]),
              "converted": statuses.count("converted")}
    return {"create": create, "update": update, "messages": messages, "totals": totals}


# Entry point: the caller passes mode, campaign, product, customers, members, holdings, matrix, params, today, now.
result = plan_campaign(mode, campaign, product, customers, members, holdings, matrix, params, today, now)
