# Campaign results: responses, conversions and AUM uplift of the members a campaign reached.
#
# Restricted Python, run in the sandbox; plain functions over data passed in, no imports.
#   campaign:  {"id", "product"}
#   members:   the campaign's members {"id", "customer", "status", "responded_at", "aum_at_start", "aum_now",
#              "product_value_at_start", "product_value_now"}
#   aum:       {customer id: AUM now} for the customers whose AUM was read (others keep their last aum_now)
#   holdings:  {customer id: market value of the campaign product held now}, or None when not read
#   responses: interactions linked to the campaign [{"id", "customer", "occurred_at"}] to record
#   now:       ISO timestamp of the run
# Returns {"members": [{"id", "data"}], "campaign": {totals}}.
# A response counts only for a member the campaign reached (sent); the first response is kept. A member
# converts when they hold more of the campaign product than when they were reached. AUM uplift is
# AUM now minus AUM when reached, summed over the members reached.

CONTACTED = ("sent", "responded", "converted")


def dec(value):
    return Decimal(str(value if value not in (None, "") else 0))


def money(value):
    return str(dec(value).quantize(Decimal("0.01")))


def campaign_results(campaign, members, aum, holdings, responses, now):
    aum = aum or {}
    first_response = {}
    for r in sorted(responses or [], key=lambda r: str(r.get("occurred_at") or "")):
        if r.get("customer") not in first_response:
            first_response[r.get("customer")] = r
    updates = []
    totals = {"targeted": 0, "excluded": 0, "sent": 0, "responded": 0, "converted": 0}
    aum_start, aum_now_total = Decimal(0), Decimal(0)
    for m in members:
        status = m.get("status")
        if status == "dropped":
            continue
        totals["targeted"] += 1
        if status == "excluded":
            totals["excluded"] += 1
        if status not in CONTACTED:
            continue
        cid = m.get("customer")
        data = {}
        if cid in aum:
            data["aum_now"] = money(aum[cid])
        if holdings is not None:
            data["product_value_now"] = money(holdings.get(cid))
        r = first_response.get(cid)
        if r is not None and not m.get("responded_at"):
            data["responded_at"] = r.get("occurred_at") or now
            data["response_interaction"] = r.get("id")
            if status == "sent":
                status = "responded"
        value_now = data.get("product_value_now", m.get("product_value_now"))
        if campaign.get("product") and dec(value_now) > dec(m.get("product_value_at_start")) and status != "converted":
            status = "converted"
            data["converted_at"] = now
        if status != m.get("status"):
            data["status"] = status
        changed = {k: v for k, v in data.items() if m.get(k) != v}
        if changed:
            updates.append({"id": m["id"], "data": changed})
        totals["sent"] += 1
        if status in ("responded", "converted"):
            totals["responded"] += 1
        if status == "converted":
            totals["converted"] += 1
        aum_start += dec(m.get("aum_at_start"))
        aum_now_total += dec(data.get("aum_now", m.get("aum_now")))
    totals["aum_at_start"] = money(aum_start)
    totals["aum_uplift"] = money(aum_now_total - aum_start)
    totals["results_at"] = now
    return {"members": updates, "campaign": totals}


# Entry point: the caller passes campaign, members, aum, holdings, responses and now; the script leaves `result`.
result = campaign_results(campaign, members, aum, holdings, responses, now)
