# Match a customer with a product on risk level, investment horizon and variety (CSRC Order 130, Arts. 18-22).
#
# Restricted Python, run in the sandbox; plain functions over data passed in, no imports.
#   customer: {"investor_class", "risk_level", "lowest_category", "assessment_expiry" (date or ISO text or None),
#              "horizon" (short|medium|long), "varieties" [list]}
#   product:  {"code", "name", "risk_rating" (R1-R5), "horizon", "variety"}
#   matrix:   suitability_rule rows [{"customer_level" (C1L, C1..C5, PRO), "product_rating", "decision"}]
#   today:    the date of the check (a date or ISO text)
#   params:   {"expired_assessment_max_rating": "R1", "lowest_category_max_rating": "R1"} from the parameter table
# Returns {"result": match|warn|refuse, "warning_required", "customer_level", "product_rating",
#          "matrix_decision", "reasons": [{"code", "severity", "message": {"zh-CN", "en"}}]}.
# A `warn` needs a signed special risk warning (Art. 19) before the sale; a `refuse` cannot be overridden.

HORIZON_ORDER = {"short": 1, "medium": 2, "long": 3}
HORIZON_ZH = {"short": "1年以内", "medium": "1-5年", "long": "5年以上"}
SEVERITY = {"match": 0, "warn": 1, "refuse": 2}


def msg(zh, en):
    return {"zh-CN": zh, "en": en}


def rank_of(rating):
    return int(str(rating)[1:])


def iso_day(value):
    if value is None or value == "":
        return None
    return str(value)[:10]


def customer_level_key(customer):
    """The matrix row: PRO for professionals, C1L for the lowest category, else the C level."""
    if str(customer.get("investor_class") or "ordinary").startswith("professional"):
        return "PRO"
    if customer.get("lowest_category"):
        return "C1L"
    return customer.get("risk_level")


def match_suitability(customer, product, matrix, today, params=None):
    params = params or {}
    reasons = []
    rating = product.get("risk_rating")
    rank = rank_of(rating)
    level = customer_level_key(customer)
    professional = level == "PRO"

    def add(code, severity, zh, en):
        reasons.append({"code": code, "severity": severity, "message": msg(zh, en)})

    # 1. risk level against the configured matrix
    decision = None
    if level is not None:
        for row in matrix:
            if row.get("customer_level") == level and row.get("product_rating") == rating:
                decision = row.get("decision")
    if level is None:
        add("no_assessment", "refuse" if rank > rank_of(params.get("expired_assessment_max_rating") or "R1") else "match",
            "客户尚未完成风险测评", "the customer has no risk assessment")
    elif decision is None:
        add("no_rule", "refuse", f"适当性矩阵缺少{level}×{rating}的规则", f"the suitability matrix has no rule for {level} x {rating}")
    elif decision == "allow":
        add("level_ok", "match", f"客户等级{level}可购买{rating}产品", f"a {level} customer may buy {rating} products")
    elif decision == "warn":
        add("level_above", "warn", f"产品等级{rating}高于客户风险承受能力{level}，须签署特别风险警示书",
            f"product rating {rating} is above the customer's level {level}: a signed special risk warning is required")
    else:
        add("level_refused", "refuse", f"客户等级{level}禁止购买{rating}产品", f"a {level} customer may not buy {rating} products")

    # 2. the lowest category never buys above its limit (Art. 22), whatever the matrix says
    if not professional and customer.get("lowest_category"):
        limit = params.get("lowest_category_max_rating") or "R1"
        if rank > rank_of(limit):
            add("lowest_category", "refuse", f"C1最低类别客户不得购买高于{limit}的产品",
                f"a lowest-category customer may not buy products above {limit}")

    # 3. an expired assessment blocks products above the configured rating
    if not professional and level is not None:
        expiry = iso_day(customer.get("assessment_expiry"))
        limit = params.get("expired_assessment_max_rating") or "R1"
        if (expiry is None or expiry < iso_day(today)) and rank > rank_of(limit):
            add("assessment_expired", "refuse",
                f"风险测评已过期（有效期至{expiry or '无'}），不得购买高于{limit}的产品，请重新测评",
                f"the risk assessment expired ({expiry or 'none'}): products above {limit} are blocked until re-assessment")

    # 4. horizon and variety (the other two dimensions); mismatches need the signed warning too
    if not professional:
        ch, ph = customer.get("horizon"), product.get("horizon")
        if ch in HORIZON_ORDER and ph in HORIZON_ORDER and HORIZON_ORDER[ph] > HORIZON_ORDER[ch]:
            add("horizon_mismatch", "warn", f"产品期限（{HORIZON_ZH[ph]}）长于客户投资期限（{HORIZON_ZH[ch]}）",
                f"the product horizon ({ph}) is longer than the customer's ({ch})")
        varieties = customer.get("varieties") or []
        variety = product.get("variety")
        if varieties and variety and variety != "cash" and variety not in varieties:
            add("variety_mismatch", "warn", f"产品品种（{variety}）不在客户投资品种范围内",
                f"the product variety ({variety}) is not among the customer's chosen varieties")

    worst = "match"
    for r in reasons:
        if SEVERITY[r["severity"]] > SEVERITY[worst]:
            worst = r["severity"]
    return {"result": worst, "warning_required": worst == "warn", "customer_level": level,
            "product_rating": rating, "matrix_decision": decision, "reasons": reasons}


def may_proceed(match, warning_signed):
    """Whether the purchase may go ahead: a match, or a warn with the signed warning; never a refuse."""
    if match["result"] == "match":
        return True
    return match["result"] == "warn" and bool(warning_signed)


# Entry point: the caller passes customer, product, matrix, today and params; the script leaves `result`.
result = match_suitability(customer, product, matrix, today, params)
